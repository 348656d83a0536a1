import { execFile } from 'node:child_process';
import { open } from 'node:fs/promises';
import { promisify } from 'node:util';

/**
 * Bytes of `path` in the page cache, as util-linux's `fincore` counts them (mincore(2) on a
 * mapping of the file): the peer that tells whether a read dropped its pages behind it.
 */
export async function cachedBytes(path: string): Promise<number> {
  const { stdout } = await promisify(execFile)('fincore', [
    '--bytes',
    '--noheadings',
    '--output',
    'RES',
    path,
  ]);
  return Number(stdout.trim());
}

/** What fincore counts of a file of `size` bytes wholly in the cache: whole 4 KiB pages. */
export const inPages = (size: number): number => Math.ceil(size / 4096) * 4096;

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
