import { mkdir } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { AgentError } from '../errors.ts';
import type { FileProgress } from '../file-progress.ts';
import { forEachLimit } from '../for-each-limit.ts';
import { startKeepAlive } from '../keep-alive.ts';
import { writeEncryptedFile } from '../package/encrypted-file.ts';
import { ItemJournal } from '../package/journal.ts';
import { type ManifestFile, type ManifestItem, ovfManifestText } from '../package/transfer-manifest.ts';
import type { VimClient } from '../vsphere/client.ts';
import type { InventoryItem } from '../vsphere/inventory.ts';
import { type DeviceUrl, LeaseError, NfcLease } from '../vsphere/lease.ts';
import { lengthCheck, nfcGet } from '../vsphere/nfc.ts';
import type { Moref } from '../vsphere/wire/serialize.ts';
import { VimFaultError } from '../vsphere/wire/soap-connection.ts';

export class ExportError extends AgentError<'POWERED_ON' | 'EXPORT_FAILED' | 'DESCRIPTOR_FAILED'> {
  constructor(
    code: 'POWERED_ON' | 'EXPORT_FAILED' | 'DESCRIPTOR_FAILED',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.name = 'ExportError';
  }
}

export type ExportProgress = FileProgress;

export interface ExportItemOptions {
  readonly client: VimClient;
  readonly item: InventoryItem;
  readonly itemId: string;
  /** The transfer folder on the NAS. */
  readonly root: string;
  readonly recipients: readonly string[];
  /** Disks of this item downloaded at the same time. Default 2. */
  readonly parallel?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: ExportProgress) => void;
  /** Keep-alive interval; default a third of the lease timeout, at most 10 s. */
  readonly keepAliveMs?: number;
}

/** File names inside packages are plain: letters, digits, dot, dash, underscore. */
export const safeName = (name: string): string =>
  name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '') || 'item';

/**
 * Exports one VM, template or vApp into an encrypted OVF package under `<root>/<itemId>/`:
 * the disks streamed from the NFC lease, the descriptor from CreateDescriptor, and the `.mf`.
 * Files already complete from an earlier run are kept; the lease is kept alive throughout and
 * aborted on any failure.
 */
export async function exportItem(options: ExportItemOptions): Promise<ManifestItem> {
  const { client, item, itemId, root } = options;
  if (item.kind !== 'vapp' && item.powerState !== 'poweredOff') {
    throw new ExportError(
      'POWERED_ON',
      `${item.path} is ${item.powerState}; shut down the guest (or power the VM off) and run the export again — a running VM cannot be exported consistently.`,
    );
  }
  const base = safeName(item.name);
  const descriptorName = `${base}.ovf`;
  const mfName = `${base}.mf`;
  await mkdir(join(root, itemId), { recursive: true });
  const journal = await ItemJournal.open(root, itemId);
  const done = (): ManifestItem | undefined => {
    const files = journal.files;
    if (!files.some((f) => f.role === 'manifest')) return undefined;
    return {
      id: itemId,
      kind: item.kind,
      source: item.path,
      name: item.name,
      descriptor: descriptorName,
      files,
    };
  };
  const finished = done();
  if (finished) {
    for (const f of finished.files)
      options.onProgress?.({
        item: itemId,
        file: f.name,
        bytes: f.size,
        total: f.size,
        done: true,
        skipped: true,
      });
    return finished;
  }

  let leaseRef: Moref;
  try {
    const res = await client.invoke(item.kind === 'vapp' ? 'ExportVApp' : 'ExportVm', { _this: item.ref });
    leaseRef = res.child('returnval')!.moref;
  } catch (error) {
    if (error instanceof VimFaultError && error.faultType === 'InvalidPowerState') {
      throw new ExportError(
        'POWERED_ON',
        `${item.path} is powered on; power it off and run the export again.`,
        {
          cause: error,
        },
      );
    }
    throw error;
  }
  const lease = new NfcLease(client, leaseRef);
  const controller = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, controller.signal]) : controller.signal;
  let keepAlive: { stop(): Promise<void> } | undefined;
  try {
    const info = await lease.waitReady({ signal });
    const disks = info.deviceUrls.filter((d) => d.disk);
    const totalBytes = Math.max(1, info.totalDiskCapacityKB * 1024);
    let moved = 0;
    keepAlive = startKeepAlive({
      intervalMs: options.keepAliveMs ?? Math.min(10_000, (info.leaseTimeoutSeconds * 1000) / 3),
      controller,
      immediate: true,
      beat: () => lease.progress((100 * moved) / totalBytes),
    });

    const names = diskFileNames(base, disks);
    const files = disks.map((d, i) => ({ device: d, name: names[i]! }));
    await forEachLimit(files, options.parallel ?? 2, async ({ device, name }) => {
      const kept = journal.get(name);
      if (kept) {
        moved += kept.size;
        options.onProgress?.({
          item: itemId,
          file: name,
          bytes: kept.size,
          total: kept.size,
          done: true,
          skipped: true,
        });
        return;
      }
      const { body, length } = await nfcGet({
        url: device.url,
        ...client.deviceHosts.route(device),
        signal,
      });
      let bytes = 0;
      const record = await writeEncryptedFile({
        source: body,
        checkSize: lengthCheck(length, device.url.pathname),
        // Without a Content-Length (an ESXi host streams a disk whose size it does not know ahead),
        // a connection that ends early looks like the end of the body: the lease's manifest says
        // what the host sent, and the file takes its name only when that is what arrived.
        ...(length === undefined ? { confirm: (plain) => confirmDownload(lease, device, name, plain) } : {}),
        root,
        path: `${itemId}/${name}.age`,
        name,
        recipients: options.recipients,
        signal,
        worker: true,
        onBytes: (n) => {
          bytes += n;
          moved += n;
          options.onProgress?.({
            item: itemId,
            file: name,
            bytes,
            ...(length === undefined ? {} : { total: length }),
          });
        },
      });
      await journal.record({ ...record, role: 'disk' });
      options.onProgress?.({
        item: itemId,
        file: name,
        bytes: record.size,
        total: record.size,
        done: true,
      });
    });

    const diskRecords = names.map((n) => journal.get(n)!);
    const descriptor = await createDescriptor(client, item, diskRecords, disks);
    const descriptorRecord = await writeSmallFile(root, itemId, descriptorName, descriptor, options, signal);
    await journal.record({ ...descriptorRecord, role: 'descriptor' });
    const mf = ovfManifestText([descriptorRecord, ...diskRecords]);
    const mfRecord = await writeSmallFile(root, itemId, mfName, mf, options, signal);
    await keepAlive.stop();
    keepAlive = undefined;
    await lease.progress(100);
    await lease.complete();
    await journal.record({ ...mfRecord, role: 'manifest' });
    return done()!;
  } catch (error) {
    await keepAlive?.stop();
    const reason = await explain(error, lease, controller.signal, item.path);
    await lease.abort();
    throw reason;
  }
}

/**
 * Checks a download that came without a length against the lease's manifest entry for its device:
 * the size, and the SHA-256 where the server gives one (vSphere 6.7 and later; the SHA-1 every
 * server gives is not computed here, as it would cost the export a second hash of every byte).
 */
async function confirmDownload(
  lease: NfcLease,
  device: DeviceUrl,
  name: string,
  plain: { readonly size: number; readonly sha256: string },
): Promise<void> {
  const entry = (await lease.manifest()).get(device.key);
  const where = `${name} (${device.url.host})`;
  if (!entry) {
    throw new ExportError(
      'EXPORT_FAILED',
      `${where} came without a length and the lease's manifest has no entry for it (device ${device.key}), ` +
        'so its end cannot be told from a cut connection; nothing of it was kept. Run the export again.',
    );
  }
  if (entry.size !== plain.size) {
    throw new ExportError(
      'EXPORT_FAILED',
      `${where} ended after ${plain.size} bytes, but the host sent ${entry.size} (lease manifest): the ` +
        'connection was cut; nothing of it was kept. Run the export again, it resumes.',
    );
  }
  if (entry.checksumType === 'sha256' && entry.checksum !== plain.sha256) {
    throw new ExportError(
      'EXPORT_FAILED',
      `${where}: the bytes received hash to ${plain.sha256}, but the host sent ${entry.checksum} ` +
        '(SHA-256, lease manifest); nothing of it was kept. Run the export again.',
    );
  }
}

/** `<name>-disk-<n>.vmdk` in device order, as ovftool names the disks of an export. */
function diskFileNames(base: string, disks: readonly DeviceUrl[]): string[] {
  return disks.map((d, i) => {
    const ext = posix.extname(d.url.pathname) || '.vmdk';
    return `${base}-disk-${i}${ext}`;
  });
}

async function writeSmallFile(
  root: string,
  itemId: string,
  name: string,
  text: string,
  options: ExportItemOptions,
  signal: AbortSignal,
): Promise<ManifestFile & { role: 'file' }> {
  const record = await writeEncryptedFile({
    source: Readable.from([Buffer.from(text)]),
    root,
    path: `${itemId}/${name}.age`,
    name,
    recipients: options.recipients,
    signal,
  });
  options.onProgress?.({ item: itemId, file: name, bytes: record.size, total: record.size, done: true });
  return { ...record, role: 'file' };
}

async function createDescriptor(
  client: VimClient,
  item: InventoryItem,
  disks: readonly ManifestFile[],
  devices: readonly DeviceUrl[],
): Promise<string> {
  const res = await client.invoke('CreateDescriptor', {
    _this: client.serviceContent.ovfManager,
    obj: item.ref,
    cdp: {
      ovfFiles: disks.map((d, i) => ({ deviceId: devices[i]!.key, path: d.name, size: d.size })),
      name: item.name,
      includeImageFiles: false,
    },
  });
  const rv = res.child('returnval');
  const errors = rv?.all('error') ?? [];
  if (errors.length > 0) {
    const why = errors
      .map((e) => e.str('localizedMessage') ?? e.child('fault')?.typeName ?? 'error')
      .join('; ');
    throw new ExportError('DESCRIPTOR_FAILED', `CreateDescriptor for ${item.path} failed: ${why}`);
  }
  const descriptor = rv?.str('ovfDescriptor');
  if (!descriptor)
    throw new ExportError('DESCRIPTOR_FAILED', `CreateDescriptor for ${item.path} returned no descriptor`);
  return descriptor;
}

/** Turns a broken stream into the reason a person can act on: usually the lease's own error. */
async function explain(
  error: unknown,
  lease: NfcLease,
  keepAliveSignal: AbortSignal,
  path: string,
): Promise<unknown> {
  if (keepAliveSignal.aborted && keepAliveSignal.reason instanceof Error) return keepAliveSignal.reason;
  if (error instanceof ExportError || error instanceof LeaseError) return error;
  const state = await lease.state().catch(() => undefined);
  if (state?.error) {
    return new ExportError('EXPORT_FAILED', `Export of ${path} stopped: ${state.error.message}`, {
      cause: error,
    });
  }
  return error;
}
