/**
 * The one-pass import's check of an encrypted disk (issue #20): each segment of the file is read
 * and hashed against the signed manifest's `encryptedSegmentSha256` a little ahead of the upload,
 * and the upload's reader (AgeFileReader's `gate`) reads a byte range only once every segment under
 * it checked out. The hash reads the NAS into the page cache; the reader takes the same bytes from
 * there a moment later and drops them behind itself, so the NAS is read once and the process holds
 * no segment in memory (docs/decisions.md, "Import in one pass").
 */

import { hashSegments, type SegmentJob, segmentsOf } from './file-digest.ts';
import { ageHead } from './head-check.ts';

/**
 * Segments hashed at once by every gate of a process together: each holds a thread of libuv's pool
 * (four) for a whole segment, and the upload's reads need the others.
 */
export class HashLanes {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(lanes = 2) {
    this.#free = Math.max(1, lanes);
  }

  /** Waits for a free lane; returns the function that gives it back. */
  async take(): Promise<() => void> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    };
  }
}

/** The lanes the gates share by default: two. */
export const defaultHashLanes = new HashLanes(2);

/** Bytes kept of segment 0 to find the age header in (as verify.ts keeps): 64 KiB. */
const headBytes = 64 * 1024;

export interface SegmentGateOptions {
  /** The encrypted file. */
  readonly path: string;
  /** Its size as the signed manifest says (already checked against the file). */
  readonly size: number;
  /** The signed manifest's SHA-256 of each segment. */
  readonly digests: readonly string[];
  readonly segmentSize: number;
  /** Shared with the other gates of the process (default `defaultHashLanes`). */
  readonly lanes?: HashLanes;
  /** Segments of this file hashed at once, at most (default 2). */
  readonly parallel?: number;
  /**
   * Bytes hashed ahead of the furthest byte asked for: default two segments and at least 8 MiB,
   * so that the reads ahead of the upload never wait for a hash. What lies ahead stays in the page
   * cache until the upload reads it (and drops it).
   */
  readonly ahead?: number;
  /**
   * The error for segment `index` that did not check out: its digest differs (no `cause`), or it
   * could not be read (`cause`).
   */
  readonly problem: (index: number, cause?: Error) => Error;
  /** Hears the bytes checked so far (a prefix of the file), and once when the last segment checked out. */
  readonly onChecked?: (bytes: number, done: boolean) => void;
}

/**
 * Checks the segments of one file in order, ahead of its reader: `until(end)` resolves once every
 * byte below `end` is in segments that checked out, and rejects with the first failed segment's
 * error when one under `end` did not. After a failure no segment is started again.
 */
export class SegmentGate {
  readonly #o: SegmentGateOptions;
  readonly #lanes: HashLanes;
  readonly #count: number;
  /** The file's segments, made once (a 2 TB disk has 32,768 of them). */
  readonly #segments: readonly SegmentJob[];
  readonly #ahead: number;
  readonly #ok: boolean[];
  readonly #jobs = new Set<Promise<void>>();
  readonly #waiting: { end: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  /** The furthest byte asked for. */
  #demand = 0;
  #next = 0;
  #running = 0;
  /** Segments checked out from the start. */
  #prefix = 0;
  #failed: { index: number; error: Error } | undefined;
  #closed = false;
  #head: Buffer | undefined;

  constructor(options: SegmentGateOptions) {
    this.#o = options;
    this.#lanes = options.lanes ?? defaultHashLanes;
    this.#segments = segmentsOf(options.path, options.size, options.segmentSize, headBytes);
    this.#count = this.#segments.length;
    this.#ahead = options.ahead ?? Math.max(2 * options.segmentSize, 8 << 20);
    this.#ok = new Array<boolean>(this.#count).fill(false);
  }

  /** Starts hashing the first segments (up to `ahead` bytes) before anything is asked. */
  start(): this {
    this.#pump();
    return this;
  }

  /** Bytes from the start of the file that checked out. */
  get checkedBytes(): number {
    return Math.min(this.#o.size, this.#prefix * this.#o.segmentSize);
  }

  /** The first failed segment's error, if any. */
  get failure(): Error | undefined {
    return this.#failed?.error;
  }

  /**
   * The age header and payload nonce of the file as segment 0 was hashed (`ageHead`), once segment
   * 0 checked out; undefined before, or when they do not fit in its first 64 KiB.
   */
  get head(): Buffer | undefined {
    return this.#head;
  }

  /** Resolves once the bytes [0, end) checked out; rejects if a segment under `end` did not. */
  until(end: number): Promise<void> {
    const want = Math.min(end, this.#o.size);
    if (this.#failed && want > this.#failed.index * this.#o.segmentSize) {
      return Promise.reject(this.#failed.error);
    }
    if (want <= this.checkedBytes) return Promise.resolve();
    if (this.#closed) return Promise.reject(new Error('The segment check of this file was stopped.'));
    this.#demand = Math.max(this.#demand, want);
    const waiting = new Promise<void>((resolve, reject) =>
      this.#waiting.push({ end: want, resolve, reject }),
    );
    this.#pump();
    return waiting;
  }

  /** Stops starting segments, fails whoever waits, and waits for the hashes in flight. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const w of this.#waiting.splice(0))
      w.reject(new Error('The segment check of this file was stopped.'));
    await Promise.allSettled([...this.#jobs]);
  }

  #pump(): void {
    const { segmentSize } = this.#o;
    while (
      !this.#closed &&
      !this.#failed &&
      this.#running < (this.#o.parallel ?? 2) &&
      this.#next < this.#count &&
      this.#next * segmentSize < this.#demand + this.#ahead
    ) {
      const index = this.#next++;
      this.#running++;
      const job = this.#check(index).finally(() => {
        this.#running--;
        this.#jobs.delete(job);
        this.#pump();
      });
      this.#jobs.add(job);
    }
  }

  async #check(index: number): Promise<void> {
    const give = await this.#lanes.take();
    try {
      if (this.#closed || (this.#failed && this.#failed.index < index)) return;
      const { digests } = this.#o;
      const job = this.#segments[index]!;
      // Left in the page cache: the upload reads these bytes next, and drops them behind itself.
      const [got] = await hashSegments([job], { lanes: 1, dropBehind: false });
      if (!got || 'error' in got) return this.#fail(index, this.#o.problem(index, got?.error));
      if (got.bytes !== job.length || got.sha256 !== digests[index])
        return this.#fail(index, this.#o.problem(index));
      if (index === 0) this.#head = ageHead(got.head);
      this.#ok[index] = true;
      while (this.#prefix < this.#count && this.#ok[this.#prefix]) this.#prefix++;
      const checked = this.checkedBytes;
      this.#o.onChecked?.(checked, this.#prefix === this.#count);
      for (let i = this.#waiting.length - 1; i >= 0; i--) {
        const w = this.#waiting[i]!;
        if (w.end <= checked) {
          this.#waiting.splice(i, 1);
          w.resolve();
        }
      }
    } finally {
      give();
    }
  }

  #fail(index: number, error: Error): void {
    if (this.#failed && this.#failed.index <= index) return;
    this.#failed = { index, error };
    // Whoever waits on bytes of this segment or after it: failed at once.
    for (let i = this.#waiting.length - 1; i >= 0; i--) {
      const w = this.#waiting[i]!;
      if (w.end > index * this.#o.segmentSize) {
        this.#waiting.splice(i, 1);
        w.reject(error);
      }
    }
  }
}
