import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { issuesText } from '../../core/validate.ts';
import { forEachLimit } from '../for-each-limit.ts';
import { certificateSha256 } from '../identity/agent-identity.ts';
import { createDecryptStream } from './age/encrypt.ts';
import { recipientFromIdentity } from './age/keys.ts';
import { hashSegments, type SegmentDigest, segmentCount, segmentLength, segmentsOf } from './file-digest.ts';
import { HashTap } from './hash-tap.ts';
import { ageHead } from './head-check.ts';
import {
  checkManifestSignature,
  type ManifestFile,
  manifestFile,
  manifestFormat,
  parseOvfManifest,
  signatureFile,
  type TransferManifest,
  transferManifestSchema,
} from './transfer-manifest.ts';

export interface VerifyProblem {
  /** The file concerned, relative to the transfer folder. */
  readonly file: string;
  readonly code:
    | 'MISSING'
    | 'UNREADABLE'
    | 'SIZE_MISMATCH'
    | 'DIGEST_MISMATCH'
    | 'BAD_MANIFEST'
    | 'BAD_SIGNATURE'
    | 'SIGNER_NOT_PINNED'
    | 'UNTRUSTED_SIGNER'
    | 'TRANSFER_MISMATCH'
    | 'SITE_MISMATCH'
    | 'RECIPIENT_MISMATCH'
    | 'DECRYPT_FAILED'
    | 'OVF_MANIFEST_MISMATCH';
  readonly message: string;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly manifest?: TransferManifest;
  /**
   * Files checked, with the outcome of each; `deferred`: a disk whose digests are left to the
   * import (VerifyOptions.deferDisks), checked here for its size and digest count only.
   */
  readonly files: readonly { file: string; ok: boolean; decrypted: boolean; deferred?: boolean }[];
  readonly problems: readonly VerifyProblem[];
  /**
   * Of each file checked by its ciphertext digest only (not decrypted), the age header and payload
   * nonce as they were hashed (`ageHead`): a later read that starts with the same bytes and
   * decrypts is the same file (see ageHead). Keyed by the file's path in the manifest.
   */
  readonly heads?: ReadonlyMap<string, Buffer>;
  /**
   * With identities: the plaintext of each descriptor and `.mf` file, decrypted and checked
   * against the manifest's SHA-256 here (small files), so that nobody decrypts them again.
   * Keyed by the file's path in the manifest.
   */
  readonly opened?: ReadonlyMap<string, Buffer>;
}

export interface VerifyOptions {
  readonly root: string;
  /** age identities (AGE-SECRET-KEY-1…): with them, plaintext hashes and the OVF `.mf` are checked too. */
  readonly identities?: readonly string[];
  /**
   * The exporting agent's certificate (PEM) as the node holds it (enrolled, never one found on the
   * NAS): the signer must be this agent. Without it the transfer is refused (SIGNER_NOT_PINNED).
   */
  readonly agentCertPem: string;
  /**
   * What the signed manifest must be bound to: the transfer (default: the folder's name, which is
   * the transfer id asked for) and the customer site when known. The recipient is bound to the
   * identities when they are given (one of them must be the one it was encrypted to).
   */
  readonly expected?: { readonly transfer?: string; readonly site?: string };
  /**
   * With identities: decrypt every file (default), or only descriptors and `.mf` files, leaving
   * the disks to their ciphertext digest (the importer then reads each disk again only if it
   * starts with the header hashed here, `heads`, and aborts when a chunk fails to authenticate).
   */
  readonly decrypt?: 'all' | 'small';
  /**
   * Leave the disks' ciphertext digests to the one-pass import (issue #20), which checks each
   * segment just before it is sent (SegmentGate): here a disk's size and number of digests only.
   * Everything else is checked as without it. Default false.
   */
  readonly deferDisks?: boolean;
  /** Segments of files hashed at the same time (default: one more than the cores, two to three). */
  readonly lanes?: number;
  /**
   * Leave the files checked by digest in the page cache (true), or drop each MiB from it once
   * hashed (false). Default: kept when they add up to at most a quarter of this machine's memory,
   * so that an import that follows reads them from memory; a larger transfer could not stay
   * cached until its upload anyway, and would only push everything else out (docs/decisions.md, "Drop-behind on the NAS").
   */
  readonly keepInCache?: boolean;
  /** Hears how far the check of each file got: bytes read and hashed, then once when it is done. */
  readonly onProgress?: (p: VerifyProgress) => void;
}

/** How far the check of one file got. */
export interface VerifyProgress {
  /** The item the file belongs to (its id in the manifest). */
  readonly item: string;
  /** The file, relative to the transfer folder. */
  readonly file: string;
  /** Bytes of the file as it lies on the NAS read and hashed so far. */
  readonly bytes: number;
  readonly total: number;
  readonly done?: boolean;
  /** With done: whether the file checked out. */
  readonly ok?: boolean;
}

/**
 * What keeps the transfer folder `root` (`<NAS>/<transfer id>`) from being checked at all, said
 * for a person: no such NAS folder (not mounted?), no such transfer on it (naming those it holds),
 * or no transfer.json in it. Undefined when its transfer.json is there.
 */
export async function transferFolderProblem(root: string): Promise<string | undefined> {
  const nas = dirname(root);
  const id = basename(root);
  const folder = await stat(root).catch((error: NodeJS.ErrnoException) => error);
  if (folder instanceof Error) {
    if (folder.code !== 'ENOENT') return `${root} cannot be read (${folder.code}); check its permissions.`;
    const entries = await readdir(nas, { withFileTypes: true }).catch(() => undefined);
    if (entries === undefined)
      return `${nas} does not exist: mount the NAS there, or name the folder it is mounted at.`;
    const transfers: string[] = [];
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      if (
        await stat(join(nas, e.name, manifestFile)).then(
          () => true,
          () => false,
        )
      )
        transfers.push(e.name);
    }
    transfers.sort();
    const held = transfers.length
      ? `it holds ${transfers.length > 10 ? `${transfers.slice(0, 10).join(', ')} and ${transfers.length - 10} more` : transfers.join(', ')}`
      : 'it holds no transfer: is the NAS mounted there?';
    return `No transfer ${id} in ${nas} (${held}); check the NAS folder and the transfer id.`;
  }
  if (!folder.isDirectory())
    return `${root} is not a folder: name the NAS folder and the transfer id separately.`;
  if (
    await stat(join(root, manifestFile)).then(
      () => false,
      () => true,
    )
  ) {
    return `${manifestFile} is missing in ${root}: the export did not finish; run it again.`;
  }
  return undefined;
}

/**
 * Checks a transfer on the NAS: the signature over transfer.json against the pinned agent
 * certificate, what the manifest is bound to (transfer, site, recipient), then every file's size
 * and digest; with the node's identity also the decrypted bytes and each package's `.mf`.
 * Nothing is trusted before the signature and the binding are: either stops the check of the files.
 */
export async function verifyTransfer(options: VerifyOptions): Promise<VerifyReport> {
  const problems: VerifyProblem[] = [];
  const files: { file: string; ok: boolean; decrypted: boolean; deferred?: boolean }[] = [];
  const fail = (): VerifyReport => ({ ok: false, files, problems });

  let bytes: Buffer;
  try {
    bytes = await readFile(join(options.root, manifestFile));
  } catch {
    problems.push({
      file: manifestFile,
      code: 'MISSING',
      message:
        (await transferFolderProblem(options.root)) ??
        `${manifestFile} in ${options.root} cannot be read; check its permissions.`,
    });
    return fail();
  }
  let manifest: TransferManifest;
  try {
    const json = JSON.parse(bytes.toString('utf8')) as { format?: unknown };
    if (
      typeof json?.format === 'string' &&
      json.format !== manifestFormat &&
      json.format.startsWith('sneakernet-transfer/')
    ) {
      problems.push({
        file: manifestFile,
        code: 'BAD_MANIFEST',
        message: `${manifestFile} is format ${json.format}; this odt reads ${manifestFormat} (it names the transfer, site, agent and recipient it is bound to, and a SHA-256 per segment of each encrypted file, docs/package-format.md). Export the transfer again with this version of odt, or check and import it with the version that exported it.`,
      });
      return fail();
    }
    manifest = transferManifestSchema.parse(json);
  } catch (error) {
    problems.push({
      file: manifestFile,
      code: 'BAD_MANIFEST',
      message: `${manifestFile} is not a valid transfer manifest: ${issuesText(error).slice(0, 500)}`,
    });
    return fail();
  }

  // The signer is the agent the node enrolled, never a certificate found on the NAS: whoever can
  // write the NAS can put one there, re-encrypt to the node's public recipient, and sign.
  if (!options.agentCertPem?.trim()) {
    problems.push({
      file: manifestFile,
      code: 'SIGNER_NOT_PINNED',
      message: `No enrolled agent certificate to check ${manifestFile}'s signature against, and none found on the NAS is trusted. Give the certificate of the export agent enrolled for this transfer (odt: --agent-cert <file>).`,
    });
    return fail();
  }
  const signature = await readFile(join(options.root, signatureFile), 'utf8').catch(() => undefined);
  if (!signature) {
    problems.push({
      file: signatureFile,
      code: 'MISSING',
      message: `${signatureFile} is missing; the transfer cannot be authenticated.`,
    });
    return fail();
  }
  const signerSha = certificateSha256(options.agentCertPem);
  if (signerSha !== manifest.agent.certificateSha256) {
    problems.push({
      file: manifestFile,
      code: 'UNTRUSTED_SIGNER',
      message: `${manifestFile} names agent certificate ${manifest.agent.certificateSha256.slice(0, 16)}… (${manifest.agent.commonName || 'no name'}), but the enrolled export agent's is ${signerSha.slice(0, 16)}…: another key signed this transfer. Do not import it; re-ship the NAS the enrolled agent exported.`,
    });
    return fail();
  }
  if (!checkManifestSignature(bytes, signature, options.agentCertPem)) {
    problems.push({
      file: manifestFile,
      code: 'BAD_SIGNATURE',
      message: `The signature over ${manifestFile} does not verify: the manifest was edited or signed by another key. Do not import; re-export or re-ship.`,
    });
    return fail();
  }
  // Signed by the enrolled agent: now what it names is what it was bound to, checked before any file.
  const unbound = bindingProblems(manifest, {
    transfer: options.expected?.transfer ?? basename(options.root),
    ...(options.expected?.site !== undefined ? { site: options.expected.site } : {}),
    ...(options.identities ? { recipients: options.identities.map(recipientOf) } : {}),
  });
  if (unbound.length > 0) {
    problems.push(...unbound);
    return fail();
  }

  const all = manifest.items.flatMap((item) => item.files);
  const itemOf = manifest.items.flatMap((item) => item.files.map(() => item.id));
  /** Reports how far file `i` got. */
  const tell = (i: number, bytes: number, ok?: boolean) =>
    options.onProgress?.({
      item: itemOf[i]!,
      file: all[i]!.path,
      bytes,
      total: all[i]!.encryptedSize,
      ...(ok === undefined ? {} : { done: true, ok }),
    });
  // Every file's size is known from here: a listener can show the whole check from the start.
  for (const i of all.keys()) tell(i, 0);
  const checked = new Array<{ decrypting: boolean; deferred?: boolean; problems: VerifyProblem[] }>(
    all.length,
  );
  const heads = new Map<string, Buffer>();
  const opened = new Map<string, Buffer>();
  const size = manifest.segmentSize;
  const decrypting = (f: ManifestFile) =>
    options.identities !== undefined && (options.decrypt !== 'small' || f.role !== 'disk');
  const settle = (i: number, found: VerifyProblem[]) => {
    const f = all[i]!;
    checked[i] = { decrypting: decrypting(f), problems: found };
    tell(i, f.encryptedSize, found.length === 0);
  };
  // What tells without reading: a missing file, another size, a digest list of the wrong length.
  const readable: number[] = [];
  await Promise.all(
    all.map(async (f, i) => {
      const found = await precheck(options.root, f, size);
      if (found) settle(i, [found]);
      else readable.push(i);
    }),
  );
  readable.sort((a, b) => a - b);
  const deferring = (f: ManifestFile) => options.deferDisks === true && f.role === 'disk';
  // Deferred disks: their size and digest count checked out; the import checks their segments.
  for (const i of readable.filter((i) => deferring(all[i]!)))
    checked[i] = { decrypting: false, deferred: true, problems: [] };
  const byDigest = readable.filter((i) => !decrypting(all[i]!) && !deferring(all[i]!));
  const byDecryption = readable.filter((i) => decrypting(all[i]!));
  const digestBytes = byDigest.reduce((sum, i) => sum + all[i]!.encryptedSize, 0);
  const keepInCache = options.keepInCache ?? keepsInCache(digestBytes);
  await Promise.all([
    checkDigests(
      options.root,
      byDigest.map((i) => all[i]!),
      size,
      {
        lanes: options.lanes ?? defaultLanes(),
        dropBehind: !keepInCache,
        heads,
        onBytes: (k, bytes) => tell(byDigest[k]!, bytes),
        onFile: (k, found) => settle(byDigest[k]!, found),
      },
    ),
    // Decrypting runs on this thread too: two files at a time overlap one's reads with the other's work.
    forEachLimit(byDecryption, 2, async (i) => {
      const onBytes = options.onProgress ? (bytes: number) => tell(i, bytes) : undefined;
      settle(i, await checkDecrypting(options.root, all[i]!, size, options.identities!, opened, onBytes));
    }),
  ]);
  let at = 0;
  for (const item of manifest.items) {
    for (const f of item.files) {
      const { decrypting, deferred, problems: result } = checked[at++]!;
      files.push({
        file: f.path,
        ok: result.length === 0,
        decrypted: decrypting,
        ...(deferred ? { deferred } : {}),
      });
      problems.push(...result);
    }
    if (options.identities) problems.push(...checkOvfManifest(item.files, opened));
  }
  return { ok: problems.length === 0, manifest, files, problems, heads, opened };
}

/**
 * What the signed manifest is bound to and should not be: another transfer (an older package of
 * the same agent, or another transfer's NAS), another customer site, another node's recipient.
 */
function bindingProblems(
  manifest: TransferManifest,
  expected: { transfer: string; site?: string; recipients?: readonly (string | undefined)[] },
): VerifyProblem[] {
  const problems: VerifyProblem[] = [];
  if (manifest.transfer !== expected.transfer) {
    problems.push({
      file: manifestFile,
      code: 'TRANSFER_MISMATCH',
      message: `${manifestFile} is signed for transfer ${manifest.transfer}, not ${expected.transfer}: this is another transfer's package (an older export, or another NAS). Do not import it as ${expected.transfer}; mount the NAS of ${expected.transfer}.`,
    });
  }
  if (expected.site !== undefined && manifest.site !== expected.site) {
    problems.push({
      file: manifestFile,
      code: 'SITE_MISMATCH',
      message: `${manifestFile} is signed as exported at site '${manifest.site}', but transfer ${expected.transfer} is from site '${expected.site}': this NAS comes from another site. Do not import it.`,
    });
  }
  if (expected.recipients && !expected.recipients.includes(manifest.recipient)) {
    const mine = expected.recipients.find((r) => r !== undefined);
    problems.push({
      file: manifestFile,
      code: 'RECIPIENT_MISMATCH',
      message: `${manifestFile} is encrypted to ${manifest.recipient.slice(0, 16)}…, not to this node's identity (${mine ? `${mine.slice(0, 16)}…` : 'none readable'}): it was exported for another ODT node. Import it with that node's identity, or export it again to this node's recipient.`,
    });
  }
  return problems;
}

/** The recipient of an identity, or undefined for one that is not X25519 (it then matches none). */
function recipientOf(identity: string): string | undefined {
  try {
    return recipientFromIdentity(identity);
  } catch {
    return undefined;
  }
}

/**
 * Whether the check leaves `bytes` it reads in the page cache by default (VerifyOptions.keepInCache):
 * when they are at most a quarter of the machine's `memory`.
 */
export const keepsInCache = (bytes: number, memory = totalmem()): boolean => bytes <= memory / 4;

/** Bytes kept of each file checked by digest, to find its age header in: 64 KiB (hundreds of stanzas). */
const headBytes = 64 * 1024;

/**
 * Segments hashed at once: one more than the cores, two to three (each lane is one reader of the
 * disk and, with the native addon, one thread of libuv's pool of four, so one thread stays free
 * for file opens and reads meanwhile). 4 GiB read cold on 2 cores: 1.9-2.0 s with three lanes,
 * 2.0-2.3 s with two.
 */
const defaultLanes = () => Math.max(2, Math.min(3, availableParallelism() + 1));

/** The file's problem that shows without reading it, if any. */
async function precheck(root: string, f: ManifestFile, size: number): Promise<VerifyProblem | undefined> {
  const st = await stat(join(root, f.path)).catch(() => undefined);
  if (!st?.isFile()) return { file: f.path, code: 'MISSING', message: `${f.path} is missing.` };
  if (st.size !== f.encryptedSize) {
    return {
      file: f.path,
      code: 'SIZE_MISMATCH',
      message: `${f.path} has ${st.size} bytes, the manifest says ${f.encryptedSize}.`,
    };
  }
  const count = segmentCount(f.encryptedSize, size);
  if (f.encryptedSegmentSha256.length !== count) {
    return {
      file: f.path,
      code: 'BAD_MANIFEST',
      message: `${manifestFile} lists ${f.encryptedSegmentSha256.length} segment digest(s) for ${f.path}, which has ${count} segment(s) of ${size} bytes.`,
    };
  }
  return undefined;
}

/**
 * Hashes the segments of `files` (see hashSegments: lanes far apart on the disk) and reports each
 * file once its last segment is done; keeps each file's age header from its first segment.
 */
async function checkDigests(
  root: string,
  files: readonly ManifestFile[],
  size: number,
  options: {
    readonly lanes: number;
    readonly dropBehind: boolean;
    readonly heads: Map<string, Buffer>;
    readonly onBytes: (file: number, bytes: number) => void;
    readonly onFile: (file: number, problems: VerifyProblem[]) => void;
  },
): Promise<void> {
  const jobs = files.flatMap((f, file) =>
    segmentsOf(join(root, f.path), f.encryptedSize, size, headBytes).map((job, index) => ({
      file,
      index,
      job,
    })),
  );
  const left = files.map((f) => f.encryptedSegmentSha256.length);
  const bytes = files.map(() => 0);
  const jobBytes = jobs.map(() => 0);
  const results: SegmentDigest[][] = files.map(() => []);
  await hashSegments(
    jobs.map((j) => j.job),
    {
      lanes: options.lanes,
      dropBehind: options.dropBehind,
      onBytes: (k, n) => {
        const { file } = jobs[k]!;
        bytes[file]! += n - jobBytes[k]!;
        jobBytes[k] = n;
        options.onBytes(file, bytes[file]!);
      },
      onDone: (k, result) => {
        const { file, index } = jobs[k]!;
        results[file]![index] = result;
        if (--left[file]! > 0) return;
        const f = files[file]!;
        const found = compareSegments(f, results[file]!, size);
        const first = results[file]![0];
        if (found.length === 0 && first && 'head' in first) {
          const header = ageHead(first.head);
          if (header) options.heads.set(f.path, header);
        }
        options.onFile(file, found);
      },
    },
  );
}

/**
 * A file that could not be read: missing, or there but unreadable. The latter says nothing of the
 * file's integrity, and is not to be taken for tampering: it names what to fix on this side.
 */
function readProblem(path: string, error: Error): VerifyProblem {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') {
    return {
      file: path,
      code: 'UNREADABLE',
      message: `${path} cannot be read by this user (${code}): run odt as a user who can read the NAS, or fix the files' permissions; this says nothing of the file itself.`,
    };
  }
  if (code === 'EIO') {
    return {
      file: path,
      code: 'UNREADABLE',
      message: `${path} could not be read: an I/O error on the NAS (${error.message}); check its disk, then copy the file again from its source.`,
    };
  }
  return { file: path, code: 'MISSING', message: `${path} could not be read: ${error.message}` };
}

/** The file's digest problem, if a segment was not read whole or hashes to another SHA-256. */
function compareSegments(
  f: ManifestFile,
  got: readonly ({ readonly sha256: string; readonly bytes: number } | { readonly error: Error })[],
  size: number,
): VerifyProblem[] {
  const failed = got.find((g): g is { error: Error } => 'error' in g);
  if (failed) return [readProblem(f.path, failed.error)];
  const bad: number[] = [];
  f.encryptedSegmentSha256.forEach((want, i) => {
    const g = got[i];
    const length = segmentLength(i, f.encryptedSize, size);
    if (!g || !('sha256' in g) || g.bytes !== length || g.sha256 !== want) bad.push(i);
  });
  return bad.length === 0 ? [] : [digestProblem(f, bad, size)];
}

async function checkDecrypting(
  root: string,
  f: ManifestFile,
  size: number,
  identities: readonly string[],
  opened: Map<string, Buffer>,
  onBytes?: (position: number) => void,
): Promise<VerifyProblem[]> {
  const path = join(root, f.path);
  const cipher: HashTap = new HashTap(onBytes ? () => onBytes(cipher.bytes) : undefined, size);
  const plain = createDecryptStream(identities, { hashOutput: true });
  // Descriptors and .mf files are small: their plaintext is kept for the .mf check and the import.
  const kept: Buffer[] | undefined = f.role === 'disk' ? undefined : [];
  try {
    await pipeline(
      createReadStream(path, { highWaterMark: 1 << 20 }),
      cipher,
      plain,
      new Writable({
        highWaterMark: 1 << 20,
        write(c: Buffer, _e, done) {
          kept?.push(c);
          done();
        },
      }),
    );
  } catch (error) {
    // A file that changed size since it was checked: say so, not that it does not decrypt.
    const now = await stat(path).catch(() => undefined);
    if (now?.size !== f.encryptedSize) {
      return [
        {
          file: f.path,
          code: 'SIZE_MISMATCH',
          message: `${f.path} changed while it was being checked: it now has ${now?.size ?? 'no'} bytes, the manifest says ${f.encryptedSize}.`,
        },
      ];
    }
    // Decryption stopped the read early: hash the whole file to tell damage from a wrong key.
    const digests = await hashSegments(segmentsOf(path, f.encryptedSize, size));
    const damaged = compareSegments(f, digests, size);
    if (damaged.length > 0) return damaged;
    return [
      {
        file: f.path,
        code: 'DECRYPT_FAILED',
        message: `${f.path} does not decrypt: ${(error as Error).message}`,
      },
    ];
  }
  const damaged = compareSegments(
    f,
    cipher.digests().map((sha256, i) => ({ sha256, bytes: segmentLength(i, cipher.bytes, size) })),
    size,
  );
  if (damaged.length > 0) return damaged;
  if (plain.plaintextBytes !== f.size || plain.plaintextDigest() !== f.sha256) {
    return [
      {
        file: f.path,
        code: 'DIGEST_MISMATCH',
        message: `${f.path} decrypts to other bytes than the manifest's SHA-256.`,
      },
    ];
  }
  if (kept) opened.set(f.path, Buffer.concat(kept));
  return [];
}

/** A file some of whose segments (`bad`, indexes) differ from the signed manifest. */
function digestProblem(f: ManifestFile, bad: readonly number[], size: number): VerifyProblem {
  const n = f.encryptedSegmentSha256.length;
  const range = (i: number) => `bytes ${i * size}-${i * size + segmentLength(i, f.encryptedSize, size) - 1}`;
  const where =
    n === 1
      ? 'the file'
      : bad.length === 1
        ? `${range(bad[0]!)} (segment ${bad[0]! + 1} of ${n})`
        : `${bad.length} of its ${n} segments (the first: ${range(bad[0]!)})`;
  return {
    file: f.path,
    code: 'DIGEST_MISMATCH',
    message: `${f.path}: the SHA-256 of ${where} is not the signed manifest's: the file was damaged or changed after the export. Do not import it; re-ship or re-export it.`,
  };
}

/** The package's own `.mf` must list the descriptor and every disk with the same SHA-256. */
function checkOvfManifest(
  items: readonly ManifestFile[],
  opened: ReadonlyMap<string, Buffer>,
): VerifyProblem[] {
  const mf = items.find((f) => f.role === 'manifest');
  if (!mf)
    return [
      { file: items[0]?.path ?? '?', code: 'OVF_MANIFEST_MISMATCH', message: 'The package has no .mf file.' },
    ];
  const text = opened.get(mf.path);
  if (text === undefined) return []; // did not decrypt or check out: already reported by checkFile
  const entries = parseOvfManifest(text.toString('utf8'));
  const problems: VerifyProblem[] = [];
  for (const f of items) {
    if (f.role === 'manifest') continue;
    const e = entries.get(f.name);
    if (e?.algorithm !== 'SHA256' || e.digest !== f.sha256) {
      problems.push({
        file: mf.path,
        code: 'OVF_MANIFEST_MISMATCH',
        message: `${mf.name} ${e ? `has ${e.algorithm} ${e.digest.slice(0, 16)}…` : 'does not list'} ${f.name}, expected SHA256 ${f.sha256.slice(0, 16)}….`,
      });
    }
  }
  return problems;
}
