import type { Readable } from 'node:stream';
import { nativeDropCachedRange } from './age/payload-chunks.mjs';

/** Whether this build can drop a file's pages from the page cache (the native addon is loaded). */
export const canDropBehind = nativeDropCachedRange !== undefined;

/** Bytes read between two drops: few calls, and little of the file left cached behind the reader. */
const window = 8 << 20;

/**
 * Makes `stream`, a reader of the open file `fd` from byte `start` on, drop what it has read from
 * the page cache, `window` bytes at a time and the rest at its end. For a file read for the last
 * time (a disk of the transfer while it uploads): its pages would push everything else out of
 * the cache, and on a VM that gives its free memory back to its host, every page the cache grows
 * by costs a fault to fill again (docs/decisions.md, "Drop-behind on the NAS"). Does nothing
 * without the native addon. Call it once the stream is piped: it listens to `data`, which would
 * start an unpiped stream flowing.
 */
export function dropBehind(stream: Readable, fd: number, start = 0): void {
  const drop = nativeDropCachedRange;
  if (!drop) return;
  let read = 0;
  let dropped = 0;
  const flush = () => {
    // The descriptor stays open until after `end` (the stream closes it then).
    if (read > dropped) drop(fd, start + dropped, read - dropped);
    dropped = read;
  };
  stream.on('data', (chunk: Buffer) => {
    read += chunk.length;
    if (read - dropped >= window) flush();
  });
  stream.on('end', flush);
}
