import { execFile, execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, open } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Bytes of `path` in the page cache, as util-linux's `fincore` counts them (mincore(2) on a
 * mapping of the file): the peer that tells whether a read dropped its pages behind it.
 */
export async function cachedBytes(path: string): Promise<number> {
  const { stdout } = await run('fincore', ['--bytes', '--noheadings', '--output', 'RES', path]);
  return Number(stdout.trim());
}

/** This machine's page size (4 KiB here; 16 or 64 KiB on some arm64 kernels). */
const pageSize = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim());

/** What fincore counts of a file of `size` bytes wholly in the cache: whole pages. */
export const inPages = (size: number): number => Math.ceil(size / pageSize) * pageSize;

/**
 * Writes `bytes` to `path` and waits until they are on the disk: the kernel drops only clean
 * pages from the cache, so a file still being written back would stay cached whatever a reader
 * advises.
 */
export async function writeSynced(path: string, bytes: Uint8Array): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(bytes);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/**
 * Whether files under `dir` can leave the page cache: not on tmpfs or ramfs, whose pages are the
 * files themselves (TMPDIR is tmpfs on some systems).
 */
export async function dropsPages(dir: string): Promise<boolean> {
  const { stdout } = await run('stat', ['-f', '-c', '%T', dir]);
  return !['tmpfs', 'ramfs'].includes(stdout.trim());
}

/**
 * A new folder on the disk the repository is on (under its ignored .cache/), for tests that need
 * files to leave the page cache when asked, wherever TMPDIR is.
 */
export async function diskFolder(prefix: string): Promise<string> {
  const parent = join(import.meta.dirname, '..', '..', '.cache', 'test-files');
  await mkdir(parent, { recursive: true });
  return mkdtemp(join(parent, prefix));
}
