import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEncryptStream, sealedChunkSize } from '../../../../agent/package/age/encrypt.ts';
import { AgeFileReader } from '../../../../agent/package/age/file-reader.ts';
import { generateIdentity } from '../../../../agent/package/age/keys.ts';
import { canDropBehind } from '../../../../agent/package/drop-behind.ts';
import { ageHead } from '../../../../agent/package/head-check.ts';
import { cachedBytes, diskFolder, inPages, writeSynced } from '../../../support/page-cache.ts';
import { runCliOk } from './age-cli.ts';
import { drive } from './byte-streams.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const chunk = 64 * KiB;
const { identity, recipient } = generateIdentity();
const changed = () => new Error('changed after verification');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'odt-age-reader-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

let files = 0;
async function ageFile(plain: Buffer, to = recipient): Promise<{ path: string; sealed: Buffer }> {
  const sealed = await drive(createEncryptStream([to]), plain);
  const path = join(dir, `f${files++}.age`);
  await writeFile(path, sealed);
  return { path, sealed };
}

/** Reads the whole file, handing each run back (or not) once copied out. */
async function readAll(reader: AgeFileReader, release = true): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let b = await reader.next(); b !== undefined; b = await reader.next()) {
    parts.push(Buffer.from(b));
    if (release) reader.release(b);
  }
  return Buffer.concat(parts);
}

async function decrypt(path: string, options: Partial<Parameters<typeof AgeFileReader.open>[1]> = {}) {
  const reader = await AgeFileReader.open(path, { identities: [identity], ...options });
  try {
    return await readAll(reader);
  } finally {
    await reader.close();
  }
}

// Issue 4: the import's upload reads each verified disk a second time, through this reader.
describe('AgeFileReader', () => {
  it.each([
    ['empty', 0],
    ['one byte', 1],
    ['one full chunk (a full final chunk)', chunk],
    ['exactly one read (16 chunks)', 16 * chunk],
    ['one read and one byte', 16 * chunk + 1],
    ['several reads, the last partial', 3 * MiB + 12_345],
  ])('decrypts %s the way it was encrypted', async (_name, size) => {
    const plain = randomBytes(size);
    const { path } = await ageFile(plain);

    expect((await decrypt(path)).equals(plain)).toBe(true);
  });

  it('decrypts what the age CLI encrypted, to two recipients (its header and stanzas, not ours)', async () => {
    const plain = randomBytes(2 * MiB + 7);
    const other = generateIdentity();
    const sealed = await runCliOk('age', ['-r', other.recipient, '-r', recipient], plain);
    const path = join(dir, 'cli.age');
    await writeFile(path, sealed);

    expect((await decrypt(path)).equals(plain)).toBe(true);
  });

  it('hashes the plaintext when asked, and counts it', async () => {
    const plain = randomBytes(MiB + 5);
    const { path } = await ageFile(plain);
    const reader = await AgeFileReader.open(path, { identities: [identity], hashPlaintext: true });

    reader.release((await reader.next())!);
    // Not read to its end: no digest yet.
    expect(reader.plaintextDigest()).toBeUndefined();
    await readAll(reader);
    await reader.close();

    expect(reader.plaintextBytes).toBe(plain.length);
    expect(reader.plaintextDigest()).toBe(createHash('sha256').update(plain).digest('hex'));
  });

  it('has no digest without hashPlaintext', async () => {
    const { path } = await ageFile(randomBytes(1000));
    const reader = await AgeFileReader.open(path, { identities: [identity] });
    await readAll(reader);
    await reader.close();

    expect(reader.plaintextDigest()).toBeUndefined();
  });

  it('reads into a few buffers it takes back, not one new buffer per read', async () => {
    const plain = randomBytes(12 * MiB);
    const { path } = await ageFile(plain);
    const seen = (release: boolean) => async () => {
      const reader = await AgeFileReader.open(path, { identities: [identity] });
      const buffers = new Set<ArrayBufferLike>();
      const parts: Buffer[] = [];
      for (let b = await reader.next(); b !== undefined; b = await reader.next()) {
        buffers.add(b.buffer);
        parts.push(Buffer.from(b));
        if (release) reader.release(b);
      }
      await reader.close();
      expect(Buffer.concat(parts).equals(plain)).toBe(true);
      return buffers.size;
    };

    expect(await seen(true)()).toBeLessThanOrEqual(6);
    // Not handed back: each read needs a buffer of its own.
    expect(await seen(false)()).toBe(12);
  });

  it('takes a buffer handed back twice only once (two reads never share a buffer)', async () => {
    const plain = randomBytes(8 * MiB);
    const { path } = await ageFile(plain);
    const reader = await AgeFileReader.open(path, { identities: [identity] });
    const parts: Buffer[] = [];

    for (let b = await reader.next(); b !== undefined; b = await reader.next()) {
      parts.push(Buffer.from(b));
      reader.release(b);
      reader.release(b);
    }
    await reader.close();

    expect(Buffer.concat(parts).equals(plain)).toBe(true);
  });

  it('opens a file that starts with the head it was verified with, and refuses another encryption of the same bytes', async () => {
    const plain = randomBytes(300_000);
    const verified = await ageFile(plain);
    const head = ageHead(verified.sealed)!;
    const replaced = await ageFile(plain);

    expect((await decrypt(verified.path, { head, mismatch: changed })).equals(plain)).toBe(true);
    await expect(
      AgeFileReader.open(replaced.path, { identities: [identity], head, mismatch: changed }),
    ).rejects.toThrow(/changed after verification/);
  });

  it('refuses a file whose payload nonce changed by one bit, or that ends inside its head', async () => {
    const { path, sealed } = await ageFile(randomBytes(1000));
    const head = ageHead(sealed)!;
    const flipped = Buffer.from(sealed);
    flipped[head.length - 1]! ^= 1;
    await writeFile(path, flipped);
    const short = join(dir, 'short.age');
    await writeFile(short, sealed.subarray(0, head.length - 3));

    for (const p of [path, short]) {
      await expect(
        AgeFileReader.open(p, { identities: [identity], head, mismatch: changed }),
      ).rejects.toThrow(/changed after verification/);
    }
  });

  it('fails at the chunk with a flipped byte, naming it, after handing out the runs before it', async () => {
    const plain = randomBytes(3 * MiB);
    const { path, sealed } = await ageFile(plain);
    const head = ageHead(sealed)!;
    const damaged = Buffer.from(sealed);
    damaged[head.length + 20 * sealedChunkSize + 100]! ^= 1;
    await writeFile(path, damaged);
    const reader = await AgeFileReader.open(path, { identities: [identity] });

    const first = await reader.next();
    expect(first!.equals(plain.subarray(0, MiB))).toBe(true);
    const failure = reader.next();
    await expect(failure).rejects.toMatchObject({ code: 'AGE_AUTH_FAILED' });
    await expect(failure).rejects.toThrow(/chunk 20\b/);
    // And it stays failed.
    await expect(reader.next()).rejects.toMatchObject({ code: 'AGE_AUTH_FAILED' });
    await reader.close();
  });

  // Four full chunks, the last one final: a full final chunk is where truncation and appending
  // are hardest to tell apart.
  it.each([
    [
      'cut at a chunk boundary (no final chunk)',
      (s: Buffer, h: number) => s.subarray(0, h + 3 * sealedChunkSize),
      'AGE_TRUNCATED',
    ],
    [
      'cut to less than a tag into its last chunk',
      (s: Buffer, h: number) => s.subarray(0, h + 3 * sealedChunkSize + 9),
      'AGE_TRUNCATED',
    ],
    [
      'with a sealed chunk appended after the final one',
      (s: Buffer, h: number) => Buffer.concat([s, s.subarray(h, h + sealedChunkSize)]),
      'AGE_TRAILING_DATA',
    ],
    [
      'with its last chunk replaced by its first',
      (s: Buffer, h: number) =>
        Buffer.concat([s.subarray(0, h + 3 * sealedChunkSize), s.subarray(h, h + sealedChunkSize)]),
      'AGE_AUTH_FAILED',
    ],
    ['cut right after its payload nonce', (s: Buffer, h: number) => s.subarray(0, h), 'AGE_TRUNCATED'],
    ['cut inside its header', (s: Buffer, h: number) => s.subarray(0, h - 40), 'AGE_TRUNCATED'],
    ['empty', () => Buffer.alloc(0), 'AGE_TRUNCATED'],
  ])('refuses a file %s (%s)', async (_name, cut, code) => {
    const { path, sealed } = await ageFile(randomBytes(4 * chunk));
    await writeFile(path, cut(sealed, ageHead(sealed)!.length));

    await expect(decrypt(path)).rejects.toMatchObject({ code });
  });

  it('names the identities when none opens the file', async () => {
    const { path } = await ageFile(randomBytes(100), generateIdentity().recipient);

    await expect(decrypt(path)).rejects.toMatchObject({ code: 'AGE_NO_MATCHING_IDENTITY' });
    await expect(decrypt(path)).rejects.toThrow(/use the identity file of the node it was encrypted to/);
  });

  it('fails with AGE_TRUNCATED when the file shrinks while it is read', async () => {
    const { path } = await ageFile(randomBytes(8 * MiB));
    const reader = await AgeFileReader.open(path, { identities: [identity] });
    await reader.next();
    await truncate(path, 5 * MiB);

    const reading = readAll(reader);
    await expect(reading).rejects.toMatchObject({ code: 'AGE_TRUNCATED' });
    await expect(reading).rejects.toThrow(/shrank while it was read/);
    await reader.close();
  });

  it('closes with reads still out, and reads nothing after', async () => {
    const { path } = await ageFile(randomBytes(8 * MiB));
    const reader = await AgeFileReader.open(path, { identities: [identity] });
    await reader.next();

    await reader.close();
    await reader.close();

    await expect(reader.next()).rejects.toThrow(/closed/);
  });

  it('fails a next() under way when it is closed, touching the file no more', async () => {
    const { path } = await ageFile(randomBytes(8 * MiB));
    const reader = await AgeFileReader.open(path, { identities: [identity], dropBehind: true });
    await reader.next();

    const pending = reader.next();
    const closing = reader.close();

    await expect(pending).rejects.toThrow(/closed/);
    await closing;
  });

  it.skipIf(!canDropBehind)('with dropBehind, leaves none of the file in the page cache', async () => {
    const disk = await diskFolder('age-reader-');
    try {
      const { sealed } = await ageFile(randomBytes(24 * MiB + 3));
      const path = join(disk, 'cached.age');
      await writeSynced(path, sealed);
      expect(await cachedBytes(path)).toBe(inPages(sealed.length));

      await decrypt(path);
      expect(await cachedBytes(path), 'read without dropBehind: still cached').toBe(inPages(sealed.length));

      const reader = await AgeFileReader.open(path, { identities: [identity], dropBehind: true });
      let midway: number | undefined;
      for (let b = await reader.next(), n = 1; b !== undefined; b = await reader.next(), n++) {
        reader.release(b);
        if (n === 20) midway = await cachedBytes(path);
      }
      await reader.close();

      // 20 MiB handed out: all but the last window (8 MiB) and the reads ahead (4 MiB) dropped.
      expect(midway).toBeLessThanOrEqual(inPages(sealed.length - 8 * MiB));
      expect(await cachedBytes(path)).toBe(0);
    } finally {
      await rm(disk, { recursive: true, force: true });
    }
  });
});
