import { mkdir, readdir, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ValidationError } from '../../core/errors.ts';
import type { AgentIdentity } from '../identity/agent-identity.ts';
import { checkExportNas, checkWritable, describeNas, type NasInfo } from '../nas/nas-check.ts';
import { NasError } from '../nas/nas-error.ts';
import { checkSpace, type SpaceReport } from '../nas/space-check.ts';
import { segmentSize } from '../package/age/segment-hash.mjs';
import {
  certificateFile,
  type ManifestItem,
  manifestBytes,
  manifestFile,
  manifestFormat,
  signatureFile,
  signManifest,
  type TransferManifest,
} from '../package/transfer-manifest.ts';
import type { VimClient } from '../vsphere/client.ts';
import { findItem, readInventory } from '../vsphere/inventory.ts';
import { type ExportProgress, exportItem } from './export-item.ts';
import { type PlannedItem, planExport } from './export-plan.ts';

export interface ExportTransferOptions {
  readonly client: VimClient;
  readonly nas: string;
  readonly transferId: string;
  /** Names or inventory paths, in the order given; item ids follow it (`item-1`, …). */
  readonly items: readonly string[];
  readonly recipient: string;
  /** The customer site exporting it (the site its agent is enrolled for): signed into transfer.json. */
  readonly site: string;
  readonly agent: AgentIdentity;
  /** Files in flight at once across the transfer. Default 2 (two cores: crypto bound past that). */
  readonly parallel?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: ExportProgress) => void;
  readonly onItem?: (itemId: string, outcome: { ok: true } | { ok: false; error: Error }) => void;
  /** Refuse VMs that are not powered off instead of exporting them live from a snapshot (issue #21). */
  readonly coldOnly?: boolean;
  /** Switch Changed Block Tracking on where it is off (changes the customer's VM: only when asked). */
  readonly enableChangeTracking?: boolean;
  readonly now?: () => Date;
  /**
   * Accept a `nas` folder without the marker of `odt nas init` (labs, tests). Default false: the
   * NAS must carry the marker, so that a NAS that failed to mount is never filled in its place.
   */
  readonly nasPlainFolder?: boolean;
  /** Things to know that do not stop the export (tight space, a file near FAT32's limit). */
  readonly onWarning?: (message: string) => void;
  /**
   * The disks the export will write (`item-1/web-01-disk-0.vmdk`, as onProgress's `item/file`) with
   * their estimated sizes (datastore extents), once checked and before the first byte: the total
   * of the overall progress line.
   */
  readonly onPlan?: (files: readonly { readonly key: string; readonly bytes: number }[]) => void;
}

/** Everything an export checks before its first byte, and what it would do. */
export interface ExportPlan {
  readonly nas: NasInfo;
  /** `<nas>/<transfer>`. */
  readonly root: string;
  /** The folder is there already (a rerun): its complete files are kept. */
  readonly resuming: boolean;
  readonly items: readonly PlannedItem[];
  readonly space: SpaceReport;
}

export interface ExportTransferResult {
  readonly root: string;
  readonly nas: NasInfo;
  readonly items: readonly ManifestItem[];
  readonly failures: readonly { itemId: string; source: string; error: Error }[];
}

/** Bytes of the complete (`.age`) files under `dir`: what a rerun keeps. */
async function completeBytes(dir: string): Promise<number> {
  let sum = 0;
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, e.name);
    if (e.isDirectory()) sum += await completeBytes(path);
    else if (e.name.endsWith('.age')) sum += (await stat(path)).size;
  }
  return sum;
}

/**
 * Every check of an export that touches nothing, in the order a person would fix them: the NAS
 * (there, marked, writable), the items (found in the inventory, powered off), and the NAS's room
 * and file system for them. Reads the vCenter; writes nowhere. Throws the first refusal.
 */
export async function planTransferExport(
  options: Pick<
    ExportTransferOptions,
    'client' | 'nas' | 'transferId' | 'items' | 'nasPlainFolder' | 'coldOnly'
  >,
): Promise<ExportPlan> {
  if (options.items.length === 0) {
    throw new ValidationError('The export', [
      { path: 'items', message: 'names no VM, template or vApp: give at least one (--item, repeatable)' },
    ]);
  }
  const nas = await checkExportNas(options.nas, { plainFolder: options.nasPlainFolder ?? false });
  const root = join(nas.path, options.transferId);
  const existing = await stat(root).catch(() => undefined);
  if (existing && !existing.isDirectory())
    throw new NasError('NAS_NOT_A_FOLDER', `${root} is a file, not a transfer folder: move it away.`);
  if (existing) await checkWritable(root, 'the transfer folder');
  const inventory = await readInventory(options.client);
  const resolved = options.items.map((query) => findItem(inventory, query));
  // A running VM is exported live from a snapshot unless --cold-only (issue #21).
  const items = await planExport(options.client, inventory, resolved, {
    poweredOnAllowed: !options.coldOnly,
  });
  const space = checkSpace(
    nas.fs,
    {
      // Items the export would refuse write nothing.
      files: items.filter((i) => !i.refusal).flatMap((i) => i.files),
      keptBytes: existing ? await completeBytes(root) : 0,
    },
    describeNas(nas),
  );
  return { nas, root, resuming: existing !== undefined, items, space };
}

/** Removes the folders under (and including) `dir` that hold no file: what a run that wrote nothing made. */
async function pruneEmpty(dir: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (e.isDirectory()) await pruneEmpty(join(dir, e.name));
  }
  await rmdir(dir).catch(() => {});
}

/**
 * Exports every item into `<nas>/<transfer>/`; when all succeeded, writes and signs transfer.json.
 * Checks first, before any byte (planTransferExport). Failed items are reported, never hidden; a
 * rerun keeps what is complete. A run that created the transfer folder and completed no file
 * removes it again, so a refused export leaves no empty transfer on the NAS.
 */
export async function exportTransfer(options: ExportTransferOptions): Promise<ExportTransferResult> {
  const plan = await planTransferExport(options);
  for (const w of plan.space.warnings) options.onWarning?.(w);
  options.onPlan?.(
    plan.items
      .filter((i) => !i.refusal)
      .flatMap((i) => i.files.map((f) => ({ key: f.path, bytes: f.estimatedBytes }))),
  );
  const { root } = plan;
  // Not recursive: the NAS is there (checked), so an error here is this folder's own (EROFS, EACCES).
  const created = await mkdir(root).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'EEXIST') return false;
      throw error;
    },
  );
  const parallel = Math.max(1, options.parallel ?? 2);
  const results: ManifestItem[] = [];
  const failures: { itemId: string; source: string; error: Error }[] = [];
  try {
    // Items run one after another, each with `parallel` disks in flight: bounded memory, and a
    // lease per item that is only open while its disks move.
    for (const { itemId, item } of plan.items) {
      try {
        results.push(
          await exportItem({
            client: options.client,
            item,
            itemId,
            root,
            recipients: [options.recipient],
            parallel,
            ...(options.coldOnly ? { coldOnly: true } : {}),
            ...(options.enableChangeTracking ? { enableChangeTracking: true } : {}),
            ...(options.signal ? { signal: options.signal } : {}),
            ...(options.onProgress ? { onProgress: options.onProgress } : {}),
          }),
        );
        options.onItem?.(itemId, { ok: true });
      } catch (error) {
        failures.push({ itemId, source: item.path, error: error as Error });
        options.onItem?.(itemId, { ok: false, error: error as Error });
        if (options.signal?.aborted) break;
      }
    }
  } finally {
    if (created && results.length === 0) await pruneEmpty(root);
  }
  if (failures.length === 0) {
    const manifest: TransferManifest = {
      format: manifestFormat,
      transfer: options.transferId,
      site: options.site,
      createdAt: (options.now?.() ?? new Date()).toISOString(),
      recipient: options.recipient,
      agent: { commonName: options.agent.commonName, certificateSha256: options.agent.certSha256 },
      // Every file was encrypted with the default segment size (writeEncryptedFile).
      segmentSize,
      items: results,
    };
    const bytes = manifestBytes(manifest);
    await writeAtomic(join(root, certificateFile), options.agent.certPem);
    await writeAtomic(join(root, signatureFile), signManifest(bytes, options.agent.keyPem));
    await writeAtomic(join(root, manifestFile), bytes);
  }
  return { root, nas: plan.nas, items: results, failures };
}

async function writeAtomic(path: string, data: string | Buffer): Promise<void> {
  try {
    await writeFile(`${path}.partial`, data);
    await rename(`${path}.partial`, path);
  } catch (error) {
    // A full NAS (ENOSPC) leaves no half file behind either.
    await rm(`${path}.partial`, { force: true }).catch(() => {});
    throw error;
  }
}
