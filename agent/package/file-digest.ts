import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { nativeDropCachedRange, nativeSha256Range } from './age/payload-chunks.mjs';

/** Bytes per read: large enough that the read and hash calls cost little per byte. */
const readSize = 1 << 20;

/** One segment of a file to hash: the bytes [offset, offset + length). */
export interface SegmentJob {
  readonly path: string;
  readonly offset: number;
  readonly length: number;
  /** Keep a copy of the first this many bytes read (of a file's first segment: its head). */
  readonly headBytes?: number;
}

/** What the hash of one segment came to. */
export type SegmentDigest =
  | {
      /** SHA-256 (hex) of the bytes read. */
      readonly sha256: string;
      /** Bytes read: fewer than asked when the file ended first. */
      readonly bytes: number;
      /** The first `headBytes` bytes, as they were hashed. */
      readonly head: Buffer;
    }
  | { readonly error: Error };

export interface HashSegmentsOptions {
  /** Segments hashed at the same time (default 2). */
  readonly lanes?: number;
  /** Hears, per job (its index), the bytes hashed so far. */
  readonly onBytes?: (job: number, bytes: number) => void;
  /** Hears each job's result as soon as it is done. */
  readonly onDone?: (job: number, result: SegmentDigest) => void;
  /** Read and hash on the thread pool with the native addon, when it is built (default true). */
  readonly native?: boolean;
  /**
   * Drop each MiB from the page cache once hashed (with the native addon; docs/decisions.md,
   * "Drop-behind on the NAS"): for files not read again soon. Default false.
   */
  readonly dropBehind?: boolean;
}

/**
 * SHA-256 of each segment, `lanes` at a time. Each lane works through its own contiguous run of
 * the jobs and, once done, takes the back half of the longest run left: the lanes read the disk
 * at places far apart, which a disk serves faster than one stream (measured on this project's
 * machines: two such readers ~2 GB/s where one read ~1 GB/s). With the native addon each segment
 * is read and hashed on the thread pool, so the lanes hash on as many cores; without it they hash
 * on this thread (~2 GB/s with SHA instructions), the next 1 MiB read in flight meanwhile.
 */
export async function hashSegments(
  jobs: readonly SegmentJob[],
  options: HashSegmentsOptions = {},
): Promise<SegmentDigest[]> {
  const results = new Array<SegmentDigest>(jobs.length);
  const lanes = Math.max(1, Math.min(options.lanes ?? 2, jobs.length));
  const runs = Array.from({ length: lanes }, (_, k) => ({
    next: Math.floor((k * jobs.length) / lanes),
    end: Math.floor(((k + 1) * jobs.length) / lanes),
  }));
  await Promise.all(
    runs.map(async (run) => {
      for (;;) {
        while (run.next < run.end) {
          const i = run.next++;
          results[i] = await hashSegment(jobs[i]!, options, (n) => options.onBytes?.(i, n)).catch(
            (error: Error) => ({
              error,
            }),
          );
          options.onDone?.(i, results[i]!);
        }
        const longest = runs.reduce((a, b) => (b.end - b.next > a.end - a.next ? b : a));
        if (longest.end - longest.next < 2) return;
        const middle = Math.ceil((longest.next + longest.end) / 2);
        run.next = middle;
        run.end = longest.end;
        longest.end = middle;
      }
    }),
  );
  return results;
}

async function hashSegment(
  job: SegmentJob,
  options: HashSegmentsOptions,
  onBytes: (bytes: number) => void,
): Promise<SegmentDigest> {
  const dropBehind = options.dropBehind === true;
  // A file handle per segment: each has its own read-ahead in the kernel.
  const fh = await open(job.path, 'r');
  if (nativeSha256Range && options.native !== false) {
    try {
      const r = await nativeSha256Range(fh.fd, job.offset, job.length, job.headBytes ?? 0, dropBehind);
      onBytes(r.bytes);
      return r;
    } finally {
      await fh.close();
    }
  }
  const hash = createHash('sha256');
  const headBytes = job.headBytes ?? 0;
  let head = Buffer.alloc(0);
  let done = 0;
  let asked = 0;
  // Two buffers: one being hashed, one being read into.
  const buffers = [Buffer.allocUnsafeSlow(readSize), Buffer.allocUnsafeSlow(readSize)];
  const read = (i: number) => {
    const length = Math.min(readSize, job.length - asked);
    const position = job.offset + asked;
    asked += length;
    return length === 0
      ? Promise.resolve({ bytesRead: 0, buffer: buffers[i % 2]! })
      : fh.read(buffers[i % 2]!, 0, length, position);
  };
  let pending = read(0);
  try {
    for (let i = 1; ; i++) {
      const { bytesRead, buffer } = await pending;
      if (bytesRead === 0) break;
      // A short read before the segment's end: the file ended; read no further.
      if (done + bytesRead < asked) asked = job.length;
      pending = read(i);
      const data = buffer.subarray(0, bytesRead);
      if (head.length < headBytes) head = Buffer.concat([head, data.subarray(0, headBytes - head.length)]);
      hash.update(data);
      if (dropBehind) nativeDropCachedRange?.(fh.fd, job.offset + done, bytesRead);
      done += bytesRead;
      onBytes(done);
    }
    return { sha256: hash.digest('hex'), bytes: done, head };
  } finally {
    await pending.catch(() => undefined);
    await fh.close();
  }
}

/** How many segments of `segmentSize` bytes a file of `size` bytes has (the last shorter; one if empty). */
export const segmentCount = (size: number, segmentSize: number): number =>
  Math.max(1, Math.ceil(size / segmentSize));

/** The length of segment `i` of a file of `size` bytes. */
export const segmentLength = (i: number, size: number, segmentSize: number): number =>
  Math.max(0, Math.min(segmentSize, size - i * segmentSize));

/** The segments of a file of `size` bytes, `segmentSize` each, to hash. */
export function segmentsOf(path: string, size: number, segmentSize: number, headBytes = 0): SegmentJob[] {
  return Array.from({ length: segmentCount(size, segmentSize) }, (_, i) => ({
    path,
    offset: i * segmentSize,
    length: segmentLength(i, size, segmentSize),
    ...(i === 0 && headBytes > 0 ? { headBytes } : {}),
  }));
}
