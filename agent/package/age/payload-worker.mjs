// Worker-thread entry: seals or opens one run of payload chunks per message, in arrival order.
// Stateless (the key comes with each job), so one worker serves every stream of the process.

import { parentPort } from 'node:worker_threads';
import { openChunks, sealChunks } from './payload-chunks.mjs';

parentPort.on('message', (job) => {
  try {
    const parts = [job.data];
    if (job.op === 'seal') {
      const out = sealChunks(job.key, job.counter, parts, job.final);
      parentPort.postMessage({ id: job.id, out }, [out.buffer]);
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
