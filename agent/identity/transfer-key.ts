import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoOf } from '../../core/errors.ts';
import {
  type RecipientStatement,
  recipientStatementSchema,
  type SignedStatement,
  statementOf,
  type WipeStatement,
  wipeStatementSchema,
} from '../../core/model/transfer-key.ts';
import { AgentError } from '../errors.ts';
import {
  formatIdentityFile,
  generateIdentity,
  parseIdentityFile,
  recipientFromIdentity,
} from '../package/age/keys.ts';
import {
  type AgentIdentity,
  AgentIdentityError,
  certificateSha256,
  signDetached,
  verifyDetached,
} from './agent-identity.ts';

/**
 * A key per transfer (issue #18). The ODT node makes an age identity for one transfer when it is
 * approved, keeps it in `<state-dir>/transfer-keys/<transfer>.txt` (mode 0600, folder 0700), and
 * hands the export agent its recipient signed with the node's enrolled key. The export agent checks
 * that signature against the node's certificate it pinned itself (`odt agent run --node-cert`), so
 * whoever controls the control plane cannot slip it another recipient. The wipe overwrites and
 * removes the identity and the node signs a statement saying so: from then on the NAS cannot be
 * decrypted by anyone, the node included (docs/security.md).
 */

export type TransferKeyCode = 'RECIPIENT_UNSIGNED' | 'RECIPIENT_UNTRUSTED' | 'TRANSFER_KEY_MISSING';

export class TransferKeyError extends AgentError<TransferKeyCode> {
  constructor(code: TransferKeyCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'TransferKeyError';
  }
}

/** What a key statement is about: the transfer as the control plane describes it to an agent. */
export interface KeyedTransfer {
  readonly id: string;
  readonly site: string;
  readonly providerSite: string;
}

/** The node that signs: its enrolled identity and its agent id in the registry. */
export interface SigningNode {
  readonly identity: AgentIdentity;
  readonly agentId: string;
}

export const transferKeysFolder = 'transfer-keys';

/** Where the ODT node keeps transfer `id`'s identity under its state folder. */
export const transferKeyPath = (stateDir: string, transferId: string): string =>
  join(stateDir, transferKeysFolder, `${transferId}.txt`);

/** SHA-256 (hex) of a recipient's text: how statements, the history and the report name a key. */
export const keyFingerprint = (recipient: string): string =>
  createHash('sha256').update(recipient, 'utf8').digest('hex');

/** A statement as its exact JSON bytes and the node's RSA-PSS signature over them. */
export function signStatement(
  keyPem: string,
  statement: RecipientStatement | WipeStatement,
): SignedStatement {
  const bytes = Buffer.from(JSON.stringify(statement), 'utf8');
  return { payload: bytes.toString('base64'), signature: signDetached(keyPem, bytes).toString('base64') };
}

/** The identity of transfer `id` this node holds, if it does. */
export async function readTransferIdentity(
  stateDir: string,
  transferId: string,
): Promise<string | undefined> {
  try {
    return parseIdentityFile(await readFile(transferKeyPath(stateDir, transferId), 'utf8'))[0];
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Makes transfer `transfer`'s identity (once: a rerun after a crash signs the one it made) and
 * returns its recipient signed by the node.
 */
export async function makeTransferKey(options: {
  readonly stateDir: string;
  readonly transfer: KeyedTransfer;
  readonly node: SigningNode;
  readonly now?: Date;
}): Promise<{ signed: SignedStatement; statement: RecipientStatement; path: string; created: boolean }> {
  const path = transferKeyPath(options.stateDir, options.transfer.id);
  let identity = await readTransferIdentity(options.stateDir, options.transfer.id);
  const created = identity === undefined;
  if (identity === undefined) {
    identity = generateIdentity().identity;
    await mkdir(join(options.stateDir, transferKeysFolder), { recursive: true, mode: 0o700 });
    const tmp = `${path}.partial`;
    await writeFile(tmp, formatIdentityFile(identity), { mode: 0o600 });
    await rename(tmp, path);
  }
  const recipient = recipientFromIdentity(identity);
  const statement: RecipientStatement = {
    type: 'sneakernet-transfer-recipient/1',
    transferId: options.transfer.id,
    site: options.transfer.site,
    providerSite: options.transfer.providerSite,
    recipient,
    keyFingerprint: keyFingerprint(recipient),
    node: options.node.agentId,
    nodeCertSha256: options.node.identity.certSha256,
    createdAt: (options.now ?? new Date()).toISOString(),
  };
  return { signed: signStatement(options.node.identity.keyPem, statement), statement, path, created };
}

/**
 * The recipient the export agent may encrypt transfer `transfer` to: the one in `signed`, when it
 * verifies with the pinned node certificate and names this very transfer and site. Refuses a
 * missing statement (RECIPIENT_UNSIGNED) and any other (RECIPIENT_UNTRUSTED), naming why.
 */
export function trustedRecipient(
  signed: SignedStatement | undefined,
  nodeCertPem: string,
  transfer: KeyedTransfer,
): RecipientStatement {
  if (!signed) {
    throw new TransferKeyError(
      'RECIPIENT_UNSIGNED',
      `transfer ${transfer.id} has no recipient signed by the ODT node: nothing is exported to an unsigned key. The ODT node makes one when the transfer is approved; check that it runs (odt agent run --role import) and is enrolled for site '${transfer.providerSite}'.`,
    );
  }
  const pinned = certificateSha256(nodeCertPem);
  if (
    !verifyDetached(
      nodeCertPem,
      Buffer.from(signed.payload, 'base64'),
      Buffer.from(signed.signature, 'base64'),
    )
  ) {
    throw new TransferKeyError(
      'RECIPIENT_UNTRUSTED',
      `the recipient handed out for transfer ${transfer.id} is not signed by the pinned ODT node (certificate SHA-256 ${pinned}): it may come from whoever controls the control plane. Nothing was exported. If the node was enrolled again, pin its new certificate with --node-cert after checking its SHA-256 with the provider.`,
    );
  }
  const s = statementOf(recipientStatementSchema, signed, "The ODT node's recipient statement");
  const bound =
    s.transferId === transfer.id &&
    s.site === transfer.site &&
    s.providerSite === transfer.providerSite &&
    s.keyFingerprint === keyFingerprint(s.recipient);
  if (!bound) {
    throw new TransferKeyError(
      'RECIPIENT_UNTRUSTED',
      `the ODT node signed this recipient for transfer ${s.transferId} (${s.site} → ${s.providerSite}), not for ${transfer.id} (${transfer.site} → ${transfer.providerSite}): another transfer's key is not used. Nothing was exported.`,
    );
  }
  return s;
}

/**
 * Destroys transfer `transfer`'s identity (overwritten, synced, removed; a rerun finds it gone and
 * signs again) and returns the node's signed wipe statement. `key` is the recipient statement the
 * transfer carries: the key must be this node's (TRANSFER_KEY_MISSING names the node that holds it).
 */
export async function destroyTransferKey(options: {
  readonly stateDir: string;
  readonly transfer: KeyedTransfer & {
    readonly key: SignedStatement;
    readonly nasErase?: { readonly by: string; readonly at: string };
    readonly phase: string;
  };
  readonly node: SigningNode;
  readonly now?: Date;
}): Promise<{ signed: SignedStatement; statement: WipeStatement }> {
  const made = statementOf(recipientStatementSchema, options.transfer.key, 'The transfer key');
  if (made.nodeCertSha256 !== options.node.identity.certSha256) {
    throw new TransferKeyError(
      'TRANSFER_KEY_MISSING',
      `the key of transfer ${made.transferId} was made by ODT node ${made.node} (certificate SHA-256 ${made.nodeCertSha256}), not this one (${options.node.agentId}): destroy it there`,
    );
  }
  const path = transferKeyPath(options.stateDir, options.transfer.id);
  const held = await readTransferIdentity(options.stateDir, options.transfer.id);
  if (held !== undefined && recipientFromIdentity(held) !== made.recipient) {
    throw new TransferKeyError(
      'TRANSFER_KEY_MISSING',
      `${path} holds a key other than the one transfer ${made.transferId} was signed for (${made.keyFingerprint}); it is left in place: check the node's state folder`,
    );
  }
  if (held !== undefined) await shred(path);
  const erase = options.transfer.nasErase;
  const statement: WipeStatement = {
    type: 'sneakernet-key-wipe/1',
    transferId: made.transferId,
    keyFingerprint: made.keyFingerprint,
    recipient: made.recipient,
    destroyedAt: (options.now ?? new Date()).toISOString(),
    nasEraseConfirmedBy: erase
      ? erase.by
      : `nobody: the transfer ended ${options.transfer.phase} without a NAS erase confirmed by a person`,
    ...(erase ? { nasEraseConfirmedAt: erase.at } : {}),
    node: options.node.agentId,
    nodeCertSha256: options.node.identity.certSha256,
  };
  return { signed: signStatement(options.node.identity.keyPem, statement), statement };
}

/** Checks a wipe statement against the node's certificate; returns what it says. */
export function verifyWipeStatement(signed: SignedStatement, nodeCertPem: string): WipeStatement {
  if (
    !verifyDetached(
      nodeCertPem,
      Buffer.from(signed.payload, 'base64'),
      Buffer.from(signed.signature, 'base64'),
    )
  ) {
    throw new TransferKeyError(
      'RECIPIENT_UNTRUSTED',
      `the wipe statement does not verify with the ODT node's certificate (SHA-256 ${certificateSha256(nodeCertPem)})`,
    );
  }
  return statementOf(wipeStatementSchema, signed, 'The wipe statement');
}

/** Reads a certificate for `--node-cert`, naming the flag and the file when it is not one. */
export async function readNodeCertificate(path: string): Promise<string> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
    new X509Certificate(pem);
  } catch (error) {
    throw new AgentIdentityError(
      `--node-cert ${path} is not the ODT node's certificate (${(error as Error).message}); give the node's agent.crt.pem (its SHA-256 is in \`odt agent list\`)`,
      { cause: error },
    );
  }
  return pem;
}

/**
 * Overwrites the file with random bytes and syncs before removing it, then syncs the folder. On a
 * copy-on-write or flash file system the old blocks may survive the overwrite (docs/security.md):
 * the removal is what the node can promise.
 */
async function shred(path: string): Promise<void> {
  const { size } = await stat(path);
  const fh = await open(path, 'r+');
  try {
    await fh.write(randomBytes(Math.max(size, 1)), 0, Math.max(size, 1), 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rm(path);
  const dir = await open(join(path, '..'), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
