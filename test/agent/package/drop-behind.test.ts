import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canDropBehind, dropBehind } from '../../../agent/package/drop-behind.ts';
import { hashSegments, segmentsOf } from '../../../agent/package/file-digest.ts';
import { cachedBytes, inPages, writeSynced } from '../../support/page-cache.ts';

const MiB = 1024 * 1024;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drop-behind-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

// The cases below need the file system under TMPDIR to keep files in the page cache and drop
// them when asked: a disk's (ext4 here and in CI), not tmpfs, which can drop nothing.
async function cachedFile(name: string, size: number): Promise<string> {
  const path = join(dir, name);
  await writeSynced(path, randomBytes(size));
  expect(await cachedBytes(path), `${path} should be in the page cache once written`).toBe(inPages(size));
  return path;
}

describe('dropBehind', () => {
  it('is there unless ODT_NATIVE=0 (the addon makes the call; Node.js has none)', () => {
    expect(canDropBehind).toBe(process.env.ODT_NATIVE !== '0');
  });

  it.skipIf(!canDropBehind)(
    'drops what the stream has read from the page cache as it goes, and the rest at its end',
    async () => {
      const size = 24 * MiB + 123;
      const path = await cachedFile('stream', size);
      const fh = await open(path, 'r');
      const stream = fh.createReadStream({ highWaterMark: MiB });
      let seen = 0;
      let midway: number | undefined;
      const sink = new Writable({
        write(chunk: Buffer, _encoding, done) {
          seen += chunk.length;
          // Past 16 MiB, the first two 8 MiB windows have been dropped.
          if (midway === undefined && seen > 16 * MiB) {
            void cachedBytes(path).then((n) => {
              midway = n;
              done();
            }, done);
          } else done();
        },
      });
      const piped = pipeline(stream, sink);
      dropBehind(stream, fh.fd);
      await piped;
      expect(seen).toBe(size);
      expect(midway).toBeLessThanOrEqual(inPages(size - 16 * MiB));
      expect(await cachedBytes(path)).toBe(0);
    },
  );

  it('leaves a file cached without the addon, and with it when not asked to drop', async () => {
    const path = await cachedFile('kept', 3 * MiB);
    const [r] = await hashSegments(segmentsOf(path, 3 * MiB, 4 * MiB));
    expect(r).toMatchObject({ bytes: 3 * MiB });
    expect(await cachedBytes(path)).toBe(3 * MiB);
  });

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
