import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AgeError } from '../../../../agent/package/age/errors.ts';
import {
  decodeBase64Canonical,
  encodeBase64,
  encodeHeader,
  findHeaderEnd,
  parseHeader,
  type Stanza,
  verifyHeaderMac,
} from '../../../../agent/package/age/header.ts';

const fileKey = Buffer.alloc(16, 7);
const mac = encodeBase64(Buffer.alloc(32));

function badHeader(text: string): AgeError {
  try {
    parseHeader(Buffer.from(text, 'latin1'));
  } catch (error) {
    expect(error).toBeInstanceOf(AgeError);
    return error as AgeError;
  }
  throw new Error('expected an AgeError');
}

describe('age header', () => {
  it('wraps stanza bodies at 64 columns and always ends them with a shorter line', () => {
    for (const size of [0, 1, 47, 48, 49, 96, 200]) {
      const stanzas: Stanza[] = [{ args: ['test', 'a-b'], body: randomBytes(size) }];

      const header = encodeHeader(stanzas, fileKey);
      const parsed = parseHeader(header);

      const lines = header.toString('latin1').split('\n');
      expect(lines.every((l) => l.length <= 64 || l.startsWith('-'))).toBe(true);
      expect(parsed.stanzas[0]!.body.equals(stanzas[0]!.body)).toBe(true);
      expect(parsed.stanzas[0]!.args).toEqual(['test', 'a-b']);
      expect(verifyHeaderMac(fileKey, parsed)).toBe(true);
      expect(verifyHeaderMac(Buffer.alloc(16, 8), parsed)).toBe(false);
    }
  });

  it('rejects a stanza whose body lacks its short final line (spec test vector stanza_missing_final_line)', () => {
    const full = 'A'.repeat(64);

    const error = badHeader(`age-encryption.org/v1\n-> X25519 abc\n${full}\n--- ${mac}\n`);

    expect(error.code).toBe('AGE_BAD_HEADER');
    expect(error.message).toMatch(/shorter than 64 columns/);
  });

  it('rejects long lines, missing stanzas, bad MAC lines and stray lines', () => {
    const cases = [
      `age-encryption.org/v1\n-> X25519 abc\n${'A'.repeat(65)}\n\n--- ${mac}\n`,
      `age-encryption.org/v1\n--- ${mac}\n`,
      `age-encryption.org/v1\n-> X25519 abc\nAAAA\n--- ${mac.slice(1)}\n`,
      `age-encryption.org/v1\n-> X25519 abc\nAAAA\nhello\n--- ${mac}\n`,
      `age-encryption.org/v1\n->  X25519\nAAAA\n--- ${mac}\n`,
      `age-encryption.org/v1\n-> X25519 abc\nAAAA\n---${mac}\n`,
    ];
    for (const text of cases) expect(badHeader(text).code, text).toBe('AGE_BAD_HEADER');
  });

  it('accepts only canonical unpadded base64', () => {
    expect(decodeBase64Canonical('AAE', 'x')).toEqual(Buffer.from([0, 1]));
    expect(() => decodeBase64Canonical('AAF', 'x')).toThrow(/canonical/);
    expect(() => decodeBase64Canonical('AAE=', 'x')).toThrow(/unpadded/);
    expect(() => decodeBase64Canonical('A', 'x')).toThrow(/unpadded/);
    expect(() => decodeBase64Canonical('AA E', 'x')).toThrow(/unpadded/);
  });

  it('finds the end of a header that arrives a byte at a time', () => {
    const header = encodeHeader([{ args: ['x'], body: randomBytes(40) }], fileKey);
    const withPayload = Buffer.concat([header, randomBytes(50)]);
    let resume = 0;
    let end: number | undefined;

    for (let n = 1; n <= withPayload.length && end === undefined; n++) {
      ({ end, resume } = findHeaderEnd(withPayload.subarray(0, n), resume));
    }

    expect(end).toBe(header.length);
  });
});
