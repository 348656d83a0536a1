import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeSha256Range } from '../../../agent/package/age/payload-chunks.mjs';
import { SegmentHash } from '../../../agent/package/age/segment-hash.mjs';
import { hashSegments, segmentsOf } from '../../../agent/package/file-digest.ts';
import { segmentDigests } from '../../support/digests.ts';

const MiB = 1024 * 1024;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'file-digest-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('SegmentHash', () => {
  it.each([0, 1, 999, 1000, 1001, 5_432])(
    'hashes each 1000 bytes of %i bytes on their own, whatever the pieces it is given',
    (size) => {
      const bytes = randomBytes(size);
      const expected = segmentDigests(bytes, 1000);
      const whole = new SegmentHash(1000).update(bytes).digests();
      const pieces = new SegmentHash(1000);
      for (let at = 0; at < size; at += 333) pieces.update(bytes.subarray(at, at + 333));
      expect(whole).toEqual(expected);
      expect(pieces.digests()).toEqual(expected);
    },
  );

  it('gives what `split -b … --filter=sha256sum` prints, the by-hand check of a NAS file', async () => {
    const bytes = randomBytes(3 * MiB + 12_345);
    const path = join(dir, 'split-me');
    await writeFile(path, bytes);
    const printed = execFileSync('split', ['-b', '1M', '--filter=sha256sum', path], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/)[0]);
    expect(new SegmentHash(MiB).update(bytes).digests()).toEqual(printed);
    expect(printed).toHaveLength(4);
  });
});

describe('hashSegments', () => {
  // npm install builds the addon; only ODT_NATIVE=0 leaves it out, and then the cases that name
  // it are skipped rather than run on the portable code under its name.
  const withAddon = nativeSha256Range !== undefined;
  it('has the native addon unless ODT_NATIVE=0, so both ways below are tested', () => {
    expect(withAddon).toBe(process.env.ODT_NATIVE !== '0');
  });
  const ways = <T extends readonly unknown[]>(cases: readonly (readonly [...T, boolean])[]) =>
    cases.filter((c) => withAddon || c.at(-1) === false);

  it.each(
    ways<[number]>([
      [1, true],
      [2, true],
      [3, true],
      [2, false],
    ]),
  )(
    'hashes every segment of two files with %i lane(s) (native addon: %s), and keeps the head',
    async (lanes, native) => {
      const a = randomBytes(5 * MiB + 17);
      const b = randomBytes(MiB - 1);
      await writeFile(join(dir, 'a'), a);
      await writeFile(join(dir, 'b'), b);
      const jobs = [
        ...segmentsOf(join(dir, 'a'), a.length, 2 * MiB, 100),
        ...segmentsOf(join(dir, 'b'), b.length, 2 * MiB),
      ];
      const heard = new Map<number, number>();
      const done: number[] = [];
      const results = await hashSegments(jobs, {
        lanes,
        native,
        onBytes: (job, bytes) => heard.set(job, bytes),
        onDone: (job) => done.push(job),
      });
      const slices = [a.subarray(0, 2 * MiB), a.subarray(2 * MiB, 4 * MiB), a.subarray(4 * MiB), b];
      expect(results).toEqual(
        slices.map((s, i) => ({
          sha256: sha256(s),
          bytes: s.length,
          head: i === 0 ? a.subarray(0, 100) : Buffer.alloc(0),
        })),
      );
      // Each job's last report is its whole length (the addon reports once, at the end).
      expect([...heard.entries()].sort((x, y) => x[0] - y[0])).toEqual(slices.map((s, i) => [i, s.length]));
      expect(done.sort()).toEqual([0, 1, 2, 3]);
    },
  );

  it.each(ways<[]>([[true], [false]]).map(([native]) => native))(
    'reports a file shorter than its segments say by the bytes read, and a missing file as an error (native addon: %s)',
    async (native) => {
      const bytes = randomBytes(1000);
      await writeFile(join(dir, 'short'), bytes);
      const [short, missing] = await hashSegments(
        [
          { path: join(dir, 'short'), offset: 0, length: 4096, headBytes: 2000 },
          { path: join(dir, 'nope'), offset: 0, length: 10 },
        ],
        { native },
      );
      expect(short).toEqual({ sha256: sha256(bytes), bytes: 1000, head: bytes });
      expect(missing).toMatchObject({
        error: expect.objectContaining({ message: expect.stringContaining('nope') }),
      });
    },
  );
});
