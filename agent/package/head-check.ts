import { payloadNonceLength } from './age/encrypt.ts';
import { findHeaderEnd } from './age/header.ts';

/**
 * The age header and payload nonce at the start of `head` (a file's first bytes), or undefined if
 * `head` does not hold all of them. The import reads a verified disk a second time only if it
 * starts with these bytes (AgeFileReader's `head`). Why that suffices (docs/decisions.md): with
 * the same header and nonce the payload key is the one the exporter drew, which nobody without
 * the file key can use, so every payload chunk that then authenticates (nonce = position and
 * final flag) is the exporter's own chunk at that position: the bytes whose digest was verified.
 */
export function ageHead(head: Buffer): Buffer | undefined {
  const { end } = findHeaderEnd(head);
  if (end === undefined || head.length < end + payloadNonceLength) return undefined;
  return Buffer.from(head.subarray(0, end + payloadNonceLength));
}
