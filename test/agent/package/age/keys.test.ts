import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AgeError } from '../../../../agent/package/age/errors.ts';
import {
  formatIdentityFile,
  generateIdentity,
  parseIdentity,
  parseIdentityFile,
  parseRecipient,
  recipientFromIdentity,
} from '../../../../agent/package/age/keys.ts';
import { runCliOk } from './age-cli.ts';

// From the age v1 specification (c2sp.org/age).
const specIdentity = 'AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX';
const specRecipient = 'age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj';

const dir = mkdtempSync(join(tmpdir(), 'age-keys-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ageError(fn: () => unknown): AgeError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(AgeError);
    return error as AgeError;
  }
  throw new Error('expected an AgeError');
}

describe('age keys', () => {
  it('derives the specification’s recipient from its identity', () => {
    expect(recipientFromIdentity(specIdentity)).toBe(specRecipient);
    expect(parseIdentity(specIdentity)).toEqual(Buffer.alloc(32, 0x42));
    expect(parseRecipient(specRecipient)).toHaveLength(32);
  });

  it('generates keys of the right shape, different each time', () => {
    const a = generateIdentity();
    const b = generateIdentity();

    expect(a.identity).toMatch(/^AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}$/);
    expect(a.recipient).toMatch(/^age1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}$/);
    expect(recipientFromIdentity(a.identity)).toBe(a.recipient);
    expect(b.identity).not.toBe(a.identity);
  });

  it('writes an identity file that age-keygen -y reads back to the same recipient', async () => {
    const { identity, recipient } = generateIdentity();
    const file = join(dir, 'ours.txt');
    const text = formatIdentityFile(identity, new Date('2024-05-06T07:08:09.123Z'));
    writeFileSync(file, text, { mode: 0o600 });

    const fromCli = (await runCliOk('age-keygen', ['-y', file])).toString().trim();

    expect(fromCli).toBe(recipient);
    expect(text).toBe(`# created: 2024-05-06T07:08:09Z\n# public key: ${recipient}\n${identity}\n`);
    expect(parseIdentityFile(text)).toEqual([identity]);
  });

  it('reads identity files that age-keygen writes', async () => {
    const file = join(dir, 'cli.txt');
    await runCliOk('age-keygen', ['-o', file]);
    const text = (await import('node:fs')).readFileSync(file, 'utf8');
    const publicLine = /^# public key: (age1\S+)$/m.exec(text)?.[1];

    const identities = parseIdentityFile(text);

    expect(identities).toHaveLength(1);
    expect(recipientFromIdentity(identities[0]!)).toBe(publicLine);
    expect(parseRecipient(publicLine!)).toHaveLength(32);
  });

  it('reads several identities, skipping comments, blank lines and CRLF endings', () => {
    const a = generateIdentity();
    const b = generateIdentity();
    const text = `# first\r\n${a.identity}\r\n\r\n   \n# second\n  ${b.identity.toLowerCase()}  \n`;

    expect(parseIdentityFile(text)).toEqual([a.identity, b.identity]);
  });

  it('explains an identity file without identities, and names the bad line without leaking it', () => {
    const { identity } = generateIdentity();
    const broken = `${identity.slice(0, 20)}${identity[20] === 'Q' ? 'P' : 'Q'}${identity.slice(21)}`;

    const empty = ageError(() => parseIdentityFile('# created: now\n\n'));
    const bad = ageError(() => parseIdentityFile(`# ok\n${identity}\n${broken}\n`));

    expect(empty.code).toBe('AGE_BAD_IDENTITY');
    expect(empty.message).toMatch(/no identity/);
    expect(bad.code).toBe('AGE_BAD_IDENTITY');
    expect(bad.message).toMatch(/^Identity file line 3: .*checksum/);
    expect(bad.message).not.toContain(broken.slice(16, 40));
  });

  it.each([
    [
      'a certificate',
      '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
      /line 1 is a PEM block \(CERTIFICATE\)/,
    ],
    [
      'a recipient',
      `# public key\n${generateIdentity().recipient}\n`,
      /line 2 is a recipient \(the public key\), not the identity/,
    ],
    [
      'something else',
      'hunter2-password\n',
      /line 1 is not an age identity \(it does not start with AGE-SECRET-KEY-1\)/,
    ],
  ])('says what an identity file holds when it holds %s, showing none of it', (_name, text, message) => {
    const e = ageError(() => parseIdentityFile(text));

    expect(e.code).toBe('AGE_BAD_IDENTITY');
    expect(e.message).toMatch(message);
    expect(e.message).toMatch(/as age-keygen or `odt node init` write them/);
    expect(e.message).not.toContain('hunter2');
    expect(e.message).not.toContain('MIIB');
  });

  it('tells a recipient from an identity and says what to give instead', () => {
    const { identity, recipient } = generateIdentity();

    const secretAsRecipient = ageError(() => parseRecipient(identity));
    const recipientAsIdentity = ageError(() => parseIdentity(recipient));

    expect(secretAsRecipient.code).toBe('AGE_BAD_RECIPIENT');
    expect(secretAsRecipient.message).toMatch(/age-keygen -y/);
    expect(secretAsRecipient.message).not.toContain(identity.slice(16));
    expect(recipientAsIdentity.code).toBe('AGE_BAD_IDENTITY');
    expect(recipientAsIdentity.message).toMatch(/is a recipient \(public key\)/);
  });

  it('rejects malformed recipients with the reason', async () => {
    const cases: [string, RegExp][] = [
      ['', /empty/],
      ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGQs8', /SSH public keys are not supported/],
      [`${specRecipient.slice(0, -1)}q`, /checksum/],
      [specRecipient.toUpperCase().slice(0, 20) + specRecipient.slice(20), /mixes upper and lower case/],
      [
        'age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq',
        /checksum|bytes instead of 32/,
      ],
      [`age1pq1${'q'.repeat(60)}`, /checksum|plugin or post-quantum/],
    ];
    const { bech32Encode } = await import('../../../../agent/package/age/bech32.ts');
    cases.push([bech32Encode('npub', Buffer.alloc(32)), /prefix is 'npub', not 'age'/]);
    for (const [input, message] of cases) {
      const error = ageError(() => parseRecipient(input));

      expect(error.code, input).toBe('AGE_BAD_RECIPIENT');
      expect(error.message, input).toMatch(message);
      expect(error.message, input).toMatch(/age1/);
    }
  });

  it('rejects a recipient of the wrong length with a valid checksum', async () => {
    const { bech32Encode } = await import('../../../../agent/package/age/bech32.ts');

    expect(ageError(() => parseRecipient(bech32Encode('age', Buffer.alloc(31)))).message).toMatch(
      /31 bytes instead of 32/,
    );
    expect(ageError(() => parseIdentity(bech32Encode('age-secret-key-', Buffer.alloc(33)))).message).toMatch(
      /33 bytes instead of 32/,
    );
  });

  it('accepts surrounding whitespace and a lowercase identity', () => {
    expect(recipientFromIdentity(`  ${specIdentity.toLowerCase()}\n`)).toBe(specRecipient);
    expect(parseRecipient(` ${specRecipient}\n`)).toEqual(parseRecipient(specRecipient));
  });
});
