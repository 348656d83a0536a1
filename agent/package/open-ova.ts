/**
 * One item of a transfer on the NAS, verified and decrypted, as a standard OVA: for a provider that
 * wants the VM on another platform, or a customer checking a package (`odt open`, issue #19).
 *
 * What makes it an OVA (DMTF DSP0243, the OVF specification, "Distribution as a single file"):
 * - a tar archive of the package's files, flat (no folders), named `.ova`;
 * - the OVF descriptor is the first entry; the manifest (`.mf`) follows it at once (a certificate
 *   would come next; a Sneakernet package has none: its signature is over transfer.json); then
 *   the other files in the order the descriptor's References section lists them, so that a reader
 *   can stream the archive (it knows each disk from the descriptor before the disk's bytes come);
 * - the tar format is USTAR. A file of 8 GiB or more does not fit USTAR's 11 octal size digits:
 *   tar-stream then writes the size in the base-256 form that GNU tar, bsdtar and ovftool read.
 *
 * Nothing unverified looks whole: the archive is written to a temporary name beside `out` and
 * linked to `out` only once every file checked out (link, not rename: an `out` made meanwhile is
 * never replaced). Memory stays flat whatever the disk size: each disk goes through in 1 MiB runs,
 * decrypted by positional reads (AgeFileReader, every chunk authenticated), hashed on the way and
 * held to the archive's pace (backpressure); its SHA-256 must be the one the signed manifest
 * gives, or the archive is thrown away.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { link, lstat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pack as tarPack } from 'tar-stream';
import { AgentError } from '../errors.ts';
import type { FileProgress } from '../file-progress.ts';
import { checkDescriptor } from '../import/descriptor-check.ts';
import { TransferNotTrustedError } from '../import/import-transfer.ts';
import { AgeFileReader } from './age/file-reader.ts';
import type { ManifestFile, ManifestItem } from './transfer-manifest.ts';
import { type VerifyProgress, verifyTransfer } from './verify.ts';

/** The output exists already, or the item is not in the transfer: said before anything is read. */
export class OpenOvaError extends AgentError<'OVA_OUTPUT_EXISTS' | 'ITEM_NOT_FOUND' | 'CONTENT_MISMATCH'> {
  constructor(
    code: 'OVA_OUTPUT_EXISTS' | 'ITEM_NOT_FOUND' | 'CONTENT_MISMATCH',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.name = 'OpenOvaError';
  }
}

export interface OpenOvaOptions {
  /** The transfer folder on the NAS: `<nas>/<transfer id>`. */
  readonly root: string;
  readonly transferId: string;
  /** The item: its id in the manifest (`item-1`) or its name. */
  readonly item: string;
  readonly identities: readonly string[];
  /** The enrolled export agent's certificate: the signer must be this agent (as `odt verify`). */
  readonly agentCertPem: string;
  readonly site?: string;
  /** The OVA to write; refused when it exists. */
  readonly out: string;
  readonly onVerifyProgress?: (p: VerifyProgress) => void;
  /** Each file as it goes into the archive; `plan` first with the item's total. */
  readonly onProgress?: (p: FileProgress) => void;
  readonly onPlan?: (totalBytes: number) => void;
}

export interface OpenOvaResult {
  readonly item: ManifestItem;
  /** The archive's entries, in order. */
  readonly entries: readonly { readonly name: string; readonly size: number }[];
  readonly bytes: number;
}

/**
 * Verifies the transfer's signature and binding, the item's descriptor and `.mf` (decrypted and
 * hashed), then streams the item into `out` as an OVA, checking each disk's plaintext SHA-256 as it
 * goes. Throws TransferNotTrustedError (nothing written) or the failure of a disk (nothing left).
 */
export async function openOva(options: OpenOvaOptions): Promise<OpenOvaResult> {
  if (await exists(options.out)) {
    throw new OpenOvaError(
      'OVA_OUTPUT_EXISTS',
      `${options.out} exists; odt open never overwrites a file. Remove it or give another --out.`,
    );
  }
  // Signature, binding, and the small files decrypted and hashed; the disks' own check is the
  // stream below (each chunk authenticated, the plaintext SHA-256 against the signed one).
  const report = await verifyTransfer({
    root: options.root,
    identities: options.identities,
    agentCertPem: options.agentCertPem,
    expected: { transfer: options.transferId, ...(options.site ? { site: options.site } : {}) },
    decrypt: 'small',
    deferDisks: true,
    ...(options.onVerifyProgress ? { onProgress: options.onVerifyProgress } : {}),
  });
  if (!report.ok || !report.manifest) throw new TransferNotTrustedError(report);
  const item = report.manifest.items.find((i) => i.id === options.item || i.name === options.item);
  if (!item) {
    const known = report.manifest.items.map((i) => `${i.id} (${i.name})`).join(', ');
    throw new OpenOvaError(
      'ITEM_NOT_FOUND',
      `No item ${options.item} in transfer ${options.transferId}; it holds ${known}. Give one of them to --item.`,
    );
  }
  const descriptor = item.files.find((f) => f.role === 'descriptor');
  const mf = item.files.find((f) => f.role === 'manifest');
  const descriptorText = descriptor && report.opened?.get(descriptor.path);
  const mfText = mf && report.opened?.get(mf.path);
  if (!descriptor || !descriptorText || !mf || !mfText) {
    throw new TransferNotTrustedError({
      ...report,
      ok: false,
      problems: [
        {
          file: `${item.id}/`,
          code: 'MISSING',
          message: `${item.name} has no ${descriptor ? 'OVF manifest (.mf)' : 'OVF descriptor'} in the package.`,
        },
      ],
    });
  }
  const unsafe = checkDescriptor(descriptorText.toString('utf8'), item, descriptor.path);
  if (unsafe.length > 0)
    throw new TransferNotTrustedError({ ...report, ok: false, problems: unsafe as never });

  const rest = inReferenceOrder(
    item.files.filter((f) => f !== descriptor && f !== mf),
    descriptorText.toString('utf8'),
  );
  const entries = [
    { name: descriptor.name, size: descriptor.size },
    { name: mf.name, size: mf.size },
    ...rest.map((f) => ({ name: f.name, size: f.size })),
  ];
  const bytes = entries.reduce((n, e) => n + e.size, 0);
  options.onPlan?.(bytes);

  const temp = join(
    dirname(options.out),
    `.${basename(options.out)}.${randomBytes(6).toString('hex')}.partial`,
  );
  const tar = tarPack();
  // 'wx': the temporary name is ours alone.
  const written = pipeline(tar, createWriteStream(temp, { flags: 'wx' }));
  // A file that fails mid-entry fails the archive before the error reaches the catch below (the
  // reader's close is awaited in between): it is taken there, not left as an unhandled rejection.
  written.catch(() => {});
  try {
    const mtime = new Date(report.manifest.createdAt);
    for (const [f, plain] of [
      [descriptor, descriptorText],
      [mf, mfText],
    ] as const) {
      await addSmall(tar, f.name, plain, mtime);
      options.onProgress?.({ item: item.id, file: f.name, bytes: f.size, total: f.size, done: true });
    }
    for (const f of rest) await addDecrypted(tar, options, item, f, mtime);
    tar.finalize();
    await written;
    // Whole and checked: only now does it get the name asked for (never over a file made meanwhile).
    await link(temp, options.out).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'EEXIST')
        throw new OpenOvaError(
          'OVA_OUTPUT_EXISTS',
          `${options.out} appeared while the OVA was written; it was left as it is. Remove it or give another --out.`,
        );
      throw error;
    });
  } catch (error) {
    tar.destroy(error as Error);
    await written.catch(() => {});
    throw error;
  } finally {
    await unlink(temp).catch(() => {});
  }
  return { item, entries, bytes };
}

/** The files in the order the descriptor's References name them; any it does not name, after. */
function inReferenceOrder(files: readonly ManifestFile[], descriptor: string): ManifestFile[] {
  const order = [...descriptor.matchAll(/\bovf:href="([^"]*)"/g)].map((m) => m[1]!);
  const rank = (f: ManifestFile) => {
    const i = order.indexOf(f.name);
    return i < 0 ? order.length : i;
  };
  return [...files].sort((a, b) => rank(a) - rank(b));
}

type TarPack = ReturnType<typeof tarPack>;

function addSmall(tar: TarPack, name: string, body: Buffer, mtime: Date): Promise<void> {
  return new Promise((resolve, reject) => {
    tar.entry({ name, size: body.length, mode: 0o644, mtime }, body, (error) =>
      error ? reject(error) : resolve(),
    );
  });
}

/**
 * One file decrypted into its archive entry at the archive's pace; its size and plaintext SHA-256
 * must be the signed manifest's (CONTENT_MISMATCH otherwise: a file re-encrypted to the node by
 * someone else decrypts, but not to the bytes that were signed).
 */
async function addDecrypted(
  tar: TarPack,
  options: OpenOvaOptions,
  item: ManifestItem,
  f: ManifestFile,
  mtime: Date,
): Promise<void> {
  const reader = await AgeFileReader.open(join(options.root, f.path), {
    identities: options.identities,
    hashPlaintext: true,
    dropBehind: true,
  });
  let settle!: (error?: Error | null) => void;
  // The entry's callback: called once its bytes are all in the archive, or with why not.
  const written = new Promise<void>((resolve, reject) => {
    settle = (error) => (error ? reject(error) : resolve());
  });
  written.catch(() => {});
  const entry = tar.entry({ name: f.name, size: f.size, mode: 0o644, mtime }, (error) => settle(error));
  // Its failure is the one thrown below (and the archive's, which openOva destroys).
  entry.on('error', () => {});
  try {
    let bytes = 0;
    for (;;) {
      const run = await reader.next();
      if (!run) break;
      bytes += run.length;
      if (bytes > f.size) throw mismatch(f, `more than its ${f.size} bytes`);
      // The archive holds what it is given until the file is written: it gets a copy, and the
      // reader's buffer goes back at once (one it keeps track of until released).
      const chunk = Buffer.from(run);
      reader.release(run);
      if (!entry.write(chunk)) await new Promise<void>((resolve) => entry.once('drain', () => resolve()));
      options.onProgress?.({ item: item.id, file: f.name, bytes, total: f.size });
    }
    const digest = reader.plaintextDigest();
    if (bytes !== f.size) throw mismatch(f, `${bytes} bytes, not ${f.size}`);
    if (digest !== f.sha256) throw mismatch(f, `SHA-256 ${digest}, not the signed ${f.sha256}`);
    entry.end();
    await written;
    options.onProgress?.({ item: item.id, file: f.name, bytes, total: f.size, done: true });
  } catch (error) {
    entry.destroy(error as Error);
    // A chunk that does not authenticate (AgeError) or bytes that are not the signed ones: named by
    // the file, as not trusted.
    throw error instanceof OpenOvaError
      ? error
      : new OpenOvaError(
          'CONTENT_MISMATCH',
          `${f.path} did not decrypt as the export agent signed it (${(error as Error).message}). No OVA was written.`,
          { cause: error },
        );
  } finally {
    await reader.close();
  }
}

const mismatch = (f: ManifestFile, what: string) =>
  new OpenOvaError(
    'CONTENT_MISMATCH',
    `${f.path} decrypts to ${what}: it is not the file the export agent signed. No OVA was written.`,
  );

const exists = (path: string) =>
  lstat(path).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false;
      throw error;
    },
  );
