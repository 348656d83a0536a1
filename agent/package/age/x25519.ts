/**
 * The X25519 recipient type of age v1: raw 32-byte keys, and wrapping the file key into an
 * `-> X25519 <ephemeral share>` stanza and back, with Node's built-in X25519, HKDF and AEAD.
 */

import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { AgeError } from './errors.ts';
import type { Stanza } from './header.ts';
import { decodeBase64Canonical, encodeBase64 } from './header.ts';

export const x25519KeyLength = 32;
export const fileKeyLength = 16;

const stanzaType = 'X25519';
const wrapInfo = Buffer.from('age-encryption.org/v1/X25519');
const zeroNonce = Buffer.alloc(12);
const tagLength = 16;
// DER prefixes of an X25519 PKCS#8 private key and SPKI public key; the raw key follows.
const pkcs8Prefix = Buffer.from('302e020100300506032b656e04220420', 'hex');
const spkiPrefix = Buffer.from('302a300506032b656e032100', 'hex');

/** A KeyObject for a raw 32-byte X25519 secret (any bytes; clamping happens in the operation). */
export function x25519PrivateKey(secret: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([pkcs8Prefix, secret]), format: 'der', type: 'pkcs8' });
}

/** A KeyObject for a raw 32-byte X25519 public key. */
export function x25519PublicKey(publicKey: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([spkiPrefix, publicKey]), format: 'der', type: 'spki' });
}

/** The raw public key of a raw secret: X25519(secret, basepoint). */
export function x25519PublicFromSecret(secret: Uint8Array): Buffer {
  const spki = createPublicKey(x25519PrivateKey(secret)).export({ format: 'der', type: 'spki' });
  return Buffer.from(spki.subarray(spki.length - x25519KeyLength));
}

function wrapKey(sharedSecret: Buffer, share: Uint8Array, recipient: Uint8Array): Buffer {
  const salt = Buffer.concat([share, recipient]);
  return Buffer.from(hkdfSync('sha256', sharedSecret, salt, wrapInfo, 32));
}

/** Wraps `fileKey` for the raw X25519 public key `recipient` with a fresh ephemeral key. */
export function wrapFileKey(fileKey: Uint8Array, recipient: Uint8Array): Stanza {
  const ephemeral = randomBytes(x25519KeyLength);
  const share = x25519PublicFromSecret(ephemeral);
  const shared = diffieHellman({
    privateKey: x25519PrivateKey(ephemeral),
    publicKey: x25519PublicKey(recipient),
  });
  ephemeral.fill(0);
  const cipher = createCipheriv('chacha20-poly1305', wrapKey(shared, share, recipient), zeroNonce, {
    authTagLength: tagLength,
  });
  const body = Buffer.concat([cipher.update(fileKey), cipher.final(), cipher.getAuthTag()]);
  return { args: [stanzaType, encodeBase64(share)], body };
}

/** An identity prepared for unwrapping: its secret as a KeyObject and its public key. */
export interface X25519Unwrapper {
  readonly privateKey: KeyObject;
  readonly publicKey: Buffer;
}

export function x25519Unwrapper(secret: Uint8Array): X25519Unwrapper {
  return { privateKey: x25519PrivateKey(secret), publicKey: x25519PublicFromSecret(secret) };
}

/** True if the stanza is addressed to the X25519 type (whether or not it is well formed). */
export function isX25519Stanza(stanza: Stanza): boolean {
  return stanza.args[0] === stanzaType;
}

/**
 * Unwraps the file key from an X25519 stanza with one identity; `undefined` if the stanza is for
 * another key. Throws `AGE_BAD_HEADER` for a malformed stanza, as the spec requires.
 */
export function unwrapFileKey(stanza: Stanza, identity: X25519Unwrapper): Buffer | undefined {
  if (stanza.args.length !== 2) {
    throw new AgeError(
      'AGE_BAD_HEADER',
      `An X25519 stanza has ${stanza.args.length - 1} arguments instead of 1; the header is corrupted.`,
    );
  }
  const share = decodeBase64Canonical(stanza.args[1]!, 'the X25519 ephemeral share');
  if (share.length !== x25519KeyLength) {
    throw new AgeError(
      'AGE_BAD_HEADER',
      `An X25519 ephemeral share is ${share.length} bytes instead of 32; the header is corrupted.`,
    );
  }
  // Checked before any decryption, against partitioning-oracle attacks.
  if (stanza.body.length !== fileKeyLength + tagLength) {
    throw new AgeError(
      'AGE_BAD_HEADER',
      `An X25519 stanza body is ${stanza.body.length} bytes instead of 32; the header is corrupted.`,
    );
  }
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: identity.privateKey, publicKey: x25519PublicKey(share) });
  } catch (cause) {
    // OpenSSL refuses low-order points (an all-zero result); the spec says to abort.
    throw new AgeError(
      'AGE_BAD_HEADER',
      'An X25519 ephemeral share is a low-order point; refusing the file.',
      {
        cause,
      },
    );
  }
  if (shared.every((b) => b === 0)) {
    throw new AgeError(
      'AGE_BAD_HEADER',
      'An X25519 ephemeral share gives an all-zero secret; refusing the file.',
    );
  }
  const decipher = createDecipheriv(
    'chacha20-poly1305',
    wrapKey(shared, share, identity.publicKey),
    zeroNonce,
    {
      authTagLength: tagLength,
    },
  );
  decipher.setAuthTag(stanza.body.subarray(fileKeyLength));
  const fileKey = decipher.update(stanza.body.subarray(0, fileKeyLength));
  try {
    decipher.final();
  } catch {
    return undefined;
  }
  return fileKey;
}
