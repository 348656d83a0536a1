// SHA-256 of each consecutive segment of a stream (the last one may be shorter): what transfer.json
// records of an encrypted file, so that a file is checked in parallel, a segment at a time, and a
// damaged region is named by its bytes. Plain JS: the age worker thread loads it too.
//
// By hand: `split -b 64M --filter=sha256sum <file>.age` prints the same digests, in order.

import { createHash } from 'node:crypto';

/** Bytes per segment of the encrypted files' digests: 64 MiB. */
export const segmentSize = 64 * 1024 * 1024;

export class SegmentHash {
  #size;
  #hash = createHash('sha256');
  /** Bytes in the current segment. */
  #filled = 0;
  #any = false;
  #digests = [];

  constructor(size = segmentSize) {
    if (!Number.isSafeInteger(size) || size <= 0)
      throw new RangeError(`segment size ${size} is not a positive integer`);
    this.#size = size;
  }

  update(data) {
    let at = 0;
    while (at < data.length) {
      const take = Math.min(data.length - at, this.#size - this.#filled);
      this.#hash.update(at === 0 && take === data.length ? data : data.subarray(at, at + take));
      this.#filled += take;
      this.#any = true;
      at += take;
      if (this.#filled === this.#size) {
        this.#digests.push(this.#hash.digest('hex'));
        this.#hash = createHash('sha256');
        this.#filled = 0;
      }
    }
    return this;
  }

  /** The digests, the last segment's included; call once, at the end. An empty stream has one. */
  digests() {
    if (this.#filled > 0 || !this.#any) this.#digests.push(this.#hash.digest('hex'));
    return this.#digests;
  }
}
