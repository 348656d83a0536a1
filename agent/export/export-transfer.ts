import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentIdentity } from '../identity/agent-identity.ts';
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
}

export interface ExportTransferResult {
  readonly root: string;
  readonly items: readonly ManifestItem[];
  readonly failures: readonly { itemId: string; source: string; error: Error }[];
}

/**
 * Exports every item into `<nas>/<transfer>/`; when all succeeded, writes and signs transfer.json.
 * Failed items are reported, never hidden; a rerun keeps what is complete.
 */
export async function exportTransfer(options: ExportTransferOptions): Promise<ExportTransferResult> {
  const root = join(options.nas, options.transferId);
  await mkdir(root, { recursive: true });
  const inventory = await readInventory(options.client);
  const resolved = options.items.map((query) => findItem(inventory, query));
  const parallel = Math.max(1, options.parallel ?? 2);
  const results: ManifestItem[] = [];
  const failures: { itemId: string; source: string; error: Error }[] = [];
  // Items run one after another, each with `parallel` disks in flight: bounded memory, and a
  // lease per item that is only open while its disks move.
  for (const [index, item] of resolved.entries()) {
    const itemId = `item-${index + 1}`;
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
  return { root, items: results, failures };
}

async function writeAtomic(path: string, data: string | Buffer): Promise<void> {
  await writeFile(`${path}.partial`, data);
  await rename(`${path}.partial`, path);
}
