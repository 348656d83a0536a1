/**
 * The textual header of an age v1 file: the version line, recipient stanzas (arguments, then a
 * base64 body wrapped at 64 columns and ending with a shorter line) and the HMAC-SHA-256 line.
 */

import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { AgeError } from './errors.ts';

export const versionLine = 'age-encryption.org/v1';
export const versionPrefix = 'age-encryption.org/';
export const armorBegin = '-----BEGIN AGE ENCRYPTED FILE-----';
const columns = 64;
const macLength = 32;
const macInfo = Buffer.from('header');
const noSalt = Buffer.alloc(0);

/** One recipient stanza: its arguments (the first names the type) and its raw body. */
export interface Stanza {
  readonly args: readonly string[];
  readonly body: Buffer;
}

/** Standard base64 without `=` padding, as age writes it. */
export function encodeBase64(bytes: Uint8Array): string {
  const s = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  return s.slice(0, s.length - pad);
}

const base64Chars = /^[A-Za-z0-9+/]*$/;

/** Decodes unpadded base64, rejecting anything but the one canonical encoding (the spec's MUST). */
export function decodeBase64Canonical(text: string, what: string): Buffer {
  if (!base64Chars.test(text) || text.length % 4 === 1) {
    throw new AgeError(
      'AGE_BAD_HEADER',
      `${what} is not unpadded base64 ('${text}'); the header is corrupted.`,
    );
  }
  const bytes = Buffer.from(text, 'base64');
  if (encodeBase64(bytes) !== text) {
    throw new AgeError(
      'AGE_BAD_HEADER',
      `${what} is not canonical base64 ('${text}'); the header is corrupted.`,
    );
  }
  return bytes;
}

function isArgument(arg: string): boolean {
  if (arg.length === 0) return false;
  for (let i = 0; i < arg.length; i++) {
    const c = arg.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

function encodeStanza(stanza: Stanza): string {
  const body = encodeBase64(stanza.body);
  const lines: string[] = [`-> ${stanza.args.join(' ')}`];
  for (let i = 0; i < body.length; i += columns) lines.push(body.slice(i, i + columns));
  // The body ends with a line shorter than 64 columns, empty if need be.
  if (body.length % columns === 0) lines.push('');
  return `${lines.join('\n')}\n`;
}

/** HMAC-SHA-256 of the header up to and including `---`, keyed from the file key. */
export function headerMac(fileKey: Uint8Array, macInput: Uint8Array): Buffer {
  const key = Buffer.from(hkdfSync('sha256', fileKey, noSalt, macInfo, 32));
  return createHmac('sha256', key).update(macInput).digest();
}

/** The complete header for `stanzas`, MAC line included. */
export function encodeHeader(stanzas: readonly Stanza[], fileKey: Uint8Array): Buffer {
  for (const stanza of stanzas) {
    if (stanza.args.length === 0 || !stanza.args.every(isArgument)) {
      throw new TypeError(
        `Stanza arguments must be non-empty printable ASCII: ${JSON.stringify(stanza.args)}`,
      );
    }
  }
  const macInput = Buffer.from(`${versionLine}\n${stanzas.map(encodeStanza).join('')}---`, 'latin1');
  return Buffer.concat([macInput, Buffer.from(` ${encodeBase64(headerMac(fileKey, macInput))}\n`, 'latin1')]);
}

/**
 * Where the header in `buf` ends: `end`, the index after the MAC line's newline, once `buf` holds
 * all of it; otherwise `resume`, where to search again when more bytes are appended to `buf`.
 */
export function findHeaderEnd(buf: Buffer, from = 0): { end?: number; resume: number } {
  // Only the MAC line starts with '---': stanza lines start with '->' or a base64 character.
  const mark = buf.indexOf('\n---', from, 'latin1');
  if (mark < 0) return { resume: Math.max(from, buf.length - 3) };
  const eol = buf.indexOf(0x0a, mark + 1);
  return eol < 0 ? { resume: mark } : { end: eol + 1, resume: mark };
}

/** A parsed header: its stanzas, the MAC it carries, and the bytes that MAC covers. */
export interface ParsedHeader {
  readonly stanzas: readonly Stanza[];
  readonly mac: Buffer;
  readonly macInput: Buffer;
}

function bad(message: string): AgeError {
  return new AgeError('AGE_BAD_HEADER', `${message}; the header is corrupted or this is not an age file.`);
}

/** Parses a complete header (as delimited by `findHeaderEnd`). Throws `AGE_BAD_HEADER`/`AGE_UNSUPPORTED`. */
export function parseHeader(header: Buffer): ParsedHeader {
  const text = header.toString('latin1');
  const lines = text.split('\n');
  // split() leaves '' after the final newline.
  if (lines.pop() !== '') throw bad('The header does not end with a newline');
  const first = lines[0] ?? '';
  if (first !== versionLine) {
    if (first.startsWith(versionPrefix)) {
      throw new AgeError(
        'AGE_UNSUPPORTED',
        `The file is age format '${first.slice(versionPrefix.length)}'; only v1 is supported. Decrypt it with a newer age.`,
      );
    }
    throw bad(`The first line is not '${versionLine}'`);
  }
  const stanzas: Stanza[] = [];
  let i = 1;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.startsWith('--- ')) break;
    if (!line.startsWith('-> '))
      throw bad(`Header line ${i + 1} starts neither a stanza ('-> ') nor the MAC ('--- ')`);
    const args = line.slice(3).split(' ');
    if (!args.every(isArgument))
      throw bad(`Header line ${i + 1} has an empty or non-printable stanza argument`);
    i++;
    let body = '';
    for (;;) {
      const bodyLine = lines[i];
      if (bodyLine === undefined || bodyLine.startsWith('---')) {
        throw bad(`The stanza on header line ${i} does not end with a line shorter than 64 columns`);
      }
      if (bodyLine.length > columns) throw bad(`Header line ${i + 1} is longer than 64 columns`);
      body += bodyLine;
      i++;
      if (bodyLine.length < columns) break;
    }
    stanzas.push({ args, body: decodeBase64Canonical(body, `The body of stanza '${args[0]}'`) });
  }
  if (stanzas.length === 0) throw bad('The header has no recipient stanza');
  if (i >= lines.length) throw bad('The header has no MAC line');
  if (i !== lines.length - 1) throw bad('The header has lines after its MAC');
  const macText = lines[i]!.slice(4);
  const mac = decodeBase64Canonical(macText, 'The header MAC');
  if (mac.length !== macLength) throw bad(`The header MAC is ${mac.length} bytes instead of 32`);
  const macInput = header.subarray(0, header.length - macText.length - 2);
  return { stanzas, mac, macInput };
}

/** True if `mac` is the header MAC of `macInput` under `fileKey` (constant time). */
export function verifyHeaderMac(fileKey: Uint8Array, parsed: ParsedHeader): boolean {
  return timingSafeEqual(headerMac(fileKey, parsed.macInput), parsed.mac);
}
