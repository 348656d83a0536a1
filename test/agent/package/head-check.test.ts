import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createEncryptStream, encryptedSize } from '../../../agent/package/age/encrypt.ts';
import { generateIdentity } from '../../../agent/package/age/keys.ts';
import { ageHead } from '../../../agent/package/head-check.ts';
import { drive } from './age/byte-streams.ts';

const recipient = generateIdentity().recipient;
const encrypt = (plain: Buffer) => drive(createEncryptStream([recipient]), plain);

// Issue 4: the upload reads a disk a second time; it must be the file whose digest was verified
// (AgeFileReader checks the head: test/agent/package/age/file-reader.test.ts).
describe('ageHead', () => {
  it('takes the header and payload nonce of an age file: everything before the first chunk', async () => {
    const plain = randomBytes(1000);
    const sealed = await encrypt(plain);

    const head = ageHead(sealed.subarray(0, 64 * 1024))!;

    // One recipient: the file is the header, then the 1000 bytes and one 16-byte tag.
    expect(head.length).toBe(encryptedSize(1000) - 1000 - 16);
    expect(head.equals(sealed.subarray(0, head.length))).toBe(true);
    expect(ageHead(sealed.subarray(0, head.length - 1))).toBeUndefined();
  });
});
