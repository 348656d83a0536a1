/**
 * age X25519 keys as text: recipients (`age1…`, lowercase Bech32), identities
 * (`AGE-SECRET-KEY-1…`, uppercase Bech32) and identity files as `age-keygen` writes them.
 */

import { randomBytes } from 'node:crypto';
import { bech32Decode, bech32Encode } from './bech32.ts';
import { AgeError } from './errors.ts';
import { x25519KeyLength, x25519PublicFromSecret } from './x25519.ts';

const recipientHrp = 'age';
const identityHrp = 'age-secret-key-';

/** A new X25519 key pair: the secret `identity` and the public `recipient` to encrypt to. */
export interface GeneratedIdentity {
  readonly identity: string;
  readonly recipient: string;
}

/** The recipient (`age1…`) of a raw 32-byte X25519 public key. */
export function formatRecipient(publicKey: Uint8Array): string {
  return bech32Encode(recipientHrp, publicKey);
}

function encodeIdentity(secret: Uint8Array): string {
  return bech32Encode(identityHrp, secret, { uppercase: true });
}

/** Generates a fresh identity from the CSPRNG, like `age-keygen`. */
export function generateIdentity(): GeneratedIdentity {
  const secret = randomBytes(x25519KeyLength);
  const result = {
    identity: encodeIdentity(secret),
    recipient: formatRecipient(x25519PublicFromSecret(secret)),
  };
  secret.fill(0);
  return result;
}

/** The recipient (`age1…`) of an identity, like `age-keygen -y`. */
export function recipientFromIdentity(identity: string): string {
  return formatRecipient(x25519PublicFromSecret(parseIdentity(identity)));
}

const recipientShape =
  "an age X25519 recipient is 'age1' followed by 58 characters, e.g. the '# public key:' line of an identity file";

/**
 * Parses an X25519 recipient (`age1…`; surrounding whitespace ignored) into its 32-byte public key.
 * Throws AgeError `AGE_BAD_RECIPIENT` saying what is wrong and how to fix it.
 */
export function parseRecipient(recipient: string): Buffer {
  const text = recipient.trim();
  const fail = (why: string, cause?: unknown) =>
    new AgeError(
      'AGE_BAD_RECIPIENT',
      `Recipient '${text}' cannot be used: ${why}`,
      cause ? { cause } : undefined,
    );
  const upper = text.toUpperCase();
  if (upper.startsWith('AGE-SECRET-KEY-') || upper.startsWith('AGE-PLUGIN-')) {
    // Never echo a secret.
    throw new AgeError(
      'AGE_BAD_RECIPIENT',
      'A secret identity (AGE-SECRET-KEY-1…) was given where a recipient is expected. Give its public key ' +
        "instead (the '# public key:' line of the identity file, or `age-keygen -y FILE`), and keep the identity secret.",
    );
  }
  if (text.startsWith('ssh-') || text.startsWith('ecdsa-')) {
    throw fail(`SSH public keys are not supported; ${recipientShape}.`);
  }
  if (text === '') throw fail(`it is empty; ${recipientShape}.`);
  let decoded: { hrp: string; data: Buffer };
  try {
    decoded = bech32Decode(text, { label: 'it' });
  } catch (cause) {
    throw fail(`${(cause as Error).message} (${recipientShape})`, cause);
  }
  if (decoded.hrp !== recipientHrp) {
    const what = decoded.hrp.startsWith('age1')
      ? `'${decoded.hrp}1…' is a plugin or post-quantum recipient, which this codec does not support`
      : `its prefix is '${decoded.hrp}', not 'age'`;
    throw fail(`${what}; ${recipientShape}.`);
  }
  if (decoded.data.length !== x25519KeyLength) {
    throw fail(`it holds ${decoded.data.length} bytes instead of 32; ${recipientShape}.`);
  }
  return decoded.data;
}

const identityShape =
  "an age X25519 identity is 'AGE-SECRET-KEY-1' followed by 58 characters, as age-keygen writes it";

/**
 * Parses an X25519 identity (`AGE-SECRET-KEY-1…`, either case; surrounding whitespace ignored) into
 * its 32-byte secret. Throws AgeError `AGE_BAD_IDENTITY`; messages never contain the secret.
 */
export function parseIdentity(identity: string): Buffer {
  const text = identity.trim();
  const fail = (why: string, cause?: unknown) =>
    new AgeError('AGE_BAD_IDENTITY', `The identity cannot be used: ${why}`, cause ? { cause } : undefined);
  if (text.startsWith('age1')) {
    throw fail(
      `'${text}' is a recipient (public key); decrypting needs the secret identity (AGE-SECRET-KEY-1…) ` +
        'from the identity file of the node it was encrypted to.',
    );
  }
  const upper = text.toUpperCase();
  if (upper.startsWith('AGE-PLUGIN-') || upper.startsWith('AGE-SECRET-KEY-PQ-')) {
    throw fail(`plugin and post-quantum identities are not supported; ${identityShape}.`);
  }
  if (text === '') throw fail(`it is empty; ${identityShape}.`);
  let decoded: { hrp: string; data: Buffer };
  try {
    decoded = bech32Decode(text, { label: 'it', secret: true });
  } catch (cause) {
    throw fail(`${(cause as Error).message} (${identityShape})`, cause);
  }
  if (decoded.hrp !== identityHrp) {
    throw fail(`its prefix is '${decoded.hrp.toUpperCase()}', not 'AGE-SECRET-KEY-'; ${identityShape}.`);
  }
  if (decoded.data.length !== x25519KeyLength) {
    throw fail(`it holds ${decoded.data.length} bytes instead of 32; ${identityShape}.`);
  }
  return decoded.data;
}

function rfc3339Seconds(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/**
 * An identity file as `age-keygen` writes it: `# created:` and `# public key:` comments, then the
 * key. `created` defaults to now. Store it with mode 0600.
 */
export function formatIdentityFile(identity: string, created: Date = new Date()): string {
  const recipient = recipientFromIdentity(identity);
  return `# created: ${rfc3339Seconds(created)}\n# public key: ${recipient}\n${identity.trim().toUpperCase()}\n`;
}

/**
 * The identities in an identity file, in order, normalised to uppercase: blank lines and `#`
 * comments are skipped, every other line must be an identity. Throws AgeError `AGE_BAD_IDENTITY`
 * naming the line.
 */
export function parseIdentityFile(text: string): string[] {
  const identities: string[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    // Not an identity at all (a certificate, a PEM key, a recipient): say what it looks like.
    if (!/^AGE-SECRET-KEY-/i.test(line)) {
      const looks = line.startsWith('-----BEGIN ')
        ? `a PEM block (${line.slice(11, 40).replace(/-+$/, '')})`
        : /^age1/i.test(line)
          ? 'a recipient (the public key), not the identity'
          : 'not an age identity (it does not start with AGE-SECRET-KEY-1)';
      throw new AgeError(
        'AGE_BAD_IDENTITY',
        `Identity file line ${n + 1} is ${looks}: an identity file holds AGE-SECRET-KEY-1… lines, as age-keygen or \`odt node init\` write them.`,
      );
    }
    try {
      parseIdentity(line);
    } catch (cause) {
      const message = cause instanceof Error ? cause.message : String(cause);
      throw new AgeError('AGE_BAD_IDENTITY', `Identity file line ${n + 1}: ${message}`, { cause });
    }
    identities.push(line.toUpperCase());
  }
  if (identities.length === 0) {
    throw new AgeError(
      'AGE_BAD_IDENTITY',
      'The identity file holds no identity (only blank or # lines); give the file `age-keygen -o FILE` wrote.',
    );
  }
  return identities;
}
