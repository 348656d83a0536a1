import { z } from 'zod';
import { parseOrThrow } from '../validate.ts';

/**
 * The per-transfer key's two signed statements (issue #18). The ODT node makes an age identity
 * for one transfer when it is approved and signs its recipient; the export agent encrypts to that
 * recipient only after checking the signature against the node's certificate it pinned itself.
 * The wipe destroys the identity and the node signs that it did. The control plane stores and
 * passes both on; it cannot forge either (docs/security.md).
 *
 * A statement travels as its exact JSON bytes (base64) and an RSA-PSS signature over them by the
 * node's enrolled key: nothing is re-serialised before it is checked.
 */
export const signedStatementSchema = z.object({
  /** base64 of the statement's UTF-8 JSON. */
  payload: z.string().min(1).max(8192),
  /** base64 RSA-PSS (SHA-256) signature over the payload's bytes by the node's enrolled key. */
  signature: z.string().min(1).max(2048),
});
export type SignedStatement = z.infer<typeof signedStatementSchema>;

const ageRecipient = z
  .string()
  .regex(/^age1[02-9ac-hj-np-z]{58}$/, 'must be an age X25519 recipient (age1…)');
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 in lowercase hex');

/** "For transfer T of site S, encrypt to recipient R": made by node N at approval. */
export const recipientStatementSchema = z.object({
  type: z.literal('sneakernet-transfer-recipient/1'),
  transferId: z.string().min(1),
  site: z.string().min(1),
  providerSite: z.string().min(1),
  recipient: ageRecipient,
  /** SHA-256 of the recipient's text: how the wipe statement and the report name the key. */
  keyFingerprint: sha256Hex,
  /** The node's agent id and the SHA-256 of its certificate (uppercase hex, as the registry shows it). */
  node: z.string().min(1),
  nodeCertSha256: z.string().min(1),
  createdAt: z.iso.datetime(),
});
export type RecipientStatement = z.infer<typeof recipientStatementSchema>;

/** "The identity of key K of transfer T no longer exists on node N": made by the node at the wipe. */
export const wipeStatementSchema = z.object({
  type: z.literal('sneakernet-key-wipe/1'),
  transferId: z.string().min(1),
  keyFingerprint: sha256Hex,
  recipient: ageRecipient,
  destroyedAt: z.iso.datetime(),
  /** Who confirmed that the NAS was erased, and when (from the transfer's history). */
  nasEraseConfirmedBy: z.string().min(1),
  nasEraseConfirmedAt: z.iso.datetime().optional(),
  node: z.string().min(1),
  nodeCertSha256: z.string().min(1),
});
export type WipeStatement = z.infer<typeof wipeStatementSchema>;

/** The statement a signed envelope carries, validated (the signature is checked by whoever trusts it). */
export function statementOf<T extends z.ZodType>(
  schema: T,
  signed: SignedStatement,
  what: string,
): z.output<T> {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(signed.payload, 'base64').toString('utf8'));
  } catch {
    json = undefined;
  }
  return parseOrThrow(schema, json, what);
}

/** How a history entry names the wipe statement: readable, and whole enough to check it later. */
export const wipeNotePrefix = 'key destroyed';
