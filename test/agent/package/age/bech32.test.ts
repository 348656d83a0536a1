import { describe, expect, it } from 'vitest';
import { bech32Decode, bech32Encode } from '../../../../agent/package/age/bech32.ts';
import { AgeError } from '../../../../agent/package/age/errors.ts';

// From the age v1 specification (c2sp.org/age): the X25519 recipient example.
const specRecipient = 'age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(AgeError);
    expect((error as AgeError).name).toBe('AgeError');
    return (error as AgeError).code;
  }
  return undefined;
}

describe('bech32', () => {
  it('decodes the specification example and encodes it back', () => {
    const { hrp, data } = bech32Decode(specRecipient);

    expect(hrp).toBe('age');
    expect(data).toHaveLength(32);
    expect(bech32Encode('age', data)).toBe(specRecipient);
  });

  it('round-trips any length, far beyond BIP 173’s 90 characters', () => {
    for (const length of [0, 1, 5, 31, 32, 33, 100, 1000]) {
      const data = Buffer.from(Array.from({ length }, (_, i) => (i * 37 + length) & 0xff));

      const encoded = bech32Encode('test', data);

      expect(bech32Decode(encoded).data.equals(data)).toBe(true);
    }
    expect(bech32Encode('age', Buffer.alloc(100)).length).toBeGreaterThan(90);
  });

  it('writes uppercase on request, accepts either case, and checksums the lowercase form', () => {
    const data = Buffer.alloc(32, 0x42);

    const upper = bech32Encode('AGE-SECRET-KEY-', data, { uppercase: true });

    expect(upper).toBe('AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX');
    expect(bech32Decode(upper)).toEqual({ hrp: 'age-secret-key-', data });
    expect(bech32Decode(upper.toLowerCase())).toEqual({ hrp: 'age-secret-key-', data });
  });

  it('rejects mixed case, bad checksums, foreign characters, a missing separator and short data', () => {
    const mixed = `${specRecipient.slice(0, 10).toUpperCase()}${specRecipient.slice(10)}`;
    const typo = `${specRecipient.slice(0, -1)}${specRecipient.endsWith('q') ? 'p' : 'q'}`;

    expect(codeOf(() => bech32Decode(mixed))).toBe('AGE_BAD_BECH32');
    expect(codeOf(() => bech32Decode(typo))).toBe('AGE_BAD_BECH32');
    expect(codeOf(() => bech32Decode(specRecipient.replace('zvk', 'zbk')))).toBe('AGE_BAD_BECH32');
    expect(codeOf(() => bech32Decode('agezvkyg2lq'))).toBe('AGE_BAD_BECH32');
    expect(codeOf(() => bech32Decode('age1qqqq'))).toBe('AGE_BAD_BECH32');
    expect(codeOf(() => bech32Decode('1qqqqqqqq'))).toBe('AGE_BAD_BECH32');
    expect(() => bech32Decode(typo)).toThrow(/checksum/);
  });

  it('rejects non-zero padding bits (a non-canonical encoding)', () => {
    // One byte takes two 5-bit words, whose last two bits are padding: 0xff is [31, 28], not [31, 31].
    expect(bech32Decode(forgeChecksum('x', [31, 28])).data).toEqual(Buffer.from([0xff]));

    const forged = forgeChecksum('x', [31, 31]);

    expect(codeOf(() => bech32Decode(forged))).toBe('AGE_BAD_BECH32');
    expect(() => bech32Decode(forged)).toThrow(/padding/);
  });

  it('keeps every character of a secret input out of its messages', () => {
    const secret = 'age-secret-key-1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqb';

    expect(() => bech32Decode(secret, { label: 'the identity', secret: true })).toThrow(/^the identity /);
    expect(() => bech32Decode(secret, { secret: true })).toThrow(
      `the input has a character at position ${secret.length}, which Bech32 does not use`,
    );
    expect(() => bech32Decode(secret, { secret: true })).not.toThrow(/qqqq|'b'/);
    expect(() => bech32Decode(secret)).toThrow(`has 'b' at position ${secret.length}`);
  });
});

/** A Bech32 string with arbitrary data words and a correct checksum (BIP 173 reference algorithm). */
function forgeChecksum(hrp: string, words: number[]): string {
  const charset = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
  const gen = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
  const values = [
    ...[...hrp].map((c) => c.charCodeAt(0) >> 5),
    0,
    ...[...hrp].map((c) => c.charCodeAt(0) & 31),
  ];
  let chk = 1;
  for (const v of [...values, ...words, 0, 0, 0, 0, 0, 0]) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= gen[i]!;
  }
  chk ^= 1;
  const sum = Array.from({ length: 6 }, (_, i) => (chk >>> (5 * (5 - i))) & 31);
  return `${hrp}1${[...words, ...sum].map((w) => charset[w]).join('')}`;
}
