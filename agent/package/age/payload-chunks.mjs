// The age v1 payload's STREAM chunks: sealing and opening runs of them with ChaCha20-Poly1305.
// Plain JavaScript because the same code also runs in a worker thread (see payload-worker.mjs),
// where no TypeScript loader is available on Node 20; types are in payload-chunks.d.mts.

import { createCipheriv, createDecipheriv } from 'node:crypto';

export const chunkSize = 64 * 1024;
export const tagLength = 16;
export const sealedChunkSize = chunkSize + tagLength;

const algorithm = 'chacha20-poly1305';
const options = { authTagLength: tagLength };

/** The STREAM nonce: an 11-byte big-endian chunk counter, then 0x01 for the final chunk. */
function setNonce(nonce, counter, last) {
  nonce.writeUInt32BE(Math.floor(counter / 0x1_0000_0000), 3);
  nonce.writeUInt32BE(counter >>> 0, 7);
  nonce[11] = last ? 1 : 0;
}

/** Chunk boundaries of a part: whole chunks, and for the final part at least one (maybe empty) chunk. */
function chunkCount(length, size, final) {
  if (final) return Math.max(1, Math.ceil(length / size));
  if (length % size !== 0)
    throw new RangeError(`A run of non-final chunks is ${length} bytes, not a multiple of ${size}.`);
  return length / size;
}

export function sealChunks(key, counter, parts, final, into) {
  let total = 0;
  for (let p = 0; p < parts.length; p++) {
    const n = chunkCount(parts[p].length, chunkSize, final && p === parts.length - 1);
    total += parts[p].length + n * tagLength;
  }
  // Its own ArrayBuffer (never the shared pool), so a worker can transfer it.
  // `into`, a buffer to reuse, if it is large enough.
  const out =
    into !== undefined && into.byteLength >= total
      ? Buffer.from(into.buffer, into.byteOffset, total)
      : Buffer.allocUnsafeSlow(total);
  const nonce = Buffer.alloc(12);
  let written = 0;
  for (let p = 0; p < parts.length; p++) {
    const part = parts[p];
    const lastPart = final && p === parts.length - 1;
    const n = chunkCount(part.length, chunkSize, lastPart);
    for (let i = 0; i < n; i++) {
      setNonce(nonce, counter, lastPart && i === n - 1);
      counter++;
      const cipher = createCipheriv(algorithm, key, nonce, options);
      written += cipher.update(part.subarray(i * chunkSize, (i + 1) * chunkSize)).copy(out, written);
      cipher.final();
      written += cipher.getAuthTag().copy(out, written);
    }
  }
  return out;
}

function open(key, nonce, sealed) {
  const decipher = createDecipheriv(algorithm, key, nonce, options);
  decipher.setAuthTag(sealed.subarray(sealed.length - tagLength));
  const plain = decipher.update(sealed.subarray(0, sealed.length - tagLength));
  try {
    decipher.final();
  } catch {
    return undefined;
  }
  return plain;
}

export function openChunks(key, counter, parts, final, into) {
  let total = 0;
  for (let p = 0; p < parts.length; p++) {
    const n = chunkCount(parts[p].length, sealedChunkSize, final && p === parts.length - 1);
    total += parts[p].length - n * tagLength;
  }
  // `into` may be the one part itself: each chunk's plaintext lands below its own ciphertext, over
  // ciphertext already opened, so opening in place is safe.
  const out =
    into !== undefined && into.byteLength >= total
      ? Buffer.from(into.buffer, into.byteOffset, Math.max(0, total))
      : Buffer.allocUnsafeSlow(Math.max(0, total));
  const nonce = Buffer.alloc(12);
  let written = 0;
  for (let p = 0; p < parts.length; p++) {
    const part = parts[p];
    const lastPart = final && p === parts.length - 1;
    const n = chunkCount(part.length, sealedChunkSize, lastPart);
    for (let i = 0; i < n; i++) {
      const last = lastPart && i === n - 1;
      const sealed = part.subarray(i * sealedChunkSize, (i + 1) * sealedChunkSize);
      setNonce(nonce, counter, last);
      const plain = open(key, nonce, sealed);
      if (plain === undefined) {
        // Tell a damaged chunk from one in the wrong place: a final chunk with data after it,
        // or a non-final chunk where the input ends.
        setNonce(nonce, counter, !last);
        const asOther = sealed.length === sealedChunkSize && open(key, nonce, sealed) !== undefined;
        return { failure: asOther ? (last ? 'truncated' : 'trailing') : 'auth', chunk: counter };
      }
      if (last && plain.length === 0 && counter > 0) return { failure: 'empty-final', chunk: counter };
      written += plain.copy(out, written);
      counter++;
    }
  }
  return { out };
}
