import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createEncryptStream, encryptedSize } from '../../../agent/package/age/encrypt.ts';
import { generateIdentity } from '../../../agent/package/age/keys.ts';
import { ageHead, HeadCheck } from '../../../agent/package/head-check.ts';
import { drive } from './age/byte-streams.ts';

const recipient = generateIdentity().recipient;
const encrypt = (plain: Buffer) => drive(createEncryptStream([recipient]), plain);
const changed = () => new Error('changed after verification');

// Issue 4: the upload reads a disk a second time; it must be the file whose digest was verified.
describe('ageHead and HeadCheck', () => {
  it('takes the header and payload nonce of an age file: everything before the first chunk', async () => {
    const plain = randomBytes(1000);
    const sealed = await encrypt(plain);

    const head = ageHead(sealed.subarray(0, 64 * 1024))!;

    // One recipient: the file is the header, then the 1000 bytes and one 16-byte tag.
    expect(head.length).toBe(encryptedSize(1000) - 1000 - 16);
    expect(head.equals(sealed.subarray(0, head.length))).toBe(true);
    expect(ageHead(sealed.subarray(0, head.length - 1))).toBeUndefined();
  });

  it('passes the same file through unchanged, in odd pieces into a highWaterMark: 1 sink', async () => {
    const sealed = await encrypt(randomBytes(200_000));
    const head = ageHead(sealed)!;

    const out = await drive(new HeadCheck(head, changed), sealed, {
      writeSizes: [1, 7, 100, 65_536],
      sinkHighWaterMark: 1,
      slowSink: true,
    });

    expect(out.equals(sealed)).toBe(true);
  });

  it('fails on another encryption of the same bytes to the same recipient (a file replaced after verification)', async () => {
    const plain = randomBytes(200_000);
    const verified = ageHead(await encrypt(plain))!;
    const replaced = await encrypt(plain);

    await expect(drive(new HeadCheck(verified, changed), replaced, { writeSizes: [50] })).rejects.toThrow(
      /changed after verification/,
    );
  });

  it('fails on one changed byte in the payload nonce, and on a file that ends inside the header', async () => {
    const sealed = await encrypt(randomBytes(1000));
    const head = ageHead(sealed)!;
    const flipped = Buffer.from(sealed);
    flipped[head.length - 1]! ^= 1;

    await expect(drive(new HeadCheck(head, changed), flipped)).rejects.toThrow(/changed/);
    await expect(drive(new HeadCheck(head, changed), sealed.subarray(0, head.length - 3))).rejects.toThrow(
      /changed/,
    );
  });

  it('stops the stream at the first differing piece: nothing after it is passed on', async () => {
    const sealed = await encrypt(randomBytes(300_000));
    const head = ageHead(sealed)!;
    const other = await encrypt(randomBytes(300_000));
    let passed = 0;

    await expect(
      pipeline(
        Readable.from([other.subarray(0, 10), other.subarray(10)]),
        new HeadCheck(head, changed),
        new Writable({
          write(chunk: Buffer, _e, callback) {
            passed += chunk.length;
            callback();
          },
        }),
      ),
    ).rejects.toThrow(/changed/);
    // The first 10 bytes are the version line, the same in every age file.
    expect(passed).toBeLessThanOrEqual(10);
  });
});
