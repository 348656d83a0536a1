import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDecryptStream, encryptedSize } from '../../../agent/package/age/encrypt.ts';
import { generateIdentity } from '../../../agent/package/age/keys.ts';
import { canDropBehind } from '../../../agent/package/drop-behind.ts';
import { writeEncryptedFile } from '../../../agent/package/encrypted-file.ts';
import { segmentDigests } from '../../support/digests.ts';
import { cachedBytes, diskFolder } from '../../support/page-cache.ts';

const MiB = 1024 * 1024;
const keys = generateIdentity();
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'encrypted-file-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** `total` bytes in 1 MiB pieces of one random block, each piece marked with its index. */
function source(total: number): { stream: Readable; sha256: string } {
  const block = randomBytes(MiB);
  const hash = createHash('sha256');
  const pieces: Buffer[] = [];
  for (let at = 0, i = 0; at < total; at += MiB, i++) {
    const piece = Buffer.from(block.subarray(0, Math.min(MiB, total - at)));
    piece.writeUInt32BE(i, 0);
    hash.update(piece);
    pieces.push(piece);
  }
  return { stream: Readable.from(pieces), sha256: hash.digest('hex') };
}

describe('writeEncryptedFile', () => {
  it.skipIf(!canDropBehind)(
    'leaves what it wrote out of the page cache: each 64 MiB once flushed, the rest at the end',
    async () => {
      const total = 150 * MiB;
      // On the repository's disk: TMPDIR may be tmpfs, which can drop nothing from the cache.
      const root = await diskFolder('encrypted-file-drop-');
      try {
        const partial = join(root, 'dropped.age.partial');
        let midway: { cached: number; size: number } | undefined;
        async function* pieces() {
          const block = randomBytes(MiB);
          for (let at = 0; at < total; at += MiB) {
            if (at === 140 * MiB) {
              // A flush was started at 64 MiB written: wait (30 s at most) for it to drop what it flushed.
              for (let tries = 0; tries < 600; tries++) {
                const size = (await stat(partial)).size;
                midway = { cached: await cachedBytes(partial), size };
                if (midway.cached <= size - 64 * MiB) break;
                await new Promise((r) => setTimeout(r, 50));
              }
            }
            yield block;
          }
        }
        await writeEncryptedFile({
          source: Readable.from(pieces()),
          root,
          path: 'dropped.age',
          name: 'dropped',
          recipients: [keys.recipient],
        });
        expect(midway!.size).toBeGreaterThan(64 * MiB);
        expect(midway!.cached).toBeLessThanOrEqual(midway!.size - 64 * MiB);
        expect(await cachedBytes(join(root, 'dropped.age'))).toBe(0);
      } finally {
        await rm(root, { recursive: true });
      }
    },
  );

  // Past 64 MiB the sink starts fdatasyncs while it writes: the file must still be whole and exact.
  it('writes a file larger than the flush interval whole, exactly, and under its final name only', async () => {
    const total = 150 * MiB + 12_345;
    const { stream, sha256 } = source(total);

    const record = await writeEncryptedFile({
      source: stream,
      root: dir,
      path: 'big.age',
      name: 'big',
      recipients: [keys.recipient],
      worker: true,
    });

    expect(record.size).toBe(total);
    expect(record.sha256).toBe(sha256);
    expect((await stat(join(dir, 'big.age'))).size).toBe(encryptedSize(total));
    expect(record.encryptedSize).toBe(encryptedSize(total));
    expect(await readdir(dir)).toEqual(['big.age']);
    const plain = createHash('sha256');
    await pipeline(
      createReadStream(join(dir, 'big.age')),
      createDecryptStream([keys.identity]),
      new Writable({
        write(c: Buffer, _e, callback) {
          plain.update(c);
          callback();
        },
      }),
    );
    expect(plain.digest('hex')).toBe(sha256);
    // The encrypted file's digests are per 64 MiB segment (transfer.json, /2): this file has three.
    const expected = segmentDigests(await readFile(join(dir, 'big.age')), 64 * MiB);
    expect(expected).toHaveLength(3);
    expect(record.encryptedSegmentSha256).toEqual(expected);
  });

  it.each([true, false])(
    'records the SHA-256 of each segment of the encrypted file (worker: %s)',
    async (worker) => {
      const { stream } = source(3 * MiB + 5);
      const record = await writeEncryptedFile({
        source: stream,
        root: dir,
        path: `seg-${worker}.age`,
        name: 'seg',
        recipients: [keys.recipient],
        worker,
        segmentSize: 1 << 20,
      });
      const expected = segmentDigests(await readFile(join(dir, `seg-${worker}.age`)), MiB);
      expect(expected).toHaveLength(4);
      expect(record.encryptedSegmentSha256).toEqual(expected);
      await rm(join(dir, `seg-${worker}.age`));
    },
  );

  it('leaves no file when the source fails after the first flush', async () => {
    let sent = 0;
    const failing = new Readable({
      read() {
        sent += MiB;
        if (sent > 80 * MiB) this.destroy(new Error('the download broke'));
        else this.push(Buffer.alloc(MiB, 1));
      },
    });

    await expect(
      writeEncryptedFile({
        source: failing,
        root: dir,
        path: 'broken.age',
        name: 'broken',
        recipients: [keys.recipient],
        worker: true,
      }),
    ).rejects.toThrow(/the download broke/);
    expect((await readdir(dir)).filter((f) => f.startsWith('broken'))).toEqual([]);
  });
});
