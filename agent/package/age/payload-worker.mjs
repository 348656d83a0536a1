// Worker-thread entry: seals or opens one run of payload chunks per message, in arrival order.
// Stateless (the key comes with each job), so one worker serves every stream of the process.

import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { openChunks, sealChunks } from './payload-chunks.mjs';

// SHA-256 of a stream's sealed output (with its header, `hashPrefix`), kept here across jobs so the
// hashing runs beside the caller's work; the final job's reply carries the hex digest.
const hashes = new Map();

parentPort.on('message', (job) => {
  if (job.op === 'forget') {
    hashes.delete(job.hash);
    return;
  }
  try {
    const parts = [job.data];
    if (job.op === 'seal') {
      const out = sealChunks(job.key, job.counter, parts, job.final, job.into);
      let digest;
      if (job.hash !== undefined) {
        let hash = hashes.get(job.hash);
        if (hash === undefined) {
          hash = createHash('sha256');
          if (job.hashPrefix) hash.update(job.hashPrefix);
          hashes.set(job.hash, hash);
        }
        hash.update(out);
        if (job.final) {
          digest = hash.digest('hex');
          hashes.delete(job.hash);
        }
      }
      // The input goes back too, for the caller to reuse (its own ArrayBuffer, never the output's).
      const input = job.returnInput ? job.data : undefined;
      parentPort.postMessage(
        { id: job.id, out, digest, input },
        input ? [out.buffer, input.buffer] : [out.buffer],
      );
      return;
    }
    const result = openChunks(job.key, job.counter, parts, job.final);
    if (result.failure === undefined) {
      parentPort.postMessage({ id: job.id, out: result.out }, [result.out.buffer]);
    } else {
      parentPort.postMessage({ id: job.id, failure: result.failure, chunk: result.chunk });
    }
  } catch (error) {
    parentPort.postMessage({ id: job.id, error: error instanceof Error ? error.message : String(error) });
  }
});
