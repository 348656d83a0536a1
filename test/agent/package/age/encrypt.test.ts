import { spawn } from 'node:child_process';
import { createHash, hkdfSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chunkSize,
  createDecryptStream,
  createEncryptStream,
  encryptedSize,
  sealedChunkSize,
} from '../../../../agent/package/age/encrypt.ts';
import { AgeError, type AgeErrorCode } from '../../../../agent/package/age/errors.ts';
import { encodeBase64, encodeHeader, type Stanza } from '../../../../agent/package/age/header.ts';
import { formatIdentityFile, generateIdentity, parseRecipient } from '../../../../agent/package/age/keys.ts';
import { sealChunks } from '../../../../agent/package/age/payload-chunks.mjs';
import { wrapFileKey } from '../../../../agent/package/age/x25519.ts';
import { runCli, runCliOk } from './age-cli.ts';
import { type DriveOptions, drive } from './byte-streams.ts';

const MiB = 1024 * 1024;
const sizes = [0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 3 * chunkSize, 3 * MiB + 12345];

const dir = mkdtempSync(join(tmpdir(), 'age-stream-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let alice: { identity: string; recipient: string; file: string };
let bob: { identity: string; recipient: string; file: string };

beforeAll(() => {
  const make = (name: string) => {
    const keys = generateIdentity();
    const file = join(dir, `${name}.txt`);
    writeFileSync(file, formatIdentityFile(keys.identity), { mode: 0o600 });
    return { ...keys, file };
  };
  alice = make('alice');
  bob = make('bob');
});

/** An age file built from parts, for inputs no conforming encoder writes. */
function craft(options: {
  recipients: readonly string[];
  extraStanzas?: readonly Stanza[];
  chunks: readonly { plain: Buffer; last: boolean }[];
}): Buffer {
  const fileKey = randomBytes(16);
  const stanzas = [
    ...(options.extraStanzas ?? []),
    ...options.recipients.map((r) => wrapFileKey(fileKey, parseRecipient(r))),
  ];
  const nonce = randomBytes(16);
  const key = Buffer.from(hkdfSync('sha256', fileKey, nonce, Buffer.from('payload'), 32));
  const sealed = options.chunks.map((c, i) => sealChunks(key, i, [c.plain], c.last));
  return Buffer.concat([encodeHeader(stanzas, fileKey), nonce, ...sealed]);
}

async function decryptError(
  input: Buffer,
  identities: readonly string[],
  worker: boolean,
  drive_: DriveOptions = {},
): Promise<AgeError> {
  try {
    await drive(createDecryptStream(identities, { worker }), input, drive_);
  } catch (error) {
    expect(error).toBeInstanceOf(AgeError);
    expect((error as AgeError).name).toBe('AgeError');
    return error as AgeError;
  }
  throw new Error('expected decryption to fail');
}

function flip(input: Buffer, at: number): Buffer {
  const copy = Buffer.from(input);
  copy[at]! ^= 0x01;
  return copy;
}

/** Replaces the base64 character at `at` with another one, so the header stays well formed. */
function swapBase64(input: Buffer, at: number): Buffer {
  const copy = Buffer.from(input);
  copy[at] = copy[at] === 0x41 ? 0x42 : 0x41; // 'A' / 'B'
  return copy;
}

describe.each([
  { mode: 'inline', worker: false },
  { mode: 'worker thread', worker: true },
])('age streams ($mode)', ({ worker }) => {
  const encrypt = (plain: Buffer, recipients = [alice.recipient], options?: DriveOptions) =>
    drive(createEncryptStream(recipients, { worker }), plain, options);
  const decrypt = (sealed: Buffer, identities = [alice.identity], options?: DriveOptions) =>
    drive(createDecryptStream(identities, { worker }), sealed, options);

  describe('interoperates with the age CLI', () => {
    it.each(sizes)('age -d decrypts our encryption of %i bytes to the same bytes', async (size) => {
      const plain = randomBytes(size);

      const sealed = await encrypt(plain);

      expect(sealed.length).toBe(encryptedSize(size));
      const opened = await runCliOk('age', ['-d', '-i', alice.file], sealed);
      expect(opened.equals(plain)).toBe(true);
    });

    it.each(sizes)('we decrypt age -r’s encryption of %i bytes to the same bytes', async (size) => {
      const plain = randomBytes(size);
      const sealed = await runCliOk('age', ['-r', alice.recipient], plain);

      const opened = await decrypt(sealed);

      expect(opened.equals(plain)).toBe(true);
      expect(sealed.length).toBe(encryptedSize(size));
    });

    it('encrypts to several recipients, each of whom can decrypt with either tool', async () => {
      const plain = randomBytes(100_000);

      const sealed = await encrypt(plain, [alice.recipient, bob.recipient]);

      expect(sealed.length).toBe(encryptedSize(plain.length, 2));
      expect((await runCliOk('age', ['-d', '-i', bob.file], sealed)).equals(plain)).toBe(true);
      expect((await decrypt(sealed, [bob.identity])).equals(plain)).toBe(true);
      expect((await decrypt(sealed, [alice.identity])).equals(plain)).toBe(true);
    });

    it('finds the matching identity among several', async () => {
      const plain = randomBytes(1000);
      const sealed = await runCliOk('age', ['-r', bob.recipient], plain);

      expect((await decrypt(sealed, [alice.identity, bob.identity])).equals(plain)).toBe(true);
    });

    it('ignores stanzas of unknown types (with a body wrapped at 64 columns), as age does', async () => {
      const plain = randomBytes(70_000);
      // 48 bytes are exactly 64 base64 columns, so the body ends with an empty line.
      const grease: Stanza[] = [
        { args: ['example.com/grease', 'x(y'], body: randomBytes(48) },
        { args: ['another'], body: randomBytes(100) },
      ];
      const sealed = craft({
        recipients: [alice.recipient],
        extraStanzas: grease,
        chunks: [
          { plain: plain.subarray(0, chunkSize), last: false },
          { plain: plain.subarray(chunkSize), last: true },
        ],
      });
      expect(sealed.toString('latin1')).toContain(`${encodeBase64(grease[0]!.body)}\n\n-> another`);

      expect((await decrypt(sealed)).equals(plain)).toBe(true);
      expect((await runCliOk('age', ['-d', '-i', alice.file], sealed)).equals(plain)).toBe(true);
    });
  });

  describe('streams', () => {
    const odd = [1, 7, chunkSize - 1, 3, chunkSize + 1, 2 * sealedChunkSize, 12_345, 16];

    it('handles odd write sizes into a highWaterMark: 1 sink that is slow to take data', async () => {
      const plain = randomBytes(700_000);
      const options: DriveOptions = { writeSizes: odd, sinkHighWaterMark: 1, slowSink: true };

      const sealed = await encrypt(plain, [alice.recipient], options);
      const opened = await decrypt(sealed, [alice.identity], options);

      expect(opened.equals(plain)).toBe(true);
      expect((await runCliOk('age', ['-d', '-i', alice.file], sealed)).equals(plain)).toBe(true);
    });

    it('handles one-byte writes through the header and a chunk boundary', async () => {
      const plain = randomBytes(chunkSize + 5);
      const sealed = await runCliOk('age', ['-r', alice.recipient], plain);

      const opened = await decrypt(sealed, [alice.identity], { writeSizes: [1] });

      expect(opened.equals(plain)).toBe(true);
    });

    it('stops pulling input while its output is not read (backpressure)', async () => {
      let pulled = 0;
      const source = new Readable({
        highWaterMark: MiB,
        read() {
          pulled += MiB;
          this.push(pulled > 64 * MiB ? null : Buffer.alloc(MiB));
        },
      });
      const stream = createEncryptStream([alice.recipient], { worker });

      source.pipe(stream);
      await new Promise((resolve) => setTimeout(resolve, 150));

      expect(pulled).toBeLessThanOrEqual(10 * MiB);
      expect(stream.readableLength).toBeLessThanOrEqual(6 * MiB);
      source.unpipe(stream);
      source.destroy();
      stream.destroy();
    });
    it.each([
      ['encrypting', () => createEncryptStream([alice.recipient], { worker })],
      ['decrypting', () => createDecryptStream([alice.identity], { worker })],
    ] as const)(
      'keeps its output bounded %s for a consumer slower than the crypto (an upload)',
      async (_, make) => {
        // Encrypting: 24 MiB of plaintext. Decrypting: the same, sealed first.
        const plain = Buffer.alloc(24 * MiB, 7);
        const input = _ === 'encrypting' ? plain : await encrypt(plain);
        const stream = make();
        let most = 0;
        let got = 0;
        const sink = new Writable({
          highWaterMark: 16 * 1024,
          write(chunk: Buffer, _e, callback) {
            most = Math.max(most, stream.readableLength);
            got += chunk.length;
            setTimeout(callback, 2);
          },
        });
        const source = Readable.from(
          (function* () {
            for (let at = 0; at < input.length; at += MiB) yield input.subarray(at, at + MiB);
          })(),
        );
        await pipeline(source, stream, sink);

        expect(got).toBeGreaterThan(20 * MiB);
        // Two runs of output may wait (a run is about 1 MiB), not the whole input.
        expect(most).toBeLessThanOrEqual(4 * MiB);
      },
    );

    it.each([0, chunkSize, 3 * MiB + 12_345])(
      'counts and hashes the plaintext it puts out (%i bytes)',
      async (size) => {
        const plain = randomBytes(size);
        const sealed = await encrypt(plain);
        const stream = createDecryptStream([alice.identity], { worker, hashOutput: true });

        const opened = await drive(stream, sealed, { writeSizes: [100_000] });

        expect(opened.equals(plain)).toBe(true);
        expect(stream.plaintextBytes).toBe(size);
        expect(stream.plaintextDigest()).toBe(createHash('sha256').update(plain).digest('hex'));
      },
    );
  });

  describe('rejects, with a specific code,', () => {
    const expectCode = async (input: Buffer, code: AgeErrorCode, identities = [alice.identity]) => {
      const error = await decryptError(input, identities, worker);
      expect(error.code, error.message).toBe(code);
      return error;
    };
    let sealed: Buffer; // three full chunks: the last is a full final chunk
    let headerEnd: number;

    beforeAll(async () => {
      sealed = await runCliOk('age', ['-r', alice.recipient], randomBytes(3 * chunkSize));
      headerEnd = sealed.indexOf(0x0a, sealed.indexOf('\n---') + 1) + 1;
    });

    it('a file for another key, naming the keys it tried', async () => {
      const error = await expectCode(sealed, 'AGE_NO_MATCHING_IDENTITY', [bob.identity]);

      expect(error.message).toContain(bob.recipient);
      expect(error.message).toContain('X25519');
    });

    it('a changed header MAC', async () => {
      const macAt = sealed.indexOf('\n--- ') + 5;

      const error = await expectCode(swapBase64(sealed, macAt), 'AGE_AUTH_FAILED');

      expect(error.message).toMatch(/header MAC/);
    });

    it('a changed stanza body or ephemeral share (the file key no longer unwraps)', async () => {
      const bodyAt = sealed.indexOf('\n', sealed.indexOf('-> X25519')) + 1;
      const shareAt = sealed.indexOf('-> X25519 ') + 12;

      await expectCode(swapBase64(sealed, bodyAt), 'AGE_NO_MATCHING_IDENTITY');
      await expectCode(swapBase64(sealed, shareAt), 'AGE_NO_MATCHING_IDENTITY');
    });

    it('a header that is malformed, of another version, armored, or not age at all', async () => {
      const text = sealed.subarray(0, headerEnd).toString('latin1');
      const payload = sealed.subarray(headerEnd);
      const withHeader = (header: string) => Buffer.concat([Buffer.from(header, 'latin1'), payload]);

      await expectCode(withHeader(text.replace('-> X25519', '->X25519')), 'AGE_BAD_HEADER');
      await expectCode(withHeader(text.replace('-> X25519 ', '-> X25519  ')), 'AGE_BAD_HEADER');
      await expectCode(
        withHeader(text.replace(/\n([A-Za-z0-9+/]{43})\n---/, '\n$1=\n---')),
        'AGE_BAD_HEADER',
      );
      await expectCode(withHeader(text.replace('v1\n', 'v2\n')), 'AGE_UNSUPPORTED');
      await expectCode(Buffer.from('\x89PNG\r\n\x1a\n not an age file'), 'AGE_BAD_HEADER');
      const armored = await runCliOk('age', ['-a', '-r', alice.recipient], Buffer.from('hi'));
      await expectCode(armored, 'AGE_UNSUPPORTED');
    });

    it('a stanza body that is not canonical base64', async () => {
      const text = sealed.subarray(0, headerEnd).toString('latin1');
      const bodyLine = /\n([A-Za-z0-9+/]{43})\n---/.exec(text)![1]!;
      // The last of 43 characters carries 2 padding bits: setting one keeps the bytes, breaks canonicity.
      const last = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
      const nonCanonical = bodyLine.slice(0, 42) + last[last.indexOf(bodyLine[42]!) ^ 1];
      const input = Buffer.concat([
        Buffer.from(text.replace(bodyLine, nonCanonical), 'latin1'),
        sealed.subarray(headerEnd),
      ]);

      const error = await expectCode(input, 'AGE_BAD_HEADER');

      expect(error.message).toMatch(/canonical/);
    });

    it('a passphrase-encrypted (scrypt) file', async () => {
      const stanza: Stanza = { args: ['scrypt', encodeBase64(randomBytes(16)), '18'], body: randomBytes(32) };
      const input = craft({
        recipients: [],
        extraStanzas: [stanza],
        chunks: [{ plain: Buffer.from('x'), last: true }],
      });

      await expectCode(input, 'AGE_UNSUPPORTED');
    });

    it('a changed payload byte, in a middle chunk, the final chunk, or the payload nonce', async () => {
      const middle = await expectCode(
        flip(sealed, headerEnd + 16 + sealedChunkSize + 100),
        'AGE_AUTH_FAILED',
      );
      await expectCode(flip(sealed, sealed.length - 1), 'AGE_AUTH_FAILED');
      await expectCode(flip(sealed, headerEnd + 3), 'AGE_AUTH_FAILED');

      expect(middle.message).toMatch(/chunk 1 /);
    });

    it('truncation: empty, inside the header, inside the nonce, and at a chunk boundary', async () => {
      await expectCode(Buffer.alloc(0), 'AGE_TRUNCATED');
      await expectCode(sealed.subarray(0, 30), 'AGE_TRUNCATED');
      await expectCode(sealed.subarray(0, headerEnd - 1), 'AGE_TRUNCATED');
      await expectCode(sealed.subarray(0, headerEnd), 'AGE_TRUNCATED');
      await expectCode(sealed.subarray(0, headerEnd + 10), 'AGE_TRUNCATED');
      await expectCode(sealed.subarray(0, headerEnd + 16), 'AGE_TRUNCATED');
      await expectCode(sealed.subarray(0, headerEnd + 16 + 5), 'AGE_TRUNCATED');
      await expectCode(sealed.subarray(0, headerEnd + 16 + sealedChunkSize), 'AGE_TRUNCATED');
      await expectCode(sealed.subarray(0, sealed.length - sealedChunkSize), 'AGE_TRUNCATED');
    });

    it('truncation inside a chunk, which cannot be told from damage', async () => {
      const error = await expectCode(sealed.subarray(0, sealed.length - 1000), 'AGE_AUTH_FAILED');

      expect(error.message).toMatch(/cut short/);
    });

    it('bytes appended after the final chunk', async () => {
      await expectCode(Buffer.concat([sealed, Buffer.from([0])]), 'AGE_TRAILING_DATA');
      await expectCode(Buffer.concat([sealed, randomBytes(sealedChunkSize + 7)]), 'AGE_TRAILING_DATA');
      await expectCode(Buffer.concat([sealed, sealed]), 'AGE_TRAILING_DATA');
    });

    it('an empty final chunk after a full one', async () => {
      const input = craft({
        recipients: [alice.recipient],
        chunks: [
          { plain: randomBytes(chunkSize), last: false },
          { plain: Buffer.alloc(0), last: true },
        ],
      });

      await expectCode(input, 'AGE_BAD_PAYLOAD');
      expect((await runCli('age', ['-d', '-i', alice.file], input)).code).not.toBe(0);
    });
  });
});

describe('age streams, in general', () => {
  it('let a process that used the worker exit on its own once idle', async () => {
    const module = new URL('../../../../agent/package/age/encrypt.ts', import.meta.url).href;
    const { recipient } = generateIdentity();
    const script = `
      const { createEncryptStream } = await import(${JSON.stringify(module)});
      const stream = createEncryptStream([${JSON.stringify(recipient)}], { worker: true });
      let n = 0;
      stream.on('data', (b) => { n += b.length; });
      stream.on('end', () => console.log(n));
      stream.end(Buffer.alloc(200000));
    `;
    const started = Date.now();

    const result = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const file = join(dir, 'exits.mjs');
      writeFileSync(file, script);
      const child = spawn(process.execPath, ['--import', 'tsx', file], {
        stdio: ['ignore', 'pipe', 'inherit'],
        timeout: 10_000,
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, out }));
    });

    expect(result).toEqual({ code: 0, out: `${encryptedSize(200000)}\n` });
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('fails at once on a bad recipient or identity, or none', () => {
    expect(() => createEncryptStream(['age1nope'])).toThrow(AgeError);
    expect(() => createEncryptStream([])).toThrow(/No recipient/);
    expect(() => createDecryptStream(['AGE-SECRET-KEY-1NOPE'])).toThrow(AgeError);
    expect(() => createDecryptStream([])).toThrow(/No identity/);
  });

  it('computes encrypted sizes like the CLI writes them', () => {
    expect(encryptedSize(0)).toBe(200);
    expect(encryptedSize(chunkSize)).toBe(200 + chunkSize);
    expect(encryptedSize(chunkSize + 1)).toBe(200 + chunkSize + 1 + 16);
  });
});
