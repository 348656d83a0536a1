import { Transform, type TransformCallback } from 'node:stream';
import { findHeaderEnd } from './age/header.ts';

/** Payload nonce after the age header: 16 bytes. */
const payloadNonceLength = 16;

/**
 * The age header and payload nonce at the start of `head` (a file's first bytes), or undefined if
 * `head` does not hold all of them. With the same header and nonce, a file has the same payload
 * key: see HeadCheck.
 */
export function ageHead(head: Buffer): Buffer | undefined {
  const { end } = findHeaderEnd(head);
  if (end === undefined || head.length < end + payloadNonceLength) return undefined;
  return Buffer.from(head.subarray(0, end + payloadNonceLength));
}

/**
 * A pass-through that fails unless the stream starts with `expected` (an age header and payload
 * nonce as verified earlier, from `ageHead`): the rest passes through unchanged, uncopied.
 *
 * Why this suffices to read a file a second time (docs/decisions.md): with the same header and
 * nonce the payload key is the one the exporter drew, which nobody without the file key can use,
 * so every payload chunk that then authenticates (nonce = position and final flag) is the
 * exporter's own chunk at that position: the bytes are those whose digest was verified.
 */
export class HeadCheck extends Transform {
  #seen = 0;

  constructor(
    private readonly expected: Buffer,
    private readonly mismatch: () => Error,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.#seen < this.expected.length) {
      const n = Math.min(chunk.length, this.expected.length - this.#seen);
      if (!chunk.subarray(0, n).equals(this.expected.subarray(this.#seen, this.#seen + n))) {
        done(this.mismatch());
        return;
      }
      this.#seen += n;
    }
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    done(this.#seen < this.expected.length ? this.mismatch() : null);
  }
}
