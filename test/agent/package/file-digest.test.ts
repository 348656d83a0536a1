import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileSha256 } from '../../../agent/package/file-digest.ts';

const MiB = 1024 * 1024;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'file-digest-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('fileSha256', () => {
  it.each([0, 1, MiB - 1, MiB, 3 * MiB + 12_345])('hashes every byte of a %i-byte file', async (size) => {
    const bytes = randomBytes(size);
    const path = join(dir, `f-${size}`);
    await writeFile(path, bytes);

    const heard: number[] = [];
    const result = await fileSha256(path, { headBytes: 100, onBytes: (n) => heard.push(n) });

    expect(result.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(result.bytes).toBe(size);
    expect(result.head.equals(bytes.subarray(0, 100))).toBe(true);
    // Progress: one report per read, rising to the whole file.
    expect(heard).toEqual(
      Array.from({ length: Math.ceil(size / MiB) }, (_, i) => Math.min(size, (i + 1) * MiB)),
    );
  });

  it('fails for a missing file, naming it', async () => {
    await expect(fileSha256(join(dir, 'nope'))).rejects.toThrow(/nope/);
  });
});
