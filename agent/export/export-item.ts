import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { AgentError } from '../errors.ts';
import type { FileProgress } from '../file-progress.ts';
import { forEachLimit } from '../for-each-limit.ts';
import { startKeepAlive } from '../keep-alive.ts';
import { writeEncryptedFile } from '../package/encrypted-file.ts';
import { ItemJournal } from '../package/journal.ts';
import {
  type Capture,
  captureSchema,
  type ManifestFile,
  type ManifestItem,
  ovfManifestText,
} from '../package/transfer-manifest.ts';
import type { VimClient } from '../vsphere/client.ts';
import type { InventoryItem } from '../vsphere/inventory.ts';
import { type DeviceUrl, LeaseError, NfcLease } from '../vsphere/lease.ts';
import {
  type CapturedDisk,
  coldDisks,
  endLiveCapture,
  type LiveCapture,
  livePrivileges,
  missingPrivileges,
  startLiveCapture,
  sweepLive,
} from '../vsphere/live-capture.ts';
import { lengthCheck, nfcGet } from '../vsphere/nfc.ts';
import type { Moref } from '../vsphere/wire/serialize.ts';
import { VimFaultError } from '../vsphere/wire/soap-connection.ts';

type ExportErrorCode = 'POWERED_ON' | 'EXPORT_FAILED' | 'DESCRIPTOR_FAILED' | 'LIVE_PRIVILEGES';

export class ExportError extends AgentError<ExportErrorCode> {
  constructor(code: ExportErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ExportError';
  }
}

export type ExportProgress = FileProgress;

export interface ExportItemOptions {
  readonly client: VimClient;
  readonly item: InventoryItem;
  readonly itemId: string;
  /** The transfer folder on the NAS, `<nas>/<transfer>`. */
  readonly root: string;
  /**
   * Refuse a VM that is not powered off, as before issue #21, instead of exporting it live from a
   * snapshot (`--cold-only`).
   */
  readonly coldOnly?: boolean;
  /**
   * Switch Changed Block Tracking on when it is off, so the package records each disk's changeId
   * for a later delta sync (`--enable-cbt`). It changes the customer's VM: only when asked.
   */
  readonly enableChangeTracking?: boolean;
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
  const running = item.kind !== 'vapp' && item.powerState !== 'poweredOff';
  if (running && (options.coldOnly || item.kind === 'template')) {
    throw new ExportError(
      'POWERED_ON',
      `${item.path} is ${item.powerState} and --cold-only refuses a running VM; shut down the guest (or power the VM off) and run the export again, or drop --cold-only to export it live from a snapshot.`,
    );
  }
  const dir = join(root, itemId);
  await mkdir(dir, { recursive: true });
  let journal = await ItemJournal.open(root, itemId);
  const savedCapture = await readJson(join(dir, captureFile), captureSchema);
  // Its .mf is the last file written: with it in the journal, an earlier run finished the item.
  const finished = journal.files.some((f) => f.role === 'manifest')
    ? manifestItem(options, journal.files, savedCapture)
    : undefined;
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

  const livePath = join(dir, liveFile);
  const earlier = await readJson(livePath, liveCaptureSchema);
  if (!running) {
    if (earlier) {
      // An earlier run read this VM live and was killed; it is powered off now. Its snapshot and
      // clone go, and so do the files read from that snapshot: the VM ran on after it.
      await sweepLive(client, item.ref, { transferId: basename(root), itemId });
      await rm(join(dir, '.journal.json'), { force: true });
      await rm(livePath, { force: true });
      journal = await ItemJournal.open(root, itemId);
    }
    return exportFrom(
      options,
      item,
      journal,
      coldCapture(item, await coldDisks(client, item.ref).catch(() => undefined)),
    );
  }
  // A running VM: from a snapshot, through a linked clone (agent/vsphere/live-capture.ts).
  const wanted = livePrivileges(options.enableChangeTracking ? { enableChangeTracking: true } : {});
  const missing = await missingPrivileges(client, item.ref, wanted);
  if (missing && missing.length > 0) {
    throw new ExportError(
      'LIVE_PRIVILEGES',
      `${item.path} runs, and a live export needs privileges this vCenter user lacks on it: ${missing.join(', ')}. ` +
        'Grant them to the user (vCenter: Administration > Roles), or power the VM off and export it cold.',
    );
  }
  const transferId = basename(root);
  const { capture, reused } = await startLiveCapture(client, item, {
    transferId,
    itemId,
    ...(options.enableChangeTracking ? { enableChangeTracking: true } : {}),
    ...(earlier ? { earlier: earlier as LiveCapture } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  try {
    if (!reused && journal.files.length > 0) {
      // Files kept from an earlier run were read from another point in time: a package mixing
      // them with this snapshot's would be no state the VM ever had. The item starts over.
      await rm(join(dir, '.journal.json'), { force: true });
      journal = await ItemJournal.open(root, itemId);
    }
    await writeJsonAtomic(livePath, capture);
    const source: InventoryItem = { ...item, ref: capture.clone, powerState: 'poweredOff' };
    return await exportFrom(options, source, journal, liveManifestCapture(capture));
  } finally {
    // Success, failure or Ctrl-C: the clone and the snapshot go (a kill -9 leaves them to the rerun).
    await endLiveCapture(client, capture);
  }
}

/** The capture of a VM that is not running (cold), with its disks' changeIds as they are. */
function coldCapture(
  item: InventoryItem,
  state: { changeTracking: 'on' | 'enabled' | 'off'; disks: readonly CapturedDisk[] } | undefined,
): (names: readonly string[]) => Capture | undefined {
  if (item.kind === 'vapp' || !state) return () => undefined;
  return (names) => ({
    mode: 'cold',
    changeTracking: state.changeTracking,
    disks: manifestDisks(state.disks, names),
  });
}

/** Each disk's file in the package (device order), its key in the source VM, and its changeId. */
const manifestDisks = (disks: readonly CapturedDisk[], names: readonly string[]): Capture['disks'] =>
  disks.map((d, i) => ({
    file: names[i] ?? d.label,
    deviceKey: d.deviceKey,
    ...(d.changeId ? { changeId: d.changeId } : {}),
  }));

function liveManifestCapture(c: LiveCapture): (names: readonly string[]) => Capture {
  return (names) => ({
    mode: 'live',
    snapshotAt: c.takenAt,
    consistency: c.quiesced ? 'quiesced' : 'crash-consistent',
    changeTracking: c.changeTracking,
    disks: manifestDisks(c.disks, names),
  });
}

/** The item's files from `source` (the VM itself, or the clone of a running one). */
/** The item as the signed manifest lists it, with the files the journal holds. */
function manifestItem(
  options: ExportItemOptions,
  files: ManifestItem['files'],
  capture: Capture | undefined,
): ManifestItem {
  const { item, itemId } = options;
  return {
    id: itemId,
    kind: item.kind,
    source: item.path,
    name: item.name,
    descriptor: `${safeName(item.name)}.ovf`,
    files,
    ...(capture ? { capture } : {}),
  };
}

async function exportFrom(
  options: ExportItemOptions,
  source: InventoryItem,
  journal: ItemJournal,
  captureOf: (names: readonly string[]) => Capture | undefined,
): Promise<ManifestItem> {
  const { client, itemId, root } = options;
  const item = options.item;
  const base = safeName(item.name);
  const descriptorName = `${base}.ovf`;
  const mfName = `${base}.mf`;
  let leaseRef: Moref;
  try {
    const res = await client.invoke(source.kind === 'vapp' ? 'ExportVApp' : 'ExportVm', {
      _this: source.ref,
    });
    leaseRef = res.child('returnval')!.moref;
  } catch (error) {
    if (error instanceof VimFaultError && error.faultType === 'InvalidPowerState') {
      throw new ExportError(
        'POWERED_ON',
        source.kind === 'vapp'
          ? `${item.path} has VMs that run, and a vApp is exported only with all of them powered off (its VMs' snapshots would not be taken at one moment, docs/decisions.md "A running vApp is refused"); power the vApp off and run the export again, or export its VMs one by one, each live.`
          : `${item.path} is powered on; power it off and run the export again.`,
        { cause: error },
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
    const capture = captureOf(names);
    if (capture) await writeJsonAtomic(join(root, itemId, captureFile), capture);
    const descriptor = await createDescriptor(client, { ...item, ref: source.ref }, diskRecords, disks);
    const descriptorRecord = await writeSmallFile(root, itemId, descriptorName, descriptor, options, signal);
    await journal.record({ ...descriptorRecord, role: 'descriptor' });
    const mf = ovfManifestText([descriptorRecord, ...diskRecords]);
    const mfRecord = await writeSmallFile(root, itemId, mfName, mf, options, signal);
    await keepAlive.stop();
    keepAlive = undefined;
    await lease.progress(100);
    await lease.complete();
    await journal.record({ ...mfRecord, role: 'manifest' });
    return manifestItem(options, journal.files, capture);
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

/** The capture of the item as recorded in its folder once its disks are written. */
const captureFile = '.capture.json';
/** A running VM's snapshot and clone, recorded before its disks move (a rerun after kill -9 reuses them). */
const liveFile = '.live.json';

const moref = z.object({ type: z.string(), value: z.string() });
const liveCaptureSchema = z.object({
  vm: moref,
  snapshot: moref,
  clone: moref,
  takenAt: z.string(),
  quiesced: z.boolean(),
  changeTracking: z.enum(['on', 'enabled', 'off']),
  disks: z.array(z.object({ deviceKey: z.number(), label: z.string(), changeId: z.string().optional() })),
});

/** A small JSON file of ours, or undefined when it is missing or not what the schema says. */
async function readJson<T>(path: string, schema: z.ZodType<T>): Promise<T | undefined> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFile(`${path}.partial`, `${JSON.stringify(value, null, 2)}\n`);
  await rename(`${path}.partial`, path);
}
