import { join } from 'node:path';
import type { ItemTarget } from '../../core/index.ts';
import { AgentError } from '../errors.ts';
import type { ManifestItem, TransferManifest } from '../package/transfer-manifest.ts';
import { type VerifyProgress, type VerifyReport, verifyTransfer } from '../package/verify.ts';
import type { VcdClient } from '../vcd/client.ts';
import type { VimClient } from '../vsphere/client.ts';
import { type PlacementInput, resolvePlacement } from '../vsphere/placement.ts';
import { checkDescriptor } from './descriptor-check.ts';
import { type ImportProgress, importItem } from './import-item.ts';
import { ImportJournal, type ImportRecord } from './import-journal.ts';
import { type ItemNames, importNames } from './import-names.ts';
import { type OnboardResult, onboardItem } from './onboard.ts';

export class TransferNotTrustedError extends AgentError<'TRANSFER_NOT_TRUSTED'> {
  constructor(readonly report: VerifyReport) {
    const lines = report.problems.map((p) => `  ${p.file}: ${p.message} [${p.code}]`).join('\n');
    super('TRANSFER_NOT_TRUSTED', `The transfer on the NAS did not verify; nothing was imported.\n${lines}`);
    this.name = 'TransferNotTrustedError';
  }
}

export interface ItemImportResult {
  readonly item: ManifestItem;
  /** The names the item's VMs get in vCenter and in vCloud Director (also when it failed). */
  readonly names: ItemNames;
  readonly ok: boolean;
  readonly record?: ImportRecord;
  readonly skipped?: boolean;
  /** Set when vCloud Director took the item. */
  readonly onboarded?: OnboardResult;
  /** Which step failed: the vCenter import or the vCloud Director onboarding. */
  readonly failedAt?: 'import' | 'onboard';
  readonly error?: Error;
}

export interface ImportTransferOptions {
  readonly client: VimClient;
  readonly nas: string;
  readonly transferId: string;
  readonly identities: readonly string[];
  /** The enrolled export agent's certificate (never one found on the NAS): the signer must be this agent. */
  readonly agentCertPem: string;
  /** The customer site the transfer is from, when known: the signed manifest must name it. */
  readonly site?: string;
  readonly placement?: PlacementInput;
  /** The ODT node's state folder (import journal). */
  readonly stateDir: string;
  /** Files uploaded at the same time per item. Default 2. */
  readonly parallel?: number;
  /**
   * Stops the import: the lease wait, the uploads and the vCloud Director calls and task waits
   * end at once and clean up. The verification of the NAS is not cut by it (it creates nothing;
   * see `onVerified`).
   */
  readonly signal?: AbortSignal;
  /**
   * Check every byte of the NAS before the first call that creates anything, then read each disk
   * again to upload it (`odt import --verify-first`). Default: one pass (issue #20), where
   * everything but the disks' contents is checked first and each 64 MiB segment of a disk is
   * checked just before it is sent.
   */
  readonly verifyFirst?: boolean;
  /** With verifyFirst: VerifyOptions.keepInCache (default: by the transfer's size against memory). */
  readonly keepInCache?: boolean;
  /**
   * Called once the check before the import passed (with verifyFirst, the whole NAS), before the
   * first call that creates anything; with the signed manifest just verified (its files' sizes
   * are the overall progress line's total).
   */
  readonly onVerified?: (manifest: TransferManifest) => void;
  readonly onProgress?: (p: ImportProgress) => void;
  /** How far the check of each file got, before the first call that creates anything. */
  readonly onVerifyProgress?: (p: VerifyProgress) => void;
  /**
   * In one pass: how far the check of each disk's segments got, during its upload (a little ahead
   * of the upload's own progress; a disk whose segment fails is reported done and not ok).
   */
  readonly onSegmentProgress?: (p: VerifyProgress) => void;
  readonly onItem?: (r: ItemImportResult) => void;
  /**
   * With it, each imported item is onboarded into vCloud Director as its target says; a target
   * without a client (a node with no vCloud Director settings) fails the item (VCD_NOT_CONFIGURED).
   */
  readonly vcd?: {
    readonly client: VcdClient | undefined;
    readonly target: (item: ManifestItem) => ItemTarget;
  };
}

/**
 * Checks the transfer (signature, binding, sizes, the descriptors and `.mf` files decrypted and
 * hashed; with verifyFirst also every disk's ciphertext) and only then imports each item into
 * vCenter, in one pass checking each segment of a disk just before it is sent. A failed item never
 * stops or hides the others.
 */
export async function importTransfer(options: ImportTransferOptions): Promise<readonly ItemImportResult[]> {
  const root = join(options.nas, options.transferId);
  // Where the items go, and the journal, before the NAS is read: a wrong datastore or state folder
  // is said at once, not after hours of checking a large NAS. Reading the inventory sends nothing
  // of the package (nothing is created until the check before the import passed).
  const placement = await resolvePlacement(options.client, options.placement);
  const journal = await ImportJournal.open(options.stateDir, options.transferId);
  const report = await verifyTransfer({
    root,
    identities: options.identities,
    // The signed manifest covers every file's ciphertext digest, and age authenticates each chunk:
    // a disk is hashed once (here with verifyFirst, else segment by segment just before each is
    // sent) and decrypted once, on its way to vCenter, bound to the header that was hashed; a
    // mismatch aborts the lease and destroys the VM. See docs/decisions.md.
    decrypt: 'small',
    // In one pass the disks are checked segment by segment as they upload (SegmentGate).
    deferDisks: !options.verifyFirst,
    ...(options.keepInCache !== undefined ? { keepInCache: options.keepInCache } : {}),
    agentCertPem: options.agentCertPem,
    expected: { transfer: options.transferId, ...(options.site ? { site: options.site } : {}) },
    ...(options.onVerifyProgress ? { onProgress: options.onVerifyProgress } : {}),
  });
  if (!report.ok || !report.manifest) throw new TransferNotTrustedError(report);
  options.onVerified?.(report.manifest);
  // Every descriptor is checked before the first call to vCenter.
  const unsafe = [];
  const descriptors = new Map<string, string>();
  for (const item of report.manifest.items) {
    const d = item.files.find((f) => f.role === 'descriptor');
    if (!d) {
      unsafe.push({
        file: `${item.id}/`,
        code: 'DESCRIPTOR_REFERENCE' as const,
        message: `${item.name} has no OVF descriptor in the package.`,
      });
      continue;
    }
    // Decrypted and checked against the signed manifest by the verification just done.
    const text = report.opened?.get(d.path)?.toString('utf8');
    if (text === undefined) throw new TransferNotTrustedError({ ...report, ok: false });
    unsafe.push(...checkDescriptor(text, item, d.path));
    descriptors.set(item.id, text);
  }
  if (unsafe.length > 0)
    throw new TransferNotTrustedError({ ...report, ok: false, problems: unsafe as never });
  // Over the whole signed manifest, so that every run (and a retry of some items) names each the same.
  const names = importNames(
    options.transferId,
    report.manifest.items.map((item) => ({ item, descriptor: descriptors.get(item.id)! })),
  );
  const results: ItemImportResult[] = [];
  for (const item of report.manifest.items) {
    try {
      const r = await importItem({
        client: options.client,
        placement,
        root,
        transferId: options.transferId,
        item,
        identities: options.identities,
        journal,
        descriptor: descriptors.get(item.id)!,
        names: names.get(item.id)!,
        ...(report.heads ? { heads: report.heads } : {}),
        ...(options.verifyFirst
          ? {}
          : {
              segments: {
                size: report.manifest.segmentSize,
                ...(options.onSegmentProgress ? { onProgress: options.onSegmentProgress } : {}),
              },
            }),
        ...(options.parallel ? { parallel: options.parallel } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      });
      const { skipped, ...record } = r;
      if (options.vcd) {
        try {
          const onboarded = await onboardItem(
            options.vcd.client,
            item,
            record,
            options.vcd.target(item),
            journal,
            names.get(item.id),
            { signal: options.signal },
          );
          results.push({ item, names: names.get(item.id)!, ok: true, record, skipped, onboarded });
        } catch (error) {
          results.push({
            item,
            names: names.get(item.id)!,
            ok: false,
            record,
            skipped,
            failedAt: 'onboard',
            error: error as Error,
          });
          if (options.signal?.aborted) {
            options.onItem?.(results.at(-1)!);
            break;
          }
        }
      } else {
        results.push({ item, names: names.get(item.id)!, ok: true, record, skipped });
      }
    } catch (error) {
      results.push({
        item,
        names: names.get(item.id)!,
        ok: false,
        failedAt: 'import',
        error: error as Error,
      });
      if (options.signal?.aborted) break;
    }
    options.onItem?.(results.at(-1)!);
  }
  return results;
}
