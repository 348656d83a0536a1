import { nativeDropCachedRange } from './age/payload-chunks.mjs';

/**
 * Whether this build can drop a file's pages from the page cache (the native addon is loaded):
 * what the import's reads (AgeFileReader), the check (hashSegments) and the export (FileSink) do
 * with files they read or write for the last time. On a VM that gives its free memory back to its
 * host, every page the cache grows by costs a fault to fill again (docs/decisions.md, "Drop-behind
 * on the NAS").
 */
export const canDropBehind = nativeDropCachedRange !== undefined;
