/**
 * Two shared worker threads (one per core of the machines agents run on) that seal and open
 * payload chunks, and hash them, for every age stream of the process, so the crypto runs beside
 * the caller's I/O on the main thread. A stream that keeps a running hash on a worker
 * stays on that worker (its lane); two streams at once go to different workers. Each worker is
 * referenced only while jobs are pending: an idle worker never keeps the process alive.
 */

import { Worker } from 'node:worker_threads';
import type { OpenFailure } from './payload-chunks.mjs';

export type ChunkOp = 'seal' | 'open';

/** What a run of chunks came to: the output, or (opening) why and where it failed. */
export type ChunkResult =
  | {
      readonly out: Buffer;
      /** Opening: the plaintext's SHA-256. */
      readonly digest?: string;
      /** Sealing: the output's SHA-256 per segment (OutputHash.segmentSize). */
      readonly segments?: string[];
      readonly inputDigest?: string;
      readonly input?: Buffer;
    }
  | { readonly failure: OpenFailure; readonly chunk: number };

interface Reply {
  readonly id: number;
  readonly out?: Uint8Array;
  readonly digest?: string;
  readonly segments?: string[];
  readonly inDigest?: string;
  readonly input?: Uint8Array;
  readonly failure?: OpenFailure;
  readonly chunk?: number;
  readonly error?: string;
}

interface Pending {
  readonly resolve: (result: ChunkResult) => void;
  readonly reject: (error: Error) => void;
}

class PayloadWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;

  constructor() {
    this.#worker = new Worker(new URL('./payload-worker.mjs', import.meta.url), {
      resourceLimits: { maxYoungGenerationSizeMb: 4 },
    });
    this.#worker.unref();
    this.#worker.on('message', (reply: Reply) => this.#settle(reply));
    this.#worker.on('error', (error) => this.#fail(error));
    this.#worker.on('exit', (code) =>
      this.#fail(new Error(`The age payload worker exited with code ${code}.`)),
    );
  }

  run(
    op: ChunkOp,
    key: Uint8Array,
    counter: number,
    data: Buffer,
    final: boolean,
    hash?: OutputHash,
    returnInput = false,
    into?: Buffer,
    inputHash?: number,
  ): Promise<ChunkResult> {
    const id = this.#nextId++;
    const transfer = [data.buffer as ArrayBuffer];
    if (into !== undefined) transfer.push(into.buffer as ArrayBuffer);
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      if (this.#pending.size === 1) this.#worker.ref();
      this.#worker.postMessage(
        {
          id,
          op,
          key,
          counter,
          data,
          final,
          hash: hash?.id,
          hashPrefix: hash?.prefix,
          segmentSize: hash?.segmentSize,
          inHash: inputHash,
          returnInput,
          // Opening, the input's own buffer comes back holding the plaintext.
          inPlace: op === 'open' && returnInput,
          into,
        },
        transfer,
      );
    });
  }

  forget(hash: number): void {
    this.#worker.postMessage({ op: 'forget', hash });
  }

  /** Jobs sent and not yet answered. */
  get load(): number {
    return this.#pending.size;
  }

  #settle(reply: Reply): void {
    const pending = this.#pending.get(reply.id);
    if (pending === undefined) return;
    this.#pending.delete(reply.id);
    if (this.#pending.size === 0) this.#worker.unref();
    if (reply.error !== undefined) pending.reject(new Error(`The age payload worker failed: ${reply.error}`));
    else if (reply.failure !== undefined)
      pending.resolve({ failure: reply.failure, chunk: reply.chunk ?? 0 });
    else {
      const out = reply.out ?? new Uint8Array(0);
      const buffer = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
      const input = reply.input && Buffer.from(reply.input.buffer, 0, reply.input.buffer.byteLength);
      pending.resolve({
        out: buffer,
        ...(reply.digest === undefined ? {} : { digest: reply.digest }),
        ...(reply.segments === undefined ? {} : { segments: reply.segments }),
        ...(reply.inDigest === undefined ? {} : { inputDigest: reply.inDigest }),
        ...(input === undefined ? {} : { input }),
      });
    }
  }

  #fail(error: Error): void {
    const at = workers.indexOf(this);
    if (at >= 0) workers[at] = undefined;
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }
}

/** Worker threads: two, so that two streams (or a stream and a file digest) run side by side. */
const poolSize = 2;
const workers: (PayloadWorker | undefined)[] = [];
/** Running-hash id → the worker holding that hash. */
const lanes = new Map<number, number>();

/**
 * The worker for a job: the one holding its running hash, else the least busy (pending jobs and
 * running hashes held), started on demand.
 */
function workerFor(lane: number | undefined): PayloadWorker {
  let index = lane === undefined ? undefined : lanes.get(lane);
  if (index === undefined) {
    const busy = new Array<number>(poolSize).fill(0);
    for (const i of lanes.values()) busy[i]!++;
    index = 0;
    for (let i = 0; i < poolSize; i++) {
      busy[i]! += workers[i]?.load ?? 0;
      if (busy[i]! < busy[index]! || (busy[i] === busy[index] && workers[index] === undefined && workers[i]))
        index = i;
    }
    if (lane !== undefined) lanes.set(lane, index);
  }
  let worker = workers[index];
  if (worker === undefined) {
    worker = new PayloadWorker();
    workers[index] = worker;
  }
  return worker;
}

/**
 * Hash the sealed output of a stream on the worker: `id` names the stream's running SHA-256,
 * started (with `prefix`, the bytes written before the payload) by the stream's first job; the
 * final job's result carries the digest (opening), or with `segmentSize` (sealing) the digest of
 * each segment of that many bytes (see segment-hash.mjs).
 */
export interface OutputHash {
  readonly id: number;
  readonly prefix?: Uint8Array;
  readonly segmentSize?: number;
}

let nextHashId = 0;

/** A fresh id for an OutputHash. */
export function newOutputHashId(): number {
  return nextHashId++;
}

/** Drops a stream's running hashes (output and input) on the worker (the stream ended early). */
export function forgetOutputHash(id: number): void {
  const index = lanes.get(id);
  lanes.delete(id);
  if (index !== undefined) workers[index]?.forget(id);
}

/**
 * Runs one job on a shared worker. `data` is moved to the worker (transferred): it must be a
 * buffer of its own (`Buffer.allocUnsafeSlow`) that the caller no longer uses. With `inputHash`
 * (an id like OutputHash's, sealing only) the worker also hashes `data` before sealing it, into
 * that stream's running plaintext SHA-256, whose digest comes with the final job's result.
 * Opening, `hash` is the running SHA-256 of the opened plaintext. Jobs of one running hash go to
 * one worker, in order; so do jobs of one `lane` (an id from newOutputHashId; default the hash's),
 * to keep a stream on one worker (the other stays free for another stream).
 */
export function runInWorker(
  op: ChunkOp,
  key: Uint8Array,
  counter: number,
  data: Buffer,
  final: boolean,
  hash?: OutputHash,
  returnInput = false,
  into?: Buffer,
  inputHash?: number,
  lane: number | undefined = hash?.id ?? inputHash,
): Promise<ChunkResult> {
  const worker = workerFor(lane);
  // The stream's running hashes live on its lane's worker: forgetting them goes there too.
  const ids = [lane, hash?.id, inputHash].filter((id) => id !== undefined);
  for (const id of ids) {
    if (final) lanes.delete(id);
    else if (!lanes.has(id)) lanes.set(id, workers.indexOf(worker));
  }
  return worker.run(op, key, counter, data, final, hash, returnInput, into, inputHash);
}
