import { Transform, type TransformCallback } from 'node:stream';
import { SegmentHash } from './age/segment-hash.mjs';

/**
 * A pass-through that hashes (SHA-256 per `segmentSize` bytes, see segment-hash.mjs) and counts
 * what flows through it, without copying.
 */
export class HashTap extends Transform {
  private readonly hash: SegmentHash;
  bytes = 0;

  constructor(
    private readonly onBytes?: (n: number) => void,
    segmentSize?: number,
  ) {
    super({ highWaterMark: 1 << 20 });
    this.hash = new SegmentHash(segmentSize);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(chunk.length);
    done(null, chunk);
  }

  /** The digest of each segment (hex); call once, after the stream ended. */
  digests(): string[] {
    return this.hash.digests();
  }
}
