import { randomBytes } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeDropCachedRange, nativeSha256Range } from '../../../agent/package/age/payload-chunks.mjs';
import { canDropBehind } from '../../../agent/package/drop-behind.ts';
import { hashSegments, segmentsOf } from '../../../agent/package/file-digest.ts';
import { cachedBytes, diskFolder, inPages, writeSynced } from '../../support/page-cache.ts';

const MiB = 1024 * 1024;
let dir: string;
beforeAll(async () => {
  dir = await diskFolder('drop-behind-');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

// The files are on the repository's disk (diskFolder), not under TMPDIR, which may be tmpfs:
// tmpfs can drop nothing from the cache.
async function cachedFile(name: string, size: number): Promise<string> {
  const path = join(dir, name);
  await writeSynced(path, randomBytes(size));
  expect(await cachedBytes(path), `${path} should be in the page cache once written`).toBe(inPages(size));
  return path;
}

// The import's reads drop behind too: test/agent/package/age/file-reader.test.ts.
describe('dropping from the page cache', () => {
  it('is there unless ODT_NATIVE=0 (the addon makes the call; Node.js has none)', () => {
    expect(canDropBehind).toBe(process.env.ODT_NATIVE !== '0');
  });

  it.skipIf(!canDropBehind)(
    'the addon calls take whole byte counts up to 2^53 - 1 and name their arguments otherwise',
    async () => {
      const path = await cachedFile('args', 4096);
      const fh = await open(path, 'r');
      try {
        const drop = nativeDropCachedRange!;
        expect(drop(fh.fd, 0, 0)).toBe(0);
        for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
          expect(() => drop(fh.fd, bad, 10), String(bad)).toThrow(/dropCachedRange\(fd, offset, length\)/);
          expect(() => nativeSha256Range!(fh.fd, 0, bad, 0), String(bad)).toThrow(/sha256Range\(fd, offset/);
        }
        expect(() => (drop as (...a: unknown[]) => number)(fh.fd, 0)).toThrow(TypeError);
        expect(() => (nativeSha256Range as (...a: unknown[]) => unknown)(fh.fd, 0, 10, 0, 'yes')).toThrow(
          /and a boolean/,
        );
        // dropBehind left out: read and hashed, nothing dropped.
        const r = await (nativeSha256Range as (...a: unknown[]) => Promise<{ bytes: number }>)(
          fh.fd,
          0,
          4096,
          0,
          undefined,
        );
        expect(r.bytes).toBe(4096);
        expect(await cachedBytes(path)).toBe(4096);
      } finally {
        await fh.close();
      }
    },
  );

  it.each(canDropBehind ? [true, false] : [false])(
    'hashSegments leaves a file cached when not asked to drop (native addon: %s)',
    async (native) => {
      const path = await cachedFile(`kept-${native}`, 3 * MiB);
      const [r] = await hashSegments(segmentsOf(path, 3 * MiB, 4 * MiB), { native });
      expect(r).toMatchObject({ bytes: 3 * MiB });
      expect(await cachedBytes(path)).toBe(3 * MiB);
    },
  );

  it.each(canDropBehind ? [true, false] : [])(
    'hashSegments with dropBehind leaves none of the file cached (native addon: %s)',
    async (native) => {
      const size = 10 * MiB + 5;
      const path = await cachedFile(`segments-${native}`, size);
      const results = await hashSegments(segmentsOf(path, size, 2 * MiB), {
        lanes: 2,
        native,
        dropBehind: true,
      });
      expect(results.map((r) => ('bytes' in r ? r.bytes : r.error.message))).toEqual([
        ...Array.from({ length: 5 }, () => 2 * MiB),
        5,
      ]);
      expect(await cachedBytes(path)).toBe(0);
    },
  );
});
