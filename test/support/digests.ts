import { createHash } from 'node:crypto';

/**
 * SHA-256 (hex) of each `size`-byte slice of `bytes`, the last shorter, one for no bytes: what
 * transfer.json /2 records of an encrypted file, worked out here with nothing but node:crypto, as
 * a reference independent of the code under test (segment-hash.mjs).
 */
export function segmentDigests(bytes: Uint8Array, size: number): string[] {
  const count = Math.max(1, Math.ceil(bytes.length / size));
  return Array.from({ length: count }, (_, i) =>
    createHash('sha256')
      .update(bytes.subarray(i * size, (i + 1) * size))
      .digest('hex'),
  );
}
