/**
 * Streaming age v1 encryption and decryption to X25519 keys: the header, then the payload as
 * ChaCha20-Poly1305 STREAM chunks of 64 KiB. Each write is sealed (or opened) as one run of chunks
 * into one output buffer — far fewer, larger buffers for the sink than one per chunk — and at most
 * one chunk per write is copied, into a reused staging buffer. With `worker: true` the runs are
 * done on a shared worker thread, a few writes ahead, so the crypto overlaps the caller's work.
 */

import { createHash, type Hash, hkdfSync, randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { AgeError } from './errors.ts';
import {
  armorBegin,
  encodeHeader,
  findHeaderEnd,
  parseHeader,
  type Stanza,
  verifyHeaderMac,
  versionPrefix,
} from './header.ts';
import { formatRecipient, parseIdentity, parseRecipient } from './keys.ts';
import {
  type ChunkOp,
  type ChunkResult,
  forgetOutputHash,
  newOutputHashId,
  type OutputHash,
  runInWorker,
} from './offload.ts';
import { chunkSize, openChunks, sealChunks, sealedChunkSize, tagLength } from './payload-chunks.mjs';
import { SegmentHash, segmentSize } from './segment-hash.mjs';
import {
  fileKeyLength,
  isX25519Stanza,
  unwrapFileKey,
  wrapFileKey,
  type X25519Unwrapper,
  x25519Unwrapper,
} from './x25519.ts';

export { chunkSize, sealedChunkSize };

export const payloadNonceLength = 16;
const payloadInfo = Buffer.from('payload');
/** Largest header the decryptor buffers before giving up (thousands of stanzas). */
export const maxHeaderLength = 1024 * 1024;
/** Runs handed to the worker before a write waits for the oldest to come back. */
const workerRunsAhead = 2;
/** Plaintext gathered per worker run when encrypting: 16 chunks. */
const workerBatch = 16 * chunkSize;
/** Batch buffers the worker handed back, kept for reuse (one per run in flight, and one filling). */
const batchPool: Buffer[] = [];
const batchPoolSize = workerRunsAhead + 1;
/** Batch buffers handed out by `batchBuffer()`: given to an encrypting stream whole, not copied. */
const donated = new WeakSet<ArrayBufferLike>();

/**
 * A buffer of exactly one worker run of plaintext (1 MiB), for a source that reads straight into
 * memory it then gives away (the NFC download): pushed into an encrypting stream with `worker`
 * when full, it becomes that run's batch without being copied, and goes to the worker thread (the
 * source must not touch it again). Reuses the buffers the worker handed back.
 */
export function batchBuffer(): Buffer {
  const b = batchPool.pop() ?? Buffer.allocUnsafeSlow(workerBatch);
  donated.add(b.buffer);
  return b;
}

/** Plaintext bytes in one worker run when encrypting (the size of `batchBuffer()`). */
export const encryptRunBytes = workerBatch;

/** Sealed output of one full batch. */
const sealedBatch = (workerBatch / chunkSize) * sealedChunkSize;
/** Output buffers given back by the consumer (`releaseSealedBuffer`), for the worker to seal into. */
const sealedPool: Buffer[] = [];
const sealedPoolSize = 4;
/** Output ArrayBuffers handed out and not yet given back, so only those are taken back. */
const sealedOwned = new WeakSet<ArrayBufferLike>();

/**
 * Gives an output buffer of an encrypting stream (with `worker`) back for reuse, once the consumer
 * is done with it (written to a file): other buffers are ignored. Saves allocating (and page
 * faulting) a fresh megabyte per run.
 */
export function releaseSealedBuffer(buffer: Buffer): void {
  if (buffer.byteOffset !== 0 || buffer.buffer.byteLength !== sealedBatch) return;
  if (!sealedOwned.delete(buffer.buffer)) return;
  if (sealedPool.length < sealedPoolSize) sealedPool.push(Buffer.from(buffer.buffer, 0, sealedBatch));
}

/** Options of both streams. */
export interface AgeStreamOptions {
  /** Seal/open the payload on a shared worker thread instead of the calling thread. Default false. */
  readonly worker?: boolean;
}

/** Options of the encrypting stream. */
export interface AgeEncryptOptions extends AgeStreamOptions {
  /**
   * Count and SHA-256 the encrypted output (header included), one digest per `segmentSize` bytes,
   * for `encryptedSegments()`: with `worker`, on the worker thread, beside the sealing. Default false.
   */
  readonly hashOutput?: boolean;
  /** Bytes per segment of the output's digests (default 64 MiB, segment-hash.mjs). */
  readonly segmentSize?: number;
  /**
   * Count and SHA-256 the plaintext input, for `plaintextBytes` and `plaintextDigest()`: with
   * `worker`, on the worker thread, each run hashed just before it is sealed. Default false.
   */
  readonly hashInput?: boolean;
  /** Called with each input chunk's length as it is taken in, for progress. */
  readonly onInput?: (bytes: number) => void;
  /**
   * Called once the input ended, with its length, before the final chunk is sealed: an error it
   * returns fails the stream (say, a download shorter than announced).
   */
  readonly checkInput?: (bytes: number) => Error | undefined;
}

/**
 * A Transform that encrypts its input to the X25519 `recipients` (`age1…`) in the age v1 binary
 * format. Throws AgeError `AGE_BAD_RECIPIENT` at once if a recipient is not valid.
 */
export function createEncryptStream(
  recipients: readonly string[],
  options: AgeEncryptOptions = {},
): AgeEncryptStream {
  return new AgeEncryptStream(recipients, options);
}

/** Options of the decrypting stream. */
export interface AgeDecryptOptions extends AgeStreamOptions {
  /**
   * SHA-256 the decrypted output as it is put out, for `plaintextDigest()` (`plaintextBytes`
   * counts it either way). Default false.
   */
  readonly hashOutput?: boolean;
}

/**
 * A Transform that decrypts an age v1 file with any of the X25519 `identities`
 * (`AGE-SECRET-KEY-1…`), failing with an AgeError (see `ageErrorCodes`). Output is released as each
 * run of chunks authenticates: treat it as valid only once the stream ends without error.
 */
export function createDecryptStream(
  identities: readonly string[],
  options: AgeDecryptOptions = {},
): AgeDecryptStream {
  return new AgeDecryptStream(identities, options);
}

/**
 * The size of the age file `createEncryptStream` writes for `plaintextSize` bytes to `recipients`
 * X25519 recipients (default 1): for progress, ETAs and checking a file's length before shipping.
 */
export function encryptedSize(plaintextSize: number, recipients = 1): number {
  // 'age-encryption.org/v1\n', per stanza '-> X25519 <43>\n<43>\n', '--- <43>\n', then the nonce.
  const header = 22 + recipients * 98 + 48 + payloadNonceLength;
  const chunks = Math.max(1, Math.ceil(plaintextSize / chunkSize));
  return header + plaintextSize + chunks * tagLength;
}

export function payloadKey(fileKey: Uint8Array, nonce: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', fileKey, nonce, payloadInfo, 32));
}

/**
 * Every socket read of a download is a fresh 64 KiB buffer: garbage once copied into a batch. V8
 * collects it only after ~64 MB of such memory piled up (per thread: the worker has its own, see
 * payload-worker.mjs), which was a third of the export's peak RSS. A young-generation collection
 * every few batches (well under a millisecond: little is alive) keeps RSS low and flat. It needs
 * the process's `gc`, which `odt` exposes at start (bin/expose-gc.mjs), as
 * `node --expose-gc` does: V8 flags are the process's to set, not a library's. Without it V8
 * collects on its own schedule, with the higher RSS.
 */
const collectEvery = 4 << 20;
let sinceCollect = 0;
function collectYoung(bytes: number): void {
  sinceCollect += bytes;
  if (sinceCollect < collectEvery) return;
  sinceCollect = 0;
  globalThis.gc?.({ type: 'minor' });
}

interface Run {
  readonly final: boolean;
  result?: ChunkResult;
  error?: Error;
}

/**
 * The machinery both streams share: runs of chunks go out in order (inline, or to the worker a
 * few writes ahead) and their results come back in order to `deliver`.
 */
abstract class PayloadTransform extends Transform {
  readonly #worker: boolean;
  readonly #runs: Run[] = [];
  #heldWrite: TransformCallback | undefined;
  #heldFlush: TransformCallback | undefined;
  #afterRuns: ((callback: TransformCallback) => void) | undefined;
  #failed = false;

  constructor(options: AgeStreamOptions) {
    super();
    this.#worker = options.worker === true;
  }

  /** Takes one run's result, in order; throws to fail the stream. */
  protected abstract deliver(result: ChunkResult, final: boolean): void;

  protected get failed(): boolean {
    return this.#failed;
  }

  protected markFailed(): void {
    this.#failed = true;
  }

  /**
   * Seals or opens one run of chunks. `callback` is the write's (or, for the final run, the
   * flush's): it is called once the stream may go on, which with a worker can be before the
   * run's output is delivered, up to `workerRunsAhead` runs.
   */
  protected submit(
    op: ChunkOp,
    key: Buffer,
    counter: number,
    parts: readonly Buffer[],
    final: boolean,
    callback: TransformCallback,
    hash?: OutputHash,
    owned?: Buffer,
    inputHash?: number,
    lane?: number,
  ): void {
    if (!this.#worker) {
      // Inline too, each run's output (and a download's or read's input) is garbage soon after.
      collectYoung(parts.reduce((n, part) => n + part.length, 0));
      try {
        const result =
          op === 'seal'
            ? { out: sealChunks(key, counter, parts, final) }
            : openChunks(key, counter, parts, final);
        this.deliver(result, final);
      } catch (error) {
        this.#failed = true;
        callback(error as Error);
        return;
      }
      callback();
      return;
    }
    // The worker takes the bytes away (transfer), so they are gathered into a buffer of our own.
    // `owned` (a buffer of the stream's own, holding just `parts`) goes as it is, and comes back.
    let data = owned;
    if (data === undefined) {
      data = Buffer.allocUnsafeSlow(parts.reduce((n, part) => n + part.length, 0));
      let offset = 0;
      for (const part of parts) offset += part.copy(data, offset);
    }
    collectYoung(data.length);
    const run: Run = { final };
    this.#runs.push(run);
    const into = op === 'seal' && owned !== undefined ? sealedPool.pop() : undefined;
    runInWorker(op, key, counter, data, final, hash, owned !== undefined, into, inputHash, lane).then(
      (result) => {
        if (op === 'seal' && owned !== undefined && 'out' in result) sealedOwned.add(result.out.buffer);
        const input = 'input' in result ? result.input : undefined;
        if (input?.length === workerBatch && batchPool.length < batchPoolSize) batchPool.push(input);
        run.result = result;
        this.#drain();
      },
      (error: Error) => {
        run.error = error;
        this.#drain();
      },
    );
    if (final) this.#heldFlush = callback;
    else if (this.#runs.length < workerRunsAhead) callback();
    else this.#heldWrite = callback;
  }

  /** Calls `then(callback)` once every run submitted so far is delivered (at once if none is out). */
  protected afterRuns(callback: TransformCallback, then: (callback: TransformCallback) => void): void {
    if (this.#runs.length === 0) {
      then(callback);
      return;
    }
    this.#heldFlush = callback;
    this.#afterRuns = then;
  }

  #drain(): void {
    if (this.destroyed) return;
    while (!this.#failed && this.#runs[0] !== undefined && (this.#runs[0].result ?? this.#runs[0].error)) {
      const run = this.#runs.shift()!;
      try {
        if (run.error) throw run.error;
        this.deliver(run.result!, run.final);
      } catch (error) {
        this.#fail(error as Error);
        return;
      }
    }
    if (this.#failed) return;
    if (this.#heldWrite && this.#runs.length < workerRunsAhead) {
      const callback = this.#heldWrite;
      this.#heldWrite = undefined;
      callback();
    }
    if (this.#heldFlush && this.#runs.length === 0) {
      const callback = this.#heldFlush;
      const then = this.#afterRuns;
      this.#heldFlush = undefined;
      this.#afterRuns = undefined;
      if (then) then(callback);
      else callback();
    }
  }

  #fail(error: Error): void {
    this.#failed = true;
    this.#runs.length = 0;
    const callback = this.#heldFlush ?? this.#heldWrite;
    this.#heldFlush = undefined;
    this.#heldWrite = undefined;
    this.#afterRuns = undefined;
    if (callback) callback(error);
    else this.destroy(error);
  }
}

export class AgeEncryptStream extends PayloadTransform {
  readonly #key: Buffer;
  #counter = 0;
  // Holds back up to one chunk: a full chunk is final or not depending on whether more input follows.
  readonly #stage = Buffer.allocUnsafe(chunkSize);
  #staged = 0;
  readonly #workerHash: boolean;
  readonly #batching: boolean;
  /** With a worker: the plaintext gathered for the next run (held back when full: maybe final). */
  #batch: Buffer | undefined;
  #batched = 0;
  /** The output hash: computed here (inline), or on the worker (first job carries `#prefix`). */
  #hash: SegmentHash | undefined;
  #hashId: number | undefined;
  #prefix: Buffer | undefined;
  readonly #segmentSize: number;
  #segments: string[] | undefined;
  #outBytes = 0;
  /** The input's count and hash: here (inline), or on the worker under `#inHashId`. */
  #inBytes = 0;
  #inHash: Hash | undefined;
  #inHashId: number | undefined;
  #inDigest: string | undefined;
  readonly #onInput: ((bytes: number) => void) | undefined;
  readonly #checkInput: ((bytes: number) => Error | undefined) | undefined;

  constructor(recipients: readonly string[], options: AgeEncryptOptions = {}) {
    super(options);
    if (recipients.length === 0) {
      throw new AgeError('AGE_BAD_RECIPIENT', 'No recipient was given; pass at least one age1… recipient.');
    }
    const publicKeys = recipients.map(parseRecipient);
    const fileKey = randomBytes(fileKeyLength);
    const stanzas: Stanza[] = publicKeys.map((publicKey) => wrapFileKey(fileKey, publicKey));
    const nonce = randomBytes(payloadNonceLength);
    this.#key = payloadKey(fileKey, nonce);
    const header = Buffer.concat([encodeHeader(stanzas, fileKey), nonce]);
    this.#batching = options.worker === true;
    this.#workerHash = options.hashOutput === true && options.worker === true;
    this.#segmentSize = options.segmentSize ?? segmentSize;
    if (this.#workerHash) {
      this.#hashId = newOutputHashId();
      this.#prefix = header;
    } else if (options.hashOutput === true) {
      this.#hash = new SegmentHash(this.#segmentSize).update(header);
    }
    if (options.hashInput === true) {
      if (this.#batching) this.#inHashId = newOutputHashId();
      else this.#inHash = createHash('sha256');
    }
    this.#onInput = options.onInput;
    this.#checkInput = options.checkInput;
    this.#outBytes = header.length;
    this.push(header);
    fileKey.fill(0);
  }

  /** Bytes of encrypted output so far (header included). */
  get encryptedBytes(): number {
    return this.#outBytes;
  }

  /** Bytes of plaintext taken in so far. */
  get plaintextBytes(): number {
    return this.#inBytes;
  }

  /** SHA-256 (hex) of the whole plaintext input, with `hashInput`, once the stream ended. */
  plaintextDigest(): string {
    if (this.#inDigest === undefined) throw new Error('The plaintext was not hashed, or has not ended.');
    return this.#inDigest;
  }

  /** SHA-256 (hex) of each `segmentSize` bytes of the encrypted output, with `hashOutput`, once it ended. */
  encryptedSegments(): string[] {
    if (this.#segments === undefined)
      throw new Error('The encrypted output was not hashed, or has not ended.');
    return this.#segments;
  }

  protected override deliver(result: ChunkResult, final: boolean): void {
    if ('out' in result) {
      this.#outBytes += result.out.length;
      this.#hash?.update(result.out);
      if (final) {
        this.#segments = result.segments ?? this.#hash?.digests();
        this.#inDigest = result.inputDigest ?? this.#inHash?.digest('hex');
      }
      this.push(result.out);
    }
    if (final) {
      this.#key.fill(0);
      this.#hashId = undefined;
      this.#inHashId = undefined;
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // A stream that stops early leaves its running hash on the worker: drop it.
    if (this.#hashId !== undefined && this.#prefix === undefined) forgetOutputHash(this.#hashId);
    if (this.#inHashId !== undefined) forgetOutputHash(this.#inHashId);
    this.#hashId = undefined;
    this.#inHashId = undefined;
    super._destroy(error, callback);
  }

  /** The worker's output hash for the next job; the header goes with the first. */
  #nextHash(): OutputHash | undefined {
    if (!this.#workerHash || this.#hashId === undefined) return undefined;
    const prefix = this.#prefix;
    this.#prefix = undefined;
    const segment = { id: this.#hashId, segmentSize: this.#segmentSize };
    return prefix === undefined ? segment : { ...segment, prefix };
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#inBytes += chunk.length;
    this.#inHash?.update(chunk);
    this.#onInput?.(chunk.length);
    if (this.#batching) {
      this.#gather(chunk, 0, callback);
      return;
    }
    const parts: Buffer[] = [];
    let offset = 0;
    if (this.#staged > 0) {
      offset = chunk.copy(this.#stage, this.#staged, 0, chunkSize - this.#staged);
      this.#staged += offset;
      if (this.#staged < chunkSize || offset === chunk.length) {
        callback();
        return;
      }
      // The stage is sealed before this call returns (inline) or copied out (worker): reusable after.
      parts.push(this.#stage);
      this.#staged = 0;
    }
    // Seal straight from the input while more than a chunk remains; keep the rest for later.
    const whole = Math.max(0, Math.floor((chunk.length - offset - 1) / chunkSize) * chunkSize);
    if (whole > 0) parts.push(chunk.subarray(offset, offset + whole));
    const rest = chunk.subarray(offset + whole);
    const counter = this.#counter;
    this.#counter += parts.reduce((n, part) => n + part.length / chunkSize, 0);
    if (parts.length > 0) {
      // The rest is staged only once the run has the stage's old bytes, and before the callback:
      // the next write may run from inside it.
      this.submit(
        'seal',
        this.#key,
        counter,
        parts,
        false,
        (error) => {
          if (!error) this.#staged = rest.copy(this.#stage);
          callback(error);
        },
        this.#nextHash(),
      );
      return;
    }
    this.#staged = rest.copy(this.#stage);
    callback();
  }

  /**
   * Copies `chunk` into batch buffers (reused ones the worker handed back), each sent to the
   * worker as one run once it is full and more input follows: the final run is sent by the flush.
   */
  #gather(chunk: Buffer, from: number, callback: TransformCallback): void {
    let offset = from;
    if (
      offset === 0 &&
      this.#batch === undefined &&
      chunk.length === workerBatch &&
      chunk.byteOffset === 0 &&
      donated.delete(chunk.buffer)
    ) {
      // A whole run in a buffer given to us (batchBuffer): it is the batch, no copy.
      this.#batch = chunk;
      this.#batched = workerBatch;
      callback();
      return;
    }
    while (offset < chunk.length) {
      if (this.#batch !== undefined && this.#batched === workerBatch) {
        const batch = this.#batch;
        this.#batch = undefined;
        this.#batched = 0;
        const counter = this.#counter;
        this.#counter += workerBatch / chunkSize;
        this.submit(
          'seal',
          this.#key,
          counter,
          [batch],
          false,
          (error) => {
            if (error) callback(error);
            else this.#gather(chunk, offset, callback);
          },
          this.#nextHash(),
          batch,
          this.#inHashId,
        );
        return;
      }
      this.#batch ??= batchPool.pop() ?? Buffer.allocUnsafeSlow(workerBatch);
      const n = chunk.copy(this.#batch, this.#batched, offset);
      offset += n;
      this.#batched += n;
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.failed) {
      callback();
      return;
    }
    const error = this.#checkInput?.(this.#inBytes);
    if (error) {
      this.markFailed();
      callback(error);
      return;
    }
    if (this.#batching) {
      const batch = this.#batch ?? Buffer.allocUnsafeSlow(0);
      const filled = this.#batched;
      this.#batch = undefined;
      this.#batched = 0;
      this.submit(
        'seal',
        this.#key,
        this.#counter,
        [batch.subarray(0, filled)],
        true,
        callback,
        this.#nextHash(),
        batch.subarray(0, filled),
        this.#inHashId,
      );
      return;
    }
    const stage = this.#stage.subarray(0, this.#staged);
    this.#staged = 0;
    this.submit('seal', this.#key, this.#counter, [stage], true, callback, this.#nextHash());
  }
}

type DecryptPhase = 'header' | 'nonce' | 'payload';

export class AgeDecryptStream extends PayloadTransform {
  readonly #identities: ReturnType<typeof x25519Unwrapper>[];
  #phase: DecryptPhase = 'header';
  #head: Buffer = Buffer.alloc(0);
  #headLength = 0;
  #searchFrom = 0;
  readonly #nonceBytes = Buffer.alloc(payloadNonceLength);
  #nonceFilled = 0;
  #fileKey: Buffer | undefined;
  #key: Buffer | undefined;
  #counter = 0;
  readonly #stage = Buffer.allocUnsafe(sealedChunkSize);
  #staged = 0;
  #consumed = 0;
  /** The plaintext's count and (with `hashOutput`) hash, taken as it is put out. */
  #outBytes = 0;
  readonly #hash: Hash | undefined;
  #digest: string | undefined;

  constructor(identities: readonly string[], options: AgeDecryptOptions = {}) {
    super(options);
    this.#hash = options.hashOutput === true ? createHash('sha256') : undefined;
    if (identities.length === 0) {
      throw new AgeError(
        'AGE_BAD_IDENTITY',
        'No identity was given; pass at least one AGE-SECRET-KEY-1… identity.',
      );
    }
    this.#identities = identities.map((identity) => x25519Unwrapper(parseIdentity(identity)));
  }

  /** Bytes of plaintext put out so far. */
  get plaintextBytes(): number {
    return this.#outBytes;
  }

  /** SHA-256 (hex) of the whole decrypted output, with `hashOutput`, once the stream ended. */
  plaintextDigest(): string {
    if (this.#digest === undefined) throw new Error('The plaintext was not hashed, or has not ended.');
    return this.#digest;
  }

  protected override deliver(result: ChunkResult, final: boolean): void {
    if ('failure' in result) throw payloadOpenError(result.failure, result.chunk);
    this.#outBytes += result.out.length;
    this.#hash?.update(result.out);
    if (final) {
      this.#digest = this.#hash?.digest('hex');
      this.#key?.fill(0);
    }
    if (result.out.length > 0) this.push(result.out);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.failed) {
      callback();
      return;
    }
    this.#consumed += chunk.length;
    let data: Buffer | undefined = chunk;
    try {
      if (this.#phase === 'header') data = this.#takeHeader(data);
      if (data !== undefined && this.#phase === 'nonce') data = this.#takeNonce(data);
    } catch (error) {
      this.markFailed();
      callback(error as Error);
      return;
    }
    if (data === undefined || data.length === 0) {
      callback();
      return;
    }
    this.#takePayload(data, callback);
  }

  override _flush(callback: TransformCallback): void {
    if (this.failed) {
      callback();
      return;
    }
    // Runs still out report their errors first, as they would inline.
    this.afterRuns(callback, (done) => {
      const error = this.#endError();
      if (error) {
        this.markFailed();
        done(error);
        return;
      }
      const sealed = this.#stage.subarray(0, this.#staged);
      this.#staged = 0;
      this.submit('open', this.#key!, this.#counter, [sealed], true, done);
    });
  }

  #takePayload(data: Buffer, callback: TransformCallback): void {
    const parts: Buffer[] = [];
    let offset = 0;
    if (this.#staged > 0) {
      offset = data.copy(this.#stage, this.#staged, 0, sealedChunkSize - this.#staged);
      this.#staged += offset;
      if (this.#staged < sealedChunkSize || offset === data.length) {
        callback();
        return;
      }
      parts.push(this.#stage);
      this.#staged = 0;
    }
    // Open straight from the input while more than a chunk remains: those chunks are not final.
    const whole = Math.max(0, Math.floor((data.length - offset - 1) / sealedChunkSize) * sealedChunkSize);
    if (whole > 0) parts.push(data.subarray(offset, offset + whole));
    const rest = data.subarray(offset + whole);
    if (parts.length === 0) {
      this.#staged = rest.copy(this.#stage);
      callback();
      return;
    }
    const counter = this.#counter;
    this.#counter += parts.reduce((n, part) => n + part.length / sealedChunkSize, 0);
    this.submit('open', this.#key!, counter, parts, false, (error) => {
      if (!error) this.#staged = rest.copy(this.#stage);
      callback(error);
    });
  }

  /** Buffers input until the whole header is there; returns the bytes after it, if any. */
  #takeHeader(data: Buffer): Buffer | undefined {
    // Usually the first write holds the whole header and is parsed in place; otherwise the bytes
    // gather in a buffer of our own (the caller may reuse theirs), grown by doubling.
    let head = data;
    if (this.#headLength > 0) {
      const length = this.#headLength + data.length;
      if (length > this.#head.length) {
        const grown = Buffer.allocUnsafe(Math.max(length, 2 * this.#head.length));
        this.#head.copy(grown, 0, 0, this.#headLength);
        this.#head = grown;
      }
      data.copy(this.#head, this.#headLength);
      this.#headLength = length;
      head = this.#head.subarray(0, length);
    }
    checkAgeMagic(head);
    const { end, resume } = findHeaderEnd(head, this.#searchFrom);
    this.#searchFrom = resume;
    if (end === undefined) {
      if (head.length > maxHeaderLength) {
        throw new AgeError(
          'AGE_BAD_HEADER',
          `No end of the age header in the first ${head.length} bytes; the file is corrupted.`,
        );
      }
      if (this.#headLength === 0) {
        this.#head = Buffer.from(head);
        this.#headLength = head.length;
      }
      return undefined;
    }
    this.#fileKey = unwrapHeader(head.subarray(0, end), this.#identities);
    this.#head = Buffer.alloc(0);
    this.#headLength = 0;
    this.#phase = 'nonce';
    return head.subarray(end);
  }

  #takeNonce(data: Buffer): Buffer | undefined {
    const taken = data.copy(this.#nonceBytes, this.#nonceFilled);
    this.#nonceFilled += taken;
    if (this.#nonceFilled < payloadNonceLength) return undefined;
    this.#key = payloadKey(this.#fileKey!, this.#nonceBytes);
    this.#fileKey!.fill(0);
    this.#fileKey = undefined;
    this.#phase = 'payload';
    return data.subarray(taken);
  }

  /** Why the input cannot end here, if it cannot. */
  #endError(): AgeError | undefined {
    const again = 'the file is truncated. Copy it again from its source.';
    if (this.#phase === 'header') {
      const where =
        this.#consumed === 0
          ? 'The input is empty'
          : `The input ends inside the age header, after ${this.#consumed} bytes`;
      return new AgeError('AGE_TRUNCATED', `${where}; ${again}`);
    }
    if (this.#phase === 'nonce')
      return new AgeError('AGE_TRUNCATED', `The input ends inside the payload nonce; ${again}`);
    if (this.#staged === 0) {
      return new AgeError(
        'AGE_TRUNCATED',
        `The input ends after payload chunk ${this.#counter - 1}, without a final chunk; ${again}`,
      );
    }
    if (this.#staged < tagLength) {
      return new AgeError(
        'AGE_TRUNCATED',
        `The input ends ${this.#staged} bytes into payload chunk ${this.#counter}, too few for a chunk; ${again}`,
      );
    }
    return undefined;
  }
}

/** Fails early on input that cannot become an age header, instead of buffering up to the limit. */
export function checkAgeMagic(head: Buffer): void {
  const start = head.toString('latin1', 0, Math.min(head.length, armorBegin.length));
  if (versionPrefix.startsWith(start) || start.startsWith(versionPrefix)) return;
  if (start === armorBegin) {
    throw new AgeError(
      'AGE_UNSUPPORTED',
      `The input is ASCII-armored (${armorBegin}); this codec reads binary age files. ` +
        'Decrypt it with `age -d`, or write the files without `-a`.',
    );
  }
  if (armorBegin.startsWith(start)) return;
  throw new AgeError(
    'AGE_BAD_HEADER',
    `The input is not an age file: it starts with ${JSON.stringify(start.slice(0, 24))} instead of '${versionPrefix}v1'.`,
  );
}

/**
 * The file key of an age header (its bytes up to and including the MAC line) for the first of
 * `identities` that opens one of its stanzas, its MAC checked. Throws AgeError naming why not.
 */
export function unwrapHeader(header: Buffer, identities: readonly X25519Unwrapper[]): Buffer {
  const parsed = parseHeader(header);
  const types = new Set<string>();
  for (const stanza of parsed.stanzas) {
    types.add(stanza.args[0]!);
    if (stanza.args[0] === 'scrypt') {
      throw new AgeError(
        'AGE_UNSUPPORTED',
        'The file is encrypted with a passphrase (scrypt); this codec only decrypts to X25519 identities.',
      );
    }
    if (!isX25519Stanza(stanza)) continue;
    for (const identity of identities) {
      const fileKey = unwrapFileKey(stanza, identity);
      if (fileKey === undefined) continue;
      if (!verifyHeaderMac(fileKey, parsed)) {
        throw new AgeError(
          'AGE_AUTH_FAILED',
          'The header MAC does not match: the header was modified after encryption. Do not use this file; ' +
            'copy it again from its source.',
        );
      }
      return fileKey;
    }
  }
  const ours = identities.map((i) => formatRecipient(i.publicKey)).join(', ');
  throw new AgeError(
    'AGE_NO_MATCHING_IDENTITY',
    `None of the ${identities.length} identities given (recipients ${ours}) opens this file; its ` +
      `${parsed.stanzas.length} stanza(s) are of type ${[...types].join(', ')}. It was encrypted to another ` +
      'key: use the identity file of the node it was encrypted to.',
  );
}

/** The error for a run of payload chunks that did not open (ChunkResult's failure and chunk). */
export function payloadOpenError(failure: string, chunk: number): AgeError {
  const again = 'Copy it again from its source.';
  switch (failure) {
    case 'trailing':
      return new AgeError(
        'AGE_TRAILING_DATA',
        `Data follows the final chunk (chunk ${chunk}) of the age payload: the file has bytes appended. ${again}`,
      );
    case 'truncated':
      return new AgeError(
        'AGE_TRUNCATED',
        `The input ends after payload chunk ${chunk}, without a final chunk; the file is truncated. ${again}`,
      );
    case 'empty-final':
      return new AgeError(
        'AGE_BAD_PAYLOAD',
        `The final payload chunk (chunk ${chunk}) is empty, which age v1 allows only for an empty payload; the ` +
          'file was not written by a conforming encoder.',
      );
    default:
      return new AgeError(
        'AGE_AUTH_FAILED',
        `Payload chunk ${chunk} (payload bytes from ${chunk * sealedChunkSize}) does not authenticate: the file ` +
          `is damaged, tampered with, cut short inside a chunk, or has bytes appended. ${again}`,
      );
  }
}
