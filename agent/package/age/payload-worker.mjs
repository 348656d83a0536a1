// Worker-thread entry: seals or opens one run of payload chunks per message, in arrival order.
// The key comes with each job; running hashes are kept per stream id.

import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { nativePayload, openChunks, sealChunks } from './payload-chunks.mjs';
import { SegmentHash } from './segment-hash.mjs';

// SHA-256s of a stream's plaintext input and of its sealed output (with its header, `hashPrefix`; one
// per `segmentSize` bytes, see segment-hash.mjs), kept here across jobs so the hashing runs beside
// the caller's work; the final job's reply carries the hex digests.
// Each chunk sealed leaves a 64 KiB buffer (the cipher's output, copied into `out`) as garbage, which
// V8 collects only after ~64 MB piled up: a young-generation collection every few batches (cheap,
// little is alive) keeps the RSS low and flat. See collectYoung in encrypt.ts: `gc` is there when
// the process exposed it before starting this worker, as `odt` does. The native addon seals and
// opens into the buffers it is given and leaves no such garbage: then no collections.
const collect = globalThis.gc;
let sinceCollect = 0;
const outHashes = new Map();
const inHashes = new Map();

function collectSome(bytes) {
  if (nativePayload || collect === undefined) return;
  sinceCollect += bytes;
  if (sinceCollect < 2 << 20) return;
  sinceCollect = 0;
  collect({ type: 'minor' });
}

function running(hashes, id, prefix, segmentSize) {
  let hash = hashes.get(id);
  if (hash === undefined) {
    hash = segmentSize === undefined ? createHash('sha256') : new SegmentHash(segmentSize);
    if (prefix) hash.update(prefix);
    hashes.set(id, hash);
  }
  return hash;
}

function finish(hashes, id, hash, final) {
  if (!final) return undefined;
  hashes.delete(id);
  return hash instanceof SegmentHash ? hash.digests() : hash.digest('hex');
}

parentPort.on('message', (job) => {
  if (job.op === 'forget') {
    outHashes.delete(job.hash);
    inHashes.delete(job.hash);
    return;
  }
  try {
    const parts = [job.data];
    if (job.op === 'seal') {
      let inDigest;
      if (job.inHash !== undefined) {
        const hash = running(inHashes, job.inHash);
        hash.update(job.data);
        inDigest = finish(inHashes, job.inHash, hash, job.final);
      }
      const out = sealChunks(job.key, job.counter, parts, job.final, job.into);
      collectSome(job.data.length);
      let segments;
      if (job.hash !== undefined) {
        const hash = running(outHashes, job.hash, job.hashPrefix, job.segmentSize);
        hash.update(out);
        segments = finish(outHashes, job.hash, hash, job.final);
      }
      // The input goes back too, for the caller to reuse (its own ArrayBuffer, never the output's).
      const input = job.returnInput ? job.data : undefined;
      parentPort.postMessage(
        { id: job.id, out, segments, inDigest, input },
        input ? [out.buffer, input.buffer] : [out.buffer],
      );
      return;
    }
    // Opened in place: the plaintext goes back in the input's own buffer.
    const result = openChunks(job.key, job.counter, parts, job.final, job.inPlace ? job.data : undefined);
    collectSome(job.data.length);
    if (result.failure === undefined) {
      // Opening, the running hash is the plaintext's.
      let digest;
      if (job.hash !== undefined) {
        const hash = running(outHashes, job.hash, job.hashPrefix);
        hash.update(result.out);
        digest = finish(outHashes, job.hash, hash, job.final);
      }
      parentPort.postMessage({ id: job.id, out: result.out, digest }, [result.out.buffer]);
    } else {
      outHashes.delete(job.hash);
      parentPort.postMessage({ id: job.id, failure: result.failure, chunk: result.chunk });
    }
  } catch (error) {
    parentPort.postMessage({ id: job.id, error: error instanceof Error ? error.message : String(error) });
  }
});
