import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashLanes, SegmentGate } from '../../../agent/package/segment-gate.ts';
import { segmentDigests } from '../../support/digests.ts';

const seg = 64 * 1024;
const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
};

// Issue 20: the one-pass import's check runs a bounded way ahead of the upload, lets it read only
// what checked out, and names the first segment that did not.
describe('SegmentGate', () => {
  let dir: string;
  let path: string;
  let bytes: Buffer;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'segment-gate-'));
    path = join(dir, 'disk.age');
    bytes = randomBytes(9 * seg + 1234);
    await writeFile(path, bytes);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const gate = (digests: string[], checked: number[] = []) =>
    new SegmentGate({
      path,
      size: bytes.length,
      digests,
      segmentSize: seg,
      lanes: new HashLanes(1),
      ahead: 2 * seg,
      problem: (index, cause) => new Error(`segment ${index}${cause ? `: ${cause.message}` : ''}`),
      onChecked: (b) => checked.push(b),
    });

  it('checks no further than `ahead` past what was asked, and lets through what checked out', async () => {
    const checked: number[] = [];
    const g = gate(segmentDigests(bytes, seg), checked).start();
    await until(() => g.checkedBytes >= 2 * seg);
    await new Promise((r) => setTimeout(r, 100));
    // Nothing asked yet: the first two segments only.
    expect(g.checkedBytes).toBe(2 * seg);
    await g.until(5 * seg + 1);
    expect(g.checkedBytes).toBeGreaterThanOrEqual(6 * seg);
    await new Promise((r) => setTimeout(r, 100));
    expect(g.checkedBytes).toBeLessThanOrEqual(8 * seg);
    await g.until(bytes.length);
    expect(g.checkedBytes).toBe(bytes.length);
    expect(checked.at(-1)).toBe(bytes.length);
    expect(g.head).toBeUndefined(); // random bytes: no age header
    await g.close();
  });

  it('fails whoever asks for bytes of a bad segment or past it, at once, and lets the bytes before it through', async () => {
    const digests = segmentDigests(bytes, seg);
    digests[6] = digests[5]!;
    const g = gate(digests).start();
    await g.until(6 * seg);
    await expect(g.until(6 * seg + 1)).rejects.toThrow('segment 6');
    expect(g.failure?.message).toBe('segment 6');
    await expect(g.until(bytes.length)).rejects.toThrow('segment 6');
    // Before it, still fine.
    await expect(g.until(3 * seg)).resolves.toBeUndefined();
    await g.close();
  });

  it('a file cut short fails its segment', async () => {
    const g = new SegmentGate({
      path,
      size: bytes.length + seg,
      digests: segmentDigests(Buffer.concat([bytes, randomBytes(seg)]), seg),
      segmentSize: seg,
      problem: (index) => new Error(`segment ${index}`),
    }).start();
    await expect(g.until(bytes.length + seg)).rejects.toThrow('segment 9');
    await g.close();
  });

  it('close() fails whoever waits and ends the check', async () => {
    const g = gate(segmentDigests(bytes, seg));
    const waiting = g.until(bytes.length);
    await g.close();
    await expect(waiting).rejects.toThrow(/stopped/);
    await expect(g.until(bytes.length)).rejects.toThrow(/stopped/);
  });
});
