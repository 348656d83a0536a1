/**
 * One shared worker thread that seals and opens payload chunks for every age stream of the
 * process, so the crypto runs beside the caller's hashing and I/O on the main thread. Referenced
 * only while jobs are pending: an idle worker never keeps the process alive.
 */

import { Worker } from 'node:worker_threads';
import type { OpenFailure } from './payload-chunks.mjs';

export type ChunkOp = 'seal' | 'open';

/** What a run of chunks came to: the output, or (opening) why and where it failed. */
export type ChunkResult =
  | { readonly out: Buffer; readonly digest?: string; readonly inputDigest?: string; readonly input?: Buffer }
  | { readonly failure: OpenFailure; readonly chunk: number };

interface Reply {
  readonly id: number;
  readonly out?: Uint8Array;
  readonly digest?: string;
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
    this.#worker = new Worker(new URL('./payload-worker.mjs', import.meta.url));
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
          inHash: inputHash,
          returnInput,
          into,
        },
        transfer,
      );
    });
  }

  forget(hash: number): void {
    this.#worker.postMessage({ op: 'forget', hash });
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
        ...(reply.inDigest === undefined ? {} : { inputDigest: reply.inDigest }),
        ...(input === undefined ? {} : { input }),
      });
    }
  }

  #fail(error: Error): void {
    if (shared === this) shared = undefined;
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }
}

let shared: PayloadWorker | undefined;

/**
 * Hash the sealed output of a stream on the worker: `id` names the stream's running SHA-256,
 * started (with `prefix`, the bytes written before the payload) by the stream's first job; the
 * final job's result carries the digest.
 */
export interface OutputHash {
  readonly id: number;
  readonly prefix?: Uint8Array;
}

let nextHashId = 0;

/** A fresh id for an OutputHash. */
export function newOutputHashId(): number {
  return nextHashId++;
}

/** Drops a stream's running hashes (output and input) on the worker (the stream ended early). */
export function forgetOutputHash(id: number): void {
  shared?.forget(id);
}

/**
 * Runs one job on the shared worker. `data` is moved to the worker (transferred): it must be a
 * buffer of its own (`Buffer.allocUnsafeSlow`) that the caller no longer uses. With `inputHash`
 * (an id like OutputHash's, sealing only) the worker also hashes `data` before sealing it, into
 * that stream's running plaintext SHA-256, whose digest comes with the final job's result.
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
): Promise<ChunkResult> {
  shared ??= new PayloadWorker();
  return shared.run(op, key, counter, data, final, hash, returnInput, into, inputHash);
}
