/**
 * Bech32 (BIP 173) as age uses it: the classic checksum (not Bech32m), no 90-character limit, and
 * a string is all lowercase or all uppercase while the checksum is always over the lowercase form.
 */

import { AgeError } from './errors.ts';

const charset = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const generator = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3] as const;
const checksumLength = 6;

const charValue = new Int8Array(128).fill(-1);
for (let i = 0; i < charset.length; i++) charValue[charset.charCodeAt(i)] = i;

function polymod(values: Iterable<number>): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) {
      if ((top >>> i) & 1) chk ^= generator[i]!;
    }
  }
  return chk >>> 0;
}

function* expandedHrpThen(hrp: string, words: readonly number[]): Generator<number> {
  for (let i = 0; i < hrp.length; i++) yield hrp.charCodeAt(i) >>> 5;
  yield 0;
  for (let i = 0; i < hrp.length; i++) yield hrp.charCodeAt(i) & 31;
  yield* words;
}

function toWords(bytes: Uint8Array): number[] {
  const words: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const byte of bytes) {
    acc = ((acc << 8) | byte) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      words.push((acc >>> bits) & 31);
    }
  }
  if (bits > 0) words.push((acc << (5 - bits)) & 31);
  return words;
}

function fromWords(words: readonly number[], label: string): Buffer {
  const bytes: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const word of words) {
    acc = ((acc << 5) | word) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((acc >>> bits) & 0xff);
    }
  }
  // Padding must be shorter than one word and all zero, or the encoding is not canonical.
  if (bits >= 5 || (acc & ((1 << bits) - 1)) !== 0) {
    throw new AgeError('AGE_BAD_BECH32', `${label} has invalid padding in its data part; it is corrupted.`);
  }
  return Buffer.from(bytes);
}

function checkHrp(hrp: string, label: string): void {
  if (hrp.length === 0) {
    throw new AgeError('AGE_BAD_BECH32', `${label} has no human-readable prefix before its last '1'.`);
  }
  for (let i = 0; i < hrp.length; i++) {
    const c = hrp.charCodeAt(i);
    if (c < 33 || c > 126) {
      throw new AgeError('AGE_BAD_BECH32', `${label} has a character outside printable ASCII in its prefix.`);
    }
  }
}

/**
 * Encodes `data` under the human-readable prefix `hrp`; lowercase unless `uppercase` is set
 * (age writes identities in uppercase).
 */
export function bech32Encode(hrp: string, data: Uint8Array, options: { uppercase?: boolean } = {}): string {
  const lowerHrp = hrp.toLowerCase();
  checkHrp(lowerHrp, `'${hrp}'`);
  const words = toWords(data);
  const mod = polymod(expandedHrpThen(lowerHrp, [...words, 0, 0, 0, 0, 0, 0])) ^ 1;
  for (let i = 0; i < checksumLength; i++) words.push((mod >>> (5 * (checksumLength - 1 - i))) & 31);
  const out = `${lowerHrp}1${words.map((w) => charset[w]).join('')}`;
  return options.uppercase ? out.toUpperCase() : out;
}

/**
 * Decodes and checks a Bech32 string; `hrp` comes back lowercase. Throws AgeError `AGE_BAD_BECH32`
 * whose message calls the input `label` (default: the input, quoted). With `secret`, no character
 * of the input appears in a message.
 */
export function bech32Decode(
  input: string,
  options: { label?: string; secret?: boolean } = {},
): { hrp: string; data: Buffer } {
  const label = options.label ?? (options.secret ? 'the input' : `'${input}'`);
  const shown = (c: string) => (options.secret ? 'a character' : `'${c}'`);
  const lower = input.toLowerCase();
  if (lower !== input && input.toUpperCase() !== input) {
    throw new AgeError(
      'AGE_BAD_BECH32',
      `${label} mixes upper and lower case; Bech32 strings are all one case. Copy the key again unchanged.`,
    );
  }
  const sep = lower.lastIndexOf('1');
  if (sep < 0) {
    throw new AgeError('AGE_BAD_BECH32', `${label} has no '1' separating its prefix from its data.`);
  }
  const hrp = lower.slice(0, sep);
  checkHrp(hrp, label);
  const dataPart = lower.slice(sep + 1);
  if (dataPart.length < checksumLength) {
    throw new AgeError(
      'AGE_BAD_BECH32',
      `${label} is too short after its prefix to hold a checksum; it was probably cut off.`,
    );
  }
  const words: number[] = [];
  for (let i = 0; i < dataPart.length; i++) {
    const code = dataPart.charCodeAt(i);
    const value = code < 128 ? charValue[code]! : -1;
    if (value < 0) {
      throw new AgeError(
        'AGE_BAD_BECH32',
        `${label} has ${shown(dataPart[i]!)} at position ${sep + 2 + i}, which Bech32 does not use (after the last '1': no 1, b, i or o).`,
      );
    }
    words.push(value);
  }
  if (polymod(expandedHrpThen(hrp, words)) !== 1) {
    throw new AgeError(
      'AGE_BAD_BECH32',
      `${label} fails its checksum: a character is wrong or missing. Copy the key again from its source.`,
    );
  }
  return { hrp, data: fromWords(words.slice(0, -checksumLength), label) };
}
