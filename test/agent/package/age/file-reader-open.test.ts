// Issue 4: AgeFileReader.open on headers larger than its first 64 KiB read, and on a file that
// shrinks between the stat that sized it and the reads of its header and nonce.
import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createEncryptStream } from '../../../../agent/package/age/encrypt.ts';
import { AgeFileReader } from '../../../../agent/package/age/file-reader.ts';
import { generateIdentity } from '../../../../agent/package/age/keys.ts';
import { ageHead } from '../../../../agent/package/head-check.ts';
import { drive } from './byte-streams.ts';

/** Runs after the reader's stat of the file and before its first read, when set. */
let afterStat: ((path: string) => Promise<void>) | undefined;

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const open = async (...args: Parameters<typeof real.open>): Promise<FileHandle> => {
    const handle = await real.open(...args);
    const hook = afterStat;
    if (hook === undefined) return handle;
    const stat = handle.stat.bind(handle);
    return Object.assign(handle, {
      stat: async (...a: Parameters<FileHandle['stat']>) => {
        const s = await stat(...a);
        await hook(String(args[0]));
        return s;
      },
    });
  };
  return { ...real, default: { ...real, open }, open };
});

const { identity, recipient } = generateIdentity();
// An X25519 stanza is 98 bytes ("-> X25519 ", two 43-character lines) and the rest of a header
// 70: 668 recipients end the header at byte 65_534, so its 16-byte nonce straddles the 64 KiB
// the reader reads first; 2000 recipients make a 191 KiB header.
const straddling = 668;
const many = 2000;
const others = Array.from({ length: many - 1 }, () => generateIdentity().recipient);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'odt-age-open-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));
afterEach(() => {
  afterStat = undefined;
});

let files = 0;
async function ageFile(plain: Buffer, recipients: number): Promise<{ path: string; sealed: Buffer }> {
  const sealed = await drive(createEncryptStream([...others.slice(0, recipients - 1), recipient]), plain);
  const path = join(dir, `f${files++}.age`);
  await writeFile(path, sealed);
  return { path, sealed };
}

async function decrypt(path: string): Promise<Buffer> {
  const reader = await AgeFileReader.open(path, { identities: [identity] });
  try {
    const parts: Buffer[] = [];
    for (let b = await reader.next(); b !== undefined; b = await reader.next()) parts.push(Buffer.from(b));
    return Buffer.concat(parts);
  } finally {
    await reader.close();
  }
}

describe('AgeFileReader.open', () => {
  it('reads a header that ends just inside its first read, the nonce past it', async () => {
    const plain = randomBytes(100_000);
    const { path, sealed } = await ageFile(plain, straddling);
    const head = ageHead(sealed)!;
    expect(head.length - 16).toBeLessThan(64 * 1024);
    expect(head.length).toBeGreaterThan(64 * 1024);

    expect((await decrypt(path)).equals(plain)).toBe(true);
  });

  it('reads a header three times as long as its first read', async () => {
    const plain = randomBytes(100_000);
    const { path, sealed } = await ageFile(plain, many);
    expect(ageHead(sealed)!.length).toBeGreaterThan(2.9 * 64 * 1024);

    expect((await decrypt(path)).equals(plain)).toBe(true);
  });

  it('fails with AGE_TRUNCATED, not a hang, when the file shrinks while its long header is read', async () => {
    const { path } = await ageFile(randomBytes(100_000), many);
    afterStat = (p) => truncate(p, 70 * 1024);

    const opening = AgeFileReader.open(path, { identities: [identity] });
    await expect(opening).rejects.toMatchObject({ code: 'AGE_TRUNCATED' });
    await expect(opening).rejects.toThrow(/shrank below \d+ bytes while its header was read/);
  }, 30_000);

  it('fails with AGE_TRUNCATED when the file shrinks inside its payload nonce while it is opened', async () => {
    const { path, sealed } = await ageFile(randomBytes(100_000), straddling);
    const nonceAt = ageHead(sealed)!.length - 16;
    afterStat = (p) => truncate(p, nonceAt + 6);

    const opening = AgeFileReader.open(path, { identities: [identity] });
    await expect(opening).rejects.toMatchObject({ code: 'AGE_TRUNCATED' });
    await expect(opening).rejects.toThrow(/while its payload nonce was read/);
  });
});
