import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoOf } from '../../core/errors.ts';
import {
  formatIdentityFile,
  generateIdentity,
  parseIdentityFile,
  recipientFromIdentity,
} from '../package/age/keys.ts';

export const nodeIdentityFile = 'identity.txt';

/**
 * Creates the ODT node's age identity (X25519) in `dir`, mode 0600, unless one exists; returns the
 * recipient (`age1…`) that export agents encrypt to. The private key never leaves this file.
 */
export async function initNodeIdentity(
  dir: string,
): Promise<{ recipient: string; path: string; created: boolean }> {
  const path = join(dir, nodeIdentityFile);
  try {
    const [identity] = parseIdentityFile(await readFile(path, 'utf8'));
    if (identity) return { recipient: recipientFromIdentity(identity), path, created: false };
  } catch (error) {
    if (errnoOf(error) !== 'ENOENT') throw error;
  }
  const { identity, recipient } = generateIdentity();
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.partial`;
  await writeFile(tmp, formatIdentityFile(identity), { mode: 0o600 });
  await rename(tmp, path);
  return { recipient, path, created: true };
}
