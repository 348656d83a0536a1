import { z } from 'zod';
import { signDetached, verifyDetached } from '../identity/agent-identity.ts';

/**
 * /3: names the customer site it was exported at, besides the transfer, the agent and the
 * recipient (/2 did not), so that a node can refuse a package bound to anything else.
 * /2: each encrypted file's digest is a list, one SHA-256 per `segmentSize` bytes (/1 had one
 * SHA-256 of the whole file): a node checks a file in parallel and names a damaged region.
 * Older formats are refused, not read (docs/decisions.md, "A package is bound to its transfer").
 */
export const manifestFormat = 'sneakernet-transfer/3';
export const manifestFile = 'transfer.json';
export const signatureFile = 'transfer.json.sig';
export const certificateFile = 'agent.crt.pem';

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits (SHA-256)');

export const fileRecordSchema = z.object({
  path: z
    .string()
    .regex(
      /^[A-Za-z0-9_-][A-Za-z0-9._-]*\/[A-Za-z0-9_-][A-Za-z0-9._ ()-]*\.age$/,
      'must be <item>/<file>.age, without ../ or an absolute path',
    ),
  name: z.string().regex(/^[A-Za-z0-9_-][A-Za-z0-9._ ()-]*$/, 'must be a plain file name, without / or ..'),
  role: z.enum(['descriptor', 'disk', 'manifest', 'file']),
  size: z.number().int().nonnegative(),
  sha256: hex64,
  encryptedSize: z.number().int().nonnegative(),
  /** SHA-256 of each `segmentSize` bytes of the encrypted file, in order; the last may be shorter. */
  encryptedSegmentSha256: z.array(hex64).min(1),
});
export type ManifestFile = z.infer<typeof fileRecordSchema>;

/**
 * How an item was read, and where each disk's change tracking stood then (issue #21): `live` from
 * a snapshot of the running VM (when, and whether quiesced), or `cold` (powered off, a template).
 * `changeId` is the disk backing's changeId at that point: a later delta sync asks
 * QueryChangedDiskAreas for what changed since. Optional: packages of earlier agents lack it, and
 * readers that do not know it ignore it, so the format name stays /3.
 */
export const captureSchema = z.object({
  mode: z.enum(['cold', 'live']),
  snapshotAt: z.iso.datetime().optional(),
  consistency: z.enum(['quiesced', 'crash-consistent']).optional(),
  /** on: it was on; enabled: this export switched it on (--enable-cbt); off: it was off, and left so. */
  changeTracking: z.enum(['on', 'enabled', 'off']),
  disks: z.array(
    z.object({
      /** The disk's file in the package. */
      file: z.string().min(1),
      /** VirtualDevice.key of the disk in the source VM. */
      deviceKey: z.number().int(),
      changeId: z.string().min(1).optional(),
    }),
  ),
});
export type Capture = z.infer<typeof captureSchema>;

/** What the capture says in a line: "live, from snapshot at <time>, quiesced|crash-consistent", or "cold". */
export function captureText(c: Capture | undefined): string {
  if (!c) return 'not recorded';
  if (c.mode === 'cold') return 'cold (powered off)';
  return `live, from snapshot at ${c.snapshotAt ?? '?'}, ${c.consistency ?? 'crash-consistent'}`;
}

/** Whether a later delta sync can start from this package: every disk has a changeId. */
export function deltaSync(c: Capture | undefined): { readonly ready: boolean; readonly text: string } {
  if (!c) return { ready: false, text: 'no: the package does not record change tracking' };
  if (c.changeTracking === 'off')
    return { ready: false, text: 'no: change tracking was off (export with --enable-cbt to switch it on)' };
  const missing = c.disks.filter((d) => !d.changeId).map((d) => d.file);
  if (c.disks.length === 0 || missing.length > 0)
    return { ready: false, text: `no: no changeId for ${missing.join(', ') || 'any disk'}` };
  return { ready: true, text: `yes: changeId recorded for ${c.disks.length} disk(s)` };
}

export const manifestItemSchema = z.object({
  id: z.string().min(1),
  kind: z.enum(['vm', 'template', 'vapp']),
  /** What was asked for (name or inventory path) and what it resolved to. */
  source: z.string().min(1),
  name: z.string().min(1),
  /** The OVF descriptor's file name inside the package: `<name>.ovf`. */
  descriptor: z.string().min(1),
  files: z.array(fileRecordSchema).min(1),
  capture: captureSchema.optional(),
});
export type ManifestItem = z.infer<typeof manifestItemSchema>;

export const transferManifestSchema = z.object({
  format: z.literal(manifestFormat),
  /** The transfer this package is for: a node refuses it under any other (TRANSFER_MISMATCH). */
  transfer: z.string().min(1),
  /** The customer site that exported it (SITE_MISMATCH against the transfer's site). */
  site: z.string().min(1),
  createdAt: z.iso.datetime(),
  /** The age recipient every file is encrypted to (the ODT node's; RECIPIENT_MISMATCH otherwise). */
  recipient: z.string().startsWith('age1'),
  /** The signer: its certificate must be the enrolled agent's one the node holds (UNTRUSTED_SIGNER). */
  agent: z.object({ commonName: z.string(), certificateSha256: z.string().regex(/^[0-9A-F]{64}$/) }),
  /** Bytes per segment of the encrypted files' digests: a power of two from 64 KiB to 1 GiB. */
  segmentSize: z
    .number()
    .int()
    .min(1 << 16)
    .max(1 << 30)
    .refine((n) => (n & (n - 1)) === 0, 'must be a power of two'),
  items: z.array(manifestItemSchema).min(1),
});
export type TransferManifest = z.infer<typeof transferManifestSchema>;

/** The exact bytes that are signed and written: stable JSON with a trailing newline. */
export const manifestBytes = (m: TransferManifest): Buffer => Buffer.from(`${JSON.stringify(m, null, 2)}\n`);

/** A detached signature file: the algorithm and the base64 signature, one per line. */
export function signManifest(bytes: Buffer, keyPem: string): string {
  return `RSASSA-PSS-SHA256\n${signDetached(keyPem, bytes).toString('base64')}\n`;
}

export function checkManifestSignature(bytes: Buffer, signatureText: string, certPem: string): boolean {
  const [algorithm, b64] = signatureText.trim().split('\n');
  if (algorithm !== 'RSASSA-PSS-SHA256' || !b64) return false;
  return verifyDetached(certPem, bytes, Buffer.from(b64, 'base64'));
}

/** The OVF manifest (`.mf`) text: one `SHA256(<file>)= <hex>` line per file, as ovftool writes. */
export const ovfManifestText = (files: readonly { name: string; sha256: string }[]): string =>
  files.map((f) => `SHA256(${f.name})= ${f.sha256}\n`).join('');

/** Parses `.mf` lines; any algorithm other than SHA256 is reported, not silently accepted. */
export function parseOvfManifest(text: string): Map<string, { algorithm: string; digest: string }> {
  const out = new Map<string, { algorithm: string; digest: string }>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^(SHA1|SHA256|SHA512)\((.+)\)\s*=\s*([0-9a-fA-F]+)$/.exec(line.trim());
    if (m) out.set(m[2]!, { algorithm: m[1]!, digest: m[3]!.toLowerCase() });
  }
  return out;
}
