// The age v1 payload's STREAM chunks: sealing and opening runs of them with ChaCha20-Poly1305.
// Plain JavaScript because the same code also runs in a worker thread (see payload-worker.mjs),
// where no TypeScript loader is available on Node 20; types are in payload-chunks.d.mts.

import { createCipheriv, createDecipheriv } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const chunkSize = 64 * 1024;
export const tagLength = 16;
export const sealedChunkSize = chunkSize + tagLength;

const algorithm = 'chacha20-poly1305';
const options = { authTagLength: tagLength };

/**
 * The native sealer/opener (native/age_payload.c, built by `npm install` into build/Release), found
 * in the nearest build/Release above this module (the source tree, dist/ or dist/chunks/). Absent
 * when it was not built or ODT_NATIVE=0: then Node's own cipher objects do the same work, at about
 * half the speed (see docs/decisions.md).
 */
function loadNative() {
  if (process.env.ODT_NATIVE === '0') return undefined;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = join(dir, 'build', 'Release', 'age_payload.node');
    if (existsSync(file)) return createRequire(import.meta.url)(file);
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

const native = loadNative();

/** Whether runs are sealed and opened by the native addon (the worker then needs no forced GCs). */
export const nativePayload = native !== undefined;

/**
 * The addon's SHA-256 of a byte range of an open file, read and hashed on the thread pool
 * (native/range_digest.c); undefined without the addon.
 */
export const nativeSha256Range = native?.sha256Range;

/**
 * The addon's posix_fadvise(POSIX_FADV_DONTNEED) of a byte range of an open file: drops its clean
 * pages from the page cache. Undefined without the addon (Node.js has no such call).
 */
export const nativeDropCachedRange = native?.dropCachedRange;

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
  return sealRuns(key, counter, parts, final, into, native);
}

export function openChunks(key, counter, parts, final, into) {
  return openRuns(key, counter, parts, final, into, native);
}

/** The same two functions without the addon, whether or not it is loaded: for tests. */
export const portable = {
  sealChunks: (key, counter, parts, final, into) => sealRuns(key, counter, parts, final, into, undefined),
  openChunks: (key, counter, parts, final, into) => openRuns(key, counter, parts, final, into, undefined),
};

function sealRuns(key, counter, parts, final, into, native) {
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
  if (native !== undefined) {
    let at = 0;
    for (let p = 0; p < parts.length; p++) {
      const lastPart = final && p === parts.length - 1;
      at += native.sealInto(key, counter, parts[p], lastPart, out.subarray(at));
      counter += chunkCount(parts[p].length, chunkSize, lastPart);
    }
    return out;
  }
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
  if (sealed.length < tagLength) return undefined;
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

function openRuns(key, counter, parts, final, into, native) {
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
  if (native !== undefined) return openNative(native, key, counter, parts, final, out);
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

const nativeFailures = ['auth', 'truncated', 'trailing', 'empty-final'];

/** openChunks with the addon; its failures carry the chunk and why (see native/age_payload.c). */
function openNative(native, key, counter, parts, final, out) {
  let at = 0;
  for (let p = 0; p < parts.length; p++) {
    const lastPart = final && p === parts.length - 1;
    // A part the addon may overwrite (in place) only where its own plaintext goes.
    const r = native.openInto(key, counter, parts[p], lastPart, out.subarray(at));
    if (r < 0) {
      const code = -r - 1;
      return { failure: nativeFailures[code % 4], chunk: counter + Math.floor(code / 4) };
    }
    at += r;
    counter += chunkCount(parts[p].length, sealedChunkSize, lastPart);
  }
  return { out };
}
