import { close, fdatasync, open as openFd, write } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { type Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createEncryptStream, releaseSealedBuffer } from './age/encrypt.ts';
import { nativeDropCachedRange } from './age/payload-chunks.mjs';

/** What the transfer manifest records of one file. */
export interface FileRecord {
  /** Path relative to the transfer folder, with `.age`: `item-1/web-01-disk-0.vmdk.age`. */
  readonly path: string;
  /** Name of the decrypted file inside its OVF package: `web-01-disk-0.vmdk`. */
  readonly name: string;
  /** Plaintext size in bytes and SHA-256 (hex). */
  readonly size: number;
  readonly sha256: string;
  /**
   * Size of the encrypted file as it lies on the NAS, and the SHA-256 of each of its segments
   * (`segmentSize` bytes, the last shorter): checkable without the key, a segment at a time.
   */
  readonly encryptedSize: number;
  readonly encryptedSegmentSha256: string[];
}

export interface WriteEncryptedOptions {
  readonly source: Readable;
  /** The transfer folder. */
  readonly root: string;
  /** Relative path of the final encrypted file. */
  readonly path: string;
  readonly name: string;
  readonly recipients: readonly string[];
  readonly signal?: AbortSignal;
  /** Called with each plaintext chunk's length, for progress. */
  readonly onBytes?: (n: number) => void;
  /**
   * Hash and encrypt on a worker thread (large files): this thread only gathers the input into
   * batches and writes the output.
   */
  readonly worker?: boolean;
  /**
   * Called once the source ended, with its size, before the last chunk is sealed: an error it
   * returns fails the write (a download cut short), and no file is left.
   */
  readonly checkSize?: (size: number) => Error | undefined;
  /**
   * Called once the whole file is sealed and on the disk, before it takes its final name, with
   * the plaintext's size and SHA-256: a rejection fails the write, and no file is left.
   */
  readonly confirm?: (plain: { readonly size: number; readonly sha256: string }) => Promise<void>;
  /**
   * Bytes per segment of the encrypted file's digests (default 64 MiB). transfer.json states one
   * size for all files (export-transfer.ts writes the default): only tests set another here.
   */
  readonly segmentSize?: number;
}

/**
 * Streams `source` through SHA-256 → age → SHA-256 (all on the worker, with `worker`) into `<path>.partial`, flushes it to disk and
 * renames it to `<path>`: a file under its final name is always complete. On failure the partial
 * file is removed.
 */
export async function writeEncryptedFile(options: WriteEncryptedOptions): Promise<FileRecord> {
  const final = `${options.root}/${options.path}`;
  const partial = `${final}.partial`;
  // Plaintext and encrypted output are hashed by the encrypting stream itself (on its worker, with
  // `worker`): one stage between the source and the file.
  const cipher = createEncryptStream(options.recipients, {
    worker: options.worker === true,
    hashOutput: true,
    hashInput: true,
    ...(options.onBytes ? { onInput: options.onBytes } : {}),
    ...(options.checkSize ? { checkInput: options.checkSize } : {}),
    ...(options.segmentSize ? { segmentSize: options.segmentSize } : {}),
  });
  try {
    await pipeline(
      options.source,
      cipher,
      new FileSink(partial),
      ...(options.signal ? [{ signal: options.signal }] : []),
    );
    const fh = await open(partial, 'r+');
    try {
      await fh.sync();
      // On the disk now: its last pages leave the cache too (0: to the end of the file).
      nativeDropCachedRange?.(fh.fd, 0, 0);
    } finally {
      await fh.close();
    }
    await options.confirm?.({ size: cipher.plaintextBytes, sha256: cipher.plaintextDigest() });
    await rename(partial, final);
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
  return {
    path: options.path,
    name: options.name,
    size: cipher.plaintextBytes,
    sha256: cipher.plaintextDigest(),
    encryptedSize: cipher.encryptedBytes,
    encryptedSegmentSha256: cipher.encryptedSegments(),
  };
}

/** Bytes written between two flushes started while writing (see FileSink). */
const flushEvery = 64 << 20;

/**
 * Writes a stream into a new file, like `fs.createWriteStream`, and gives each buffer back to the
 * age encoder once written (see `releaseSealedBuffer`), so its worker seals into it again.
 * Every 64 MiB it starts an fdatasync in the background (writing goes on meanwhile): the disk
 * writes the file while it downloads instead of all of it in the final fsync, and the dirty pages
 * waiting for the disk stay few.
 */
class FileSink extends Writable {
  #fd: number | undefined;
  #unflushed = 0;
  #flushing: Promise<void> | undefined;
  #writing: Promise<void> | undefined;
  #written = 0;
  #dropped = 0;

  constructor(private readonly path: string) {
    super({ highWaterMark: 1 << 20 });
  }

  override _construct(callback: (error?: Error | null) => void): void {
    openFd(this.path, 'w', (error, fd) => {
      if (!error) this.#fd = fd;
      callback(error);
    });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (error?: Error | null) => void): void {
    const fd = this.#fd!;
    if (this.#flushError) {
      callback(this.#flushError);
      return;
    }
    let written!: () => void;
    this.#writing = new Promise((resolve) => {
      written = resolve;
    });
    const finish = (error?: Error | null): void => {
      this.#writing = undefined;
      written();
      callback(error);
    };
    const next = (offset: number): void => {
      // Destroyed meanwhile: write no more, so the descriptor is closed only once this is done.
      if (this.destroyed) {
        finish();
        return;
      }
      if (offset === chunk.length) {
        releaseSealedBuffer(chunk);
        this.#written += chunk.length;
        this.#unflushed += chunk.length;
        if (this.#unflushed >= flushEvery && this.#flushing === undefined) this.#flush(fd);
        finish();
        return;
      }
      write(fd, chunk, offset, chunk.length - offset, null, (error, n) => {
        if (error) finish(error);
        else next(offset + n);
      });
    };
    next(0);
  }

  /**
   * Starts an fdatasync; its error (the disk failing) fails the next write or the end. Once it is
   * done, what it flushed is dropped from the page cache: the agent never reads it again, and a
   * NAS filled with terabytes would otherwise push everything else out of this host's cache
   * (docs/decisions.md, "Drop-behind on the NAS").
   */
  #flush(fd: number): void {
    this.#unflushed = 0;
    const upTo = this.#written;
    this.#flushing = new Promise((resolve) => {
      fdatasync(fd, (error) => {
        this.#flushing = undefined;
        if (error) this.#flushError ??= error;
        else {
          // From the start of the 64 KiB block the last drop ended in: the kernel drops whole
          // pages only, so the page that drop ended inside is dropped now.
          const from = this.#dropped - (this.#dropped % 65_536);
          nativeDropCachedRange?.(fd, from, upTo - from);
          this.#dropped = upTo;
        }
        resolve();
      });
    });
  }

  #flushError: Error | undefined;

  override _final(callback: (error?: Error | null) => void): void {
    // The file is closed only once a flush in flight is done with it.
    void (this.#flushing ?? Promise.resolve()).then(() => {
      if (this.#flushError) callback(this.#flushError);
      else this.#close(callback);
    });
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Destroyed with a write under way (a failed pipeline): the descriptor is closed once that
    // write and any flush it started are done with it, never while another file could get its number.
    void (async () => {
      await this.#writing;
      await this.#flushing;
      this.#close((closeError) => callback(error ?? closeError));
    })();
  }

  #close(callback: (error?: Error | null) => void): void {
    const fd = this.#fd;
    this.#fd = undefined;
    if (fd === undefined) callback();
    else close(fd, (error) => callback(error));
  }
}
