/**
 * An age file on disk, decrypted by positional reads into a few reused buffers, each run of
 * payload chunks opened in place: the import's upload source. Unlike a read stream piped into
 * AgeDecryptStream, nothing is allocated per read (a fresh 1 MiB buffer is fresh pages: a page
 * fault per 4 KiB, and on this VM a fault on the host too) and nothing is copied; the reads run
 * a few runs ahead on the thread pool while the caller sends. docs/decisions.md, "The upload's
 * read path".
 */
import { createHash, type Hash } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';
import {
  checkAgeMagic,
  maxHeaderLength,
  payloadKey,
  payloadNonceLength,
  payloadOpenError,
  unwrapHeader,
} from './encrypt.ts';
import { AgeError } from './errors.ts';
import { findHeaderEnd } from './header.ts';
import { parseIdentity } from './keys.ts';
import { nativeDropCachedRange, openChunks, sealedChunkSize, tagLength } from './payload-chunks.mjs';
import { x25519Unwrapper } from './x25519.ts';

/** Sealed chunks per read: 16 (1 MiB of plaintext), the size the upload measured best with. */
const runChunks = 16;
const runBytes = runChunks * sealedChunkSize;
/** Reads in flight ahead of the one the caller waits for. */
const readsAhead = 3;
/** Bytes read between two drops from the page cache (dropBehind). */
const dropWindow = 8 << 20;
/** Where drops are cut: a multiple of every page size. */
const dropAlign = 64 * 1024;
/** The first read for the header: enough for a header with hundreds of recipients. */
const firstRead = 64 * 1024;

export interface AgeFileReaderOptions {
  readonly identities: readonly string[];
  /**
   * The file's header and payload nonce as verified earlier (`ageHead`): unless the file starts
   * with exactly these bytes, `mismatch()` is thrown. With the same header and nonce the payload
   * key is the one that was verified, and every chunk that authenticates is the one verified.
   */
  readonly head?: Buffer;
  readonly mismatch?: () => Error;
  /** SHA-256 of the plaintext, for `plaintextDigest()` (for a file not verified by its head). */
  readonly hashPlaintext?: boolean;
  /**
   * Drop what was read from the page cache, 8 MiB at a time and the rest on close: for a file
   * read for the last time (docs/decisions.md, "Drop-behind on the NAS"). Needs the native addon.
   */
  readonly dropBehind?: boolean;
  /**
   * Reads only bytes that checked out: each positional read of [position, end) waits for
   * `until(end)`, and fails with its error (the one-pass import's SegmentGate, issue #20).
   */
  readonly gate?: ReadGate;
}

/** What a read waits for: the bytes below `end` checked (SegmentGate). */
export interface ReadGate {
  until(end: number): Promise<void>;
}

interface Run {
  readonly index: number;
  readonly done: Promise<Buffer>;
}

export class AgeFileReader {
  readonly #handle: FileHandle;
  readonly #key: Buffer;
  readonly #payloadStart: number;
  readonly #size: number;
  readonly #runs: number;
  readonly #hash: Hash | undefined;
  readonly #drop: boolean;
  readonly #gate: ReadGate | undefined;
  readonly #pool: Buffer[] = [];
  /** The buffers of the runs handed out and not released. */
  readonly #out = new Set<ArrayBufferLike>();
  readonly #inFlight: Run[] = [];
  #issued = 0;
  #delivered = 0;
  #plaintextBytes = 0;
  #dropped: number;
  #digest: string | undefined;
  #closed: Promise<void> | undefined;
  /** The read next() waits for (no longer in #inFlight). */
  #waiting: Promise<Buffer> | undefined;
  #failure: Error | undefined;

  private constructor(
    handle: FileHandle,
    key: Buffer,
    payloadStart: number,
    size: number,
    options: AgeFileReaderOptions,
  ) {
    this.#handle = handle;
    this.#key = key;
    this.#payloadStart = payloadStart;
    this.#size = size;
    this.#runs = Math.ceil((size - payloadStart) / runBytes);
    this.#hash = options.hashPlaintext ? createHash('sha256') : undefined;
    this.#drop = options.dropBehind === true && nativeDropCachedRange !== undefined;
    this.#dropped = 0;
    this.#gate = options.gate;
  }

  /**
   * Opens `path`, reads and checks its header (against `head` if given) and unwraps its key.
   * Throws AgeError for a file that is not a whole age file for these identities.
   */
  static async open(path: string, options: AgeFileReaderOptions): Promise<AgeFileReader> {
    const unwrappers = options.identities.map((identity) => x25519Unwrapper(parseIdentity(identity)));
    if (unwrappers.length === 0) {
      throw new AgeError(
        'AGE_BAD_IDENTITY',
        'No identity was given; pass at least one AGE-SECRET-KEY-1… identity.',
      );
    }
    const handle = await open(path, 'r');
    try {
      const { size } = await handle.stat();
      const truncated = (where: string) =>
        new AgeError('AGE_TRUNCATED', `${where}; the file is truncated. Copy it again from its source.`);
      const gate = options.gate;
      let head = await readAt(
        handle,
        0,
        Math.min(size, Math.max(firstRead, options.head?.length ?? 0)),
        gate,
      );
      if (options.head && !head.subarray(0, options.head.length).equals(options.head)) {
        throw (
          options.mismatch?.() ??
          new AgeError('AGE_BAD_HEADER', 'The file does not start with the age header it was verified with.')
        );
      }
      if (size === 0) throw truncated('The input is empty');
      checkAgeMagic(head);
      let found = findHeaderEnd(head);
      while (found.end === undefined && head.length < size && head.length < maxHeaderLength) {
        const before = head.length;
        head = await readAt(handle, 0, Math.min(size, maxHeaderLength, head.length * 4), gate);
        if (head.length <= before) {
          throw truncated(
            `The file shrank below ${size} bytes while its header was read (it ends at byte ${head.length})`,
          );
        }
        found = findHeaderEnd(head);
      }
      const end = found.end;
      if (end === undefined) {
        if (head.length >= size) throw truncated(`The input ends inside the age header, after ${size} bytes`);
        throw new AgeError(
          'AGE_BAD_HEADER',
          `No end of the age header in the first ${head.length} bytes; the file is corrupted.`,
        );
      }
      const payloadStart = end + payloadNonceLength;
      if (size < payloadStart) throw truncated('The input ends inside the payload nonce');
      const nonce =
        head.length >= payloadStart
          ? head.subarray(end, payloadStart)
          : await readAt(handle, end, payloadNonceLength, gate);
      if (nonce.length < payloadNonceLength) {
        throw truncated(`The file shrank below ${size} bytes while its payload nonce was read`);
      }
      const fileKey = unwrapHeader(head.subarray(0, end), unwrappers);
      const key = payloadKey(fileKey, nonce);
      fileKey.fill(0);
      const payload = size - payloadStart;
      if (payload === 0) throw truncated('The input ends after the payload nonce, without a final chunk');
      const last = payload % sealedChunkSize;
      if (last > 0 && last < tagLength) {
        const chunk = Math.floor(payload / sealedChunkSize);
        throw truncated(`The input ends ${last} bytes into payload chunk ${chunk}, too few for a chunk`);
      }
      return new AgeFileReader(handle, key, payloadStart, size, options);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Bytes of plaintext handed out so far. */
  get plaintextBytes(): number {
    return this.#plaintextBytes;
  }

  /**
   * The plaintext's SHA-256 (hex), with `hashPlaintext`, once the last run was handed out;
   * undefined before, or without `hashPlaintext`.
   */
  plaintextDigest(): string | undefined {
    return this.#digest;
  }

  /**
   * The next run of plaintext (1 MiB, the last one shorter), undefined at the end. It lives in
   * one of the reader's buffers: hand it back with `release()` once nothing uses it (a buffer
   * never handed back is left to the garbage collector). Throws AgeError for a chunk that does not
   * authenticate (damaged, or the file changed since it was verified).
   */
  async next(): Promise<Buffer | undefined> {
    if (this.#failure) throw this.#failure;
    if (this.#closed) throw new Error('The age file reader is closed.');
    if (this.#delivered === this.#runs) return undefined;
    this.#fill();
    const run = this.#inFlight.shift()!;
    this.#waiting = run.done;
    let out: Buffer;
    try {
      out = await run.done;
    } catch (error) {
      this.#failure = error as Error;
      throw error;
    } finally {
      this.#waiting = undefined;
    }
    // Closed while this read was out: the file is no longer ours to read or drop.
    if (this.#closed) throw new Error('The age file reader is closed.');
    this.#delivered++;
    this.#plaintextBytes += out.length;
    this.#out.add(out.buffer);
    this.#hash?.update(out);
    if (this.#delivered === this.#runs) {
      this.#digest = this.#hash?.digest('hex');
      this.#key.fill(0);
    }
    this.#dropBehind(false);
    this.#fill();
    return out;
  }

  /** Takes back a buffer `next()` handed out, for a later read. */
  release(plain: Buffer): void {
    // Only a buffer handed out and not yet back: one given back twice would take two reads at once.
    if (!this.#out.delete(plain.buffer)) return;
    if (this.#pool.length <= readsAhead + 1) this.#pool.push(Buffer.from(plain.buffer, 0, runBytes));
  }

  /** Waits for the reads still out, drops the rest behind (dropBehind) and closes the file. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await Promise.allSettled([...this.#inFlight.map((r) => r.done), this.#waiting]);
      this.#inFlight.length = 0;
      this.#key.fill(0);
      this.#dropBehind(true);
      await this.#handle.close();
    })();
    return this.#closed;
  }

  /** Starts reads until `readsAhead` past the one next() takes are out, or none is left to start. */
  #fill(): void {
    while (this.#inFlight.length < readsAhead + 1 && this.#issued < this.#runs) {
      const index = this.#issued++;
      const done = this.#read(index);
      // Its failure is taken by next() in turn; until then it must not count as unhandled.
      done.catch(() => undefined);
      this.#inFlight.push({ index, done });
    }
  }

  async #read(index: number): Promise<Buffer> {
    const final = index === this.#runs - 1;
    const start = this.#payloadStart + index * runBytes;
    const length = final ? this.#size - start : runBytes;
    // Not a byte before it checked out (then it is in the page cache the check just filled).
    await this.#gate?.until(start + length);
    const buffer = this.#pool.pop() ?? Buffer.allocUnsafeSlow(runBytes);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await this.#handle.read(buffer, got, length - got, start + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (got < length) {
      throw new AgeError(
        'AGE_TRUNCATED',
        `The file ends at byte ${start + got}, before the ${this.#size} bytes it had when opened: it shrank ` +
          'while it was read. Copy it again from its source.',
      );
    }
    const sealed = buffer.subarray(0, length);
    const opened = openChunks(this.#key, index * runChunks, [sealed], final, buffer);
    if (opened.failure !== undefined) throw payloadOpenError(opened.failure, opened.chunk);
    return opened.out;
  }

  /**
   * Drops the bytes delivered so far from the page cache, a window at a time, cut at 64 KiB; at
   * the end, the whole file. Uneven cuts left ~0.5 MiB cached at each one: the kernel keeps a
   * file's pages in large folios, and drops none that a cut splits.
   */
  #dropBehind(all: boolean): void {
    if (!this.#drop || nativeDropCachedRange === undefined) return;
    if (all) {
      nativeDropCachedRange(this.#handle.fd, 0, 0);
      return;
    }
    const delivered = Math.min(this.#size, this.#payloadStart + this.#delivered * runBytes);
    const upTo = delivered - (delivered % dropAlign);
    if (upTo - this.#dropped < dropWindow) return;
    nativeDropCachedRange(this.#handle.fd, this.#dropped, upTo - this.#dropped);
    this.#dropped = upTo;
  }
}

async function readAt(
  handle: FileHandle,
  position: number,
  length: number,
  gate?: ReadGate,
): Promise<Buffer> {
  await gate?.until(position + length);
  const buffer = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await handle.read(buffer, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buffer.subarray(0, got);
}
