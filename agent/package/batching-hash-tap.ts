import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * Hashes (SHA-256) and counts what flows through it, like HashTap, but passes it on gathered into
 * `batch`-byte buffers (default 1 MiB): an HTTP body arrives in 16–64 KiB pieces, and each write
 * further down (an age run handed to a worker, a file write) costs about the same whatever its size.
 */
export class BatchingHashTap extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private buffer: Buffer | undefined;
  private filled = 0;
  bytes = 0;

  constructor(
    private readonly onBytes?: (n: number) => void,
    private readonly batch = 1 << 20,
  ) {
    super({ highWaterMark: batch });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(chunk.length);
    // Large pieces with nothing gathered go on as they are, uncopied.
    if (this.filled === 0 && chunk.length >= this.batch) {
      done(null, chunk);
      return;
    }
    let offset = 0;
    while (offset < chunk.length) {
      this.buffer ??= Buffer.allocUnsafeSlow(this.batch);
      const n = chunk.copy(this.buffer, this.filled, offset);
      offset += n;
      this.filled += n;
      if (this.filled === this.batch) {
        this.push(this.buffer);
        this.buffer = undefined;
        this.filled = 0;
      }
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.buffer !== undefined && this.filled > 0) this.push(this.buffer.subarray(0, this.filled));
    this.buffer = undefined;
    this.filled = 0;
    done();
  }

  /** Hex digest; call once, after the stream ended. */
  digest(): string {
    return this.hash.digest('hex');
  }
}
