import { join } from 'node:path';
import { AgentError } from '../errors.ts';
import type { FileProgress } from '../file-progress.ts';
import { forEachLimit } from '../for-each-limit.ts';
import { startKeepAlive } from '../keep-alive.ts';
import { AgeFileReader } from '../package/age/file-reader.ts';
import { type HashLanes, SegmentGate } from '../package/segment-gate.ts';
import type { ManifestFile, ManifestItem } from '../package/transfer-manifest.ts';
import type { VerifyProgress } from '../package/verify.ts';
import type { VimClient } from '../vsphere/client.ts';
import { NfcLease } from '../vsphere/lease.ts';
import { nfcPut } from '../vsphere/nfc.ts';
import type { Placement } from '../vsphere/placement.ts';
import type { Moref } from '../vsphere/wire/serialize.ts';
import type { XmlNode } from '../vsphere/wire/xml.ts';
import type { ImportJournal, ImportRecord } from './import-journal.ts';
import { type ImportMark, readMark, setMark } from './import-mark.ts';
import { type ItemNames, importNames } from './import-names.ts';
import { splitVApp } from './ovf-split.ts';

type ImportErrorCode =
  | 'IMPORT_SPEC_FAILED'
  | 'IMPORT_FAILED'
  | 'CONTENT_MISMATCH'
  | 'PACKAGE_INCOMPLETE'
  | 'NAME_TAKEN';

export class ImportError extends AgentError<ImportErrorCode> {
  constructor(code: ImportErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ImportError';
  }
}

export type ImportProgress = FileProgress;

export interface ImportItemOptions {
  readonly client: VimClient;
  readonly placement: Placement;
  /** The transfer folder on the NAS. */
  readonly root: string;
  readonly transferId: string;
  readonly item: ManifestItem;
  readonly identities: readonly string[];
  readonly journal: ImportJournal;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: ImportProgress) => void;
  readonly keepAliveMs?: number;
  /** Files uploaded at the same time. Default 2. */
  readonly parallel?: number;
  /** The item's OVF descriptor, decrypted, hash-checked and checked for safety by the caller. */
  readonly descriptor: string;
  /**
   * Age header and payload nonce of each file verified by its ciphertext digest (VerifyReport's
   * `heads`): such a file is read again only if it starts with them (AgeFileReader), and its plaintext
   * is not hashed again. A file without one has its plaintext SHA-256 checked while it uploads.
   */
  readonly heads?: ReadonlyMap<string, Buffer>;
  /**
   * The names its VMs get, worked out over the whole transfer (importNames). Default: as if the
   * item were the transfer's only one.
   */
  readonly names?: ItemNames;
  /**
   * One pass over the NAS (issue #20): a file not in `heads` (a disk the check before the import
   * left to it, VerifyOptions.deferDisks) is checked segment by segment against the signed
   * manifest just ahead of its upload (SegmentGate): no byte of a segment is sent before the
   * segment checked out, and one that does not stops the upload, aborts the lease and removes the
   * VM. `size` is the manifest's segmentSize.
   */
  readonly segments?: {
    readonly size: number;
    /** Shared by the uploads of the process (default: two lanes). */
    readonly lanes?: HashLanes;
    /** Hears how far the check of each such file got. */
    readonly onProgress?: (p: VerifyProgress) => void;
  };
}

/**
 * Imports one verified package into vCenter: CreateImportSpec with every network mapped to the
 * placement's port group, ImportVApp, each file decrypted and uploaded to its device URL with
 * its hash checked on the way, then HttpNfcLeaseComplete (and MarkAsTemplate for a template).
 * On any failure the lease is aborted and the half-imported VM destroyed, so a rerun starts clean.
 */
export async function importItem(options: ImportItemOptions): Promise<ImportRecord & { skipped: boolean }> {
  const { client, placement, item, journal } = options;
  const done = journal.get(item.id);
  if (done && (await exists(client, done.entity))) return { ...done, skipped: true };

  const descriptor = options.descriptor;
  const names = options.names ?? importNames(options.transferId, [{ item, descriptor }]).get(item.id)!;
  const vapp = splitVApp(descriptor);
  const units = vapp
    ? vapp.members.map((m, i) => ({
        name: names.vms[i]!.vcenter,
        descriptor: m.descriptor,
        vmName: m.name,
      }))
    : [{ name: names.vms[0]!.vcenter, descriptor, vmName: item.name }];
  const recordOf = (entities: readonly Moref[]): ImportRecord => ({
    itemId: item.id,
    name: names.vcenter,
    entity: entities[0]!,
    ...(vapp
      ? { members: units.map((u, i) => ({ name: u.name, vmName: u.vmName, entity: entities[i]! })) }
      : {}),
    importedAt: new Date().toISOString(),
  });

  // What is already there under these names: this item, whole (imported by a run whose journal
  // is elsewhere: kept, and recorded here), what a crashed import of it left (removed), or a VM
  // no import of this item made (kept, and the item refused).
  const found = await Promise.all(units.map((u) => findVmByName(client, placement.folder, u.name)));
  const marks = await Promise.all(found.map((vm) => (vm ? readMark(client, vm) : undefined)));
  const ofThisItem = (m: ImportMark) => m?.transferId === options.transferId && m.itemId === item.id;
  if (found.every((vm) => vm) && marks.every((m) => ofThisItem(m) && m?.state === 'imported')) {
    const record = recordOf(found as Moref[]);
    await journal.record(record);
    return { ...record, skipped: true };
  }
  const begun = journal.begunNames(item.id);
  const strangers = units.filter(
    (u, i) => found[i] && !ofThisItem(marks[i]) && !(marks[i] === undefined && begun.includes(u.name)),
  );
  if (strangers.length > 0) {
    const which = strangers.map((u) => `'${u.name}' (${found[units.indexOf(u)]!.value})`).join(', ');
    throw new ImportError(
      'NAME_TAKEN',
      `${item.name}: a VM named ${which} is already in the target folder, and no unfinished import of this ` +
        `item left it, so it is kept and the item is not imported. If an earlier import of this transfer made it, ` +
        `rerun with that import's --state-dir; otherwise rename or remove it in vCenter.`,
    );
  }
  // Leftovers of an import that crashed before it was recorded: removed, then a clean start.
  for (const vm of found) if (vm) await destroy(client, vm);
  await journal.begin(
    item.id,
    units.map((u) => u.name),
  );

  const members: Moref[] = [];
  try {
    for (const unit of units) members.push(await importDescriptor(options, unit.name, unit.descriptor));
    if (item.kind === 'template') await client.invoke('MarkAsTemplate', { _this: members[0]! });
    // Whole now: a rerun from anywhere keeps it.
    for (const vm of members) {
      await setMark(client, vm, { state: 'imported', transferId: options.transferId, itemId: item.id });
    }
  } catch (error) {
    // A vApp is imported whole or not at all: remove the members that made it.
    for (const vm of members) await destroy(client, vm).catch(() => undefined);
    throw error;
  }
  const record = recordOf(members);
  await journal.record(record);
  return { ...record, skipped: false };
}

/**
 * CreateImportSpec of `descriptor` (every network mapped to the placement's network, thin disks)
 * and ImportVApp into the placement: the import lease, not yet ready, and the files it expects.
 * `what` names the item in errors. The benchmark's `curl -T` reference opens its lease here too.
 */
export async function openImportLease(
  client: VimClient,
  placement: Placement,
  entityName: string,
  descriptor: string,
  what = entityName,
): Promise<{ lease: NfcLease; fileItems: { deviceId: string; path: string; size: number }[] }> {
  const networks = ovfNetworks(descriptor);
  const specRes = await client.invoke('CreateImportSpec', {
    _this: client.serviceContent.ovfManager,
    ovfDescriptor: descriptor,
    resourcePool: placement.pool,
    datastore: placement.datastore.ref,
    cisp: {
      locale: '',
      deploymentOption: '',
      entityName,
      networkMapping: networks.map((n) => ({ name: n, network: placement.network.ref })),
      diskProvisioning: 'thin',
    },
  });
  const result = specRes.child('returnval');
  const errors = result?.all('error') ?? [];
  if (!result?.child('importSpec') || errors.length > 0) {
    throw new ImportError(
      'IMPORT_SPEC_FAILED',
      `vCenter refused the descriptor of ${what}: ${errors.map(faultText).join('; ') || 'no import spec returned'}`,
    );
  }
  const fileItems = result.all('fileItem').map((f) => ({
    deviceId: f.str('deviceId') ?? '',
    path: f.str('path') ?? '',
    size: Number(f.str('size') ?? 0),
  }));

  const leaseRes = await client.invoke('ImportVApp', {
    _this: placement.pool,
    spec: result.child('importSpec')!,
    folder: placement.folder,
  });
  return { lease: new NfcLease(client, leaseRes.child('returnval')!.moref), fileItems };
}

/**
 * Imports one single-VM descriptor: CreateImportSpec, ImportVApp, uploads, complete. On failure
 * the lease is aborted and the VM destroyed. Returns the new VM.
 */
async function importDescriptor(
  options: ImportItemOptions,
  name: string,
  descriptor: string,
): Promise<Moref> {
  const { client, placement, item } = options;
  // The one-pass check of the disks this descriptor names starts before the lease is asked for:
  // the first segments are read and checked by the time the device URLs are there.
  const gates = new Map<string, SegmentGate>();
  const gateFor = (file: ManifestFile) => {
    if (!options.segments || options.heads?.has(file.path) || gates.has(file.path)) return;
    gates.set(file.path, segmentGate(options, file, options.segments).start());
  };
  for (const href of fileReferences(descriptor)) {
    const file = fileOfName(item, href);
    if (file?.role === 'disk') gateFor(file);
  }
  const closeGates = () => Promise.all([...gates.values()].map((g) => g.close()));
  // Not cut by the signal: ImportVApp creates the VM and the lease, and only a lease in hand can be
  // aborted and its VM destroyed. The wait for it to be ready is where an abort comes in.
  let opened: Awaited<ReturnType<typeof openImportLease>>;
  try {
    opened = await openImportLease(client, placement, name, descriptor, item.name);
  } catch (error) {
    await closeGates();
    throw error;
  }
  const { lease, fileItems } = opened;
  for (const fi of fileItems) {
    const file = fileOfName(item, fi.path);
    if (file) gateFor(file);
  }
  const controller = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, controller.signal]) : controller.signal;
  let entity: Moref | undefined;
  let keepAlive: { stop(): Promise<void> } | undefined;
  try {
    const info = await lease.waitReady({ signal });
    entity = info.entity;
    if (entity) {
      await setMark(client, entity, { state: 'importing', transferId: options.transferId, itemId: item.id });
    }
    const total = Math.max(
      1,
      fileItems.reduce((s, f) => s + (fileOfName(item, f.path)?.size ?? 0), 0),
    );
    let moved = 0;
    keepAlive = startKeepAlive({
      intervalMs: options.keepAliveMs ?? Math.min(5_000, (info.leaseTimeoutSeconds * 1000) / 3),
      controller,
      immediate: true,
      beat: () => lease.progress((100 * moved) / total),
    });
    const upload = async (fi: (typeof fileItems)[number]): Promise<void> => {
      const file = fileOfName(item, fi.path);
      if (!file) {
        throw new ImportError(
          'PACKAGE_INCOMPLETE',
          `The descriptor of ${item.name} names ${fi.path}, which the package does not contain.`,
        );
      }
      const device = info.deviceUrls.find((d) => d.importKey === fi.deviceId);
      if (!device) {
        throw new ImportError(
          'IMPORT_FAILED',
          `The import lease has no device URL for ${fi.path} (${fi.deviceId}).`,
        );
      }
      const changed = () =>
        new ImportError(
          'CONTENT_MISMATCH',
          `${file.path} changed on the NAS after verification; nothing of ${item.name} was kept.`,
        );
      // A file verified by its digest must start with the header that was hashed; then age's
      // authentication of every chunk proves the rest unchanged (see AgeFileReader), and the
      // plaintext is not hashed again. Otherwise its plaintext hash is checked. Read and opened
      // in place into a few reused buffers, dropped from the page cache behind the reads (read
      // for the last time: docs/decisions.md, "Drop-behind on the NAS").
      // In one pass, the gate reads and checks each segment just before the reader takes it from
      // the page cache, and binds the reader to the header it hashed (docs/decisions.md, "Import
      // in one pass").
      const gate = gates.get(file.path);
      const head = () => (gate ? gate.head : options.heads?.get(file.path));
      let plain: AgeFileReader | undefined;
      try {
        // Segment 0 checked out: its header is the one the reader must find.
        if (gate) await gate.until(Math.min(file.encryptedSize, 64 * 1024));
        const bound = head();
        plain = await AgeFileReader.open(join(options.root, file.path), {
          identities: options.identities,
          ...(bound ? { head: bound, mismatch: changed } : {}),
          ...(gate ? { gate } : {}),
          hashPlaintext: !bound,
          dropBehind: true,
        });
      } catch (error) {
        await gate?.close();
        throw error;
      }
      const reader = plain;
      const whole = () =>
        reader.plaintextBytes === file.size &&
        (head() !== undefined || reader.plaintextDigest() === file.sha256);
      try {
        await nfcPut({
          url: device.url,
          ...client.deviceHosts.route(device),
          signal,
          body: {
            next: async () => {
              // A segment of this file that did not check out stops the upload at once.
              if (gate?.failure) throw gate.failure;
              const chunk = await reader.next();
              // Checked before the last byte goes: a file that is not the one verified is cut
              // short, never accepted whole by vCenter.
              if (reader.plaintextBytes > file.size) throw changed();
              if (chunk === undefined && !whole()) throw changed();
              if (chunk) {
                moved += chunk.length;
                options.onProgress?.({
                  item: item.id,
                  file: file.name,
                  bytes: reader.plaintextBytes,
                  total: file.size,
                });
              }
              return chunk;
            },
            release: (chunk) => reader.release(chunk),
          },
          size: file.size,
          disk: file.role === 'disk',
        });
      } finally {
        // The gate first: a read of the reader may wait on it.
        await gate?.close();
        await reader.close();
      }
      if (!whole()) throw changed();
      options.onProgress?.({
        item: item.id,
        file: file.name,
        bytes: file.size,
        total: file.size,
        done: true,
      });
    };
    await forEachLimit(fileItems, options.parallel ?? 2, async (fi) => {
      if (signal.aborted) throw signal.reason;
      try {
        await upload(fi);
      } catch (error) {
        // One file failed: the others of this lease stop at once too (the lease is aborted next).
        if (!controller.signal.aborted) controller.abort(error);
        throw error;
      }
    });
    await closeGates();
    await keepAlive.stop();
    keepAlive = undefined;
    await lease.progress(100);
    await lease.complete();
    if (!entity) throw new ImportError('IMPORT_FAILED', `The import lease of ${name} names no VM.`);
    return entity;
  } catch (error) {
    await keepAlive?.stop();
    await closeGates();
    const reason =
      controller.signal.aborted && controller.signal.reason instanceof Error
        ? controller.signal.reason
        : error;
    await lease.abort();
    const half = entity ?? (await findVmByName(client, placement.folder, name).catch(() => undefined));
    if (half) await destroy(client, half).catch(() => undefined);
    throw reason;
  }
}

const fileOfName = (item: ManifestItem, name: string) => item.files.find((f) => f.name === name);

/** The one-pass check of `file` (ImportItemOptions.segments): its errors name the bytes. */
function segmentGate(
  options: ImportItemOptions,
  file: ManifestFile,
  segments: NonNullable<ImportItemOptions['segments']>,
): SegmentGate {
  const tell = (bytes: number, ok?: boolean) =>
    segments.onProgress?.({
      item: options.item.id,
      file: file.path,
      bytes,
      total: file.encryptedSize,
      ...(ok === undefined ? {} : { done: true, ok }),
    });
  tell(0);
  const gate: SegmentGate = new SegmentGate({
    path: join(options.root, file.path),
    size: file.encryptedSize,
    digests: file.encryptedSegmentSha256,
    segmentSize: segments.size,
    ...(segments.lanes ? { lanes: segments.lanes } : {}),
    onChecked: (bytes, done) => tell(bytes, done ? true : undefined),
    problem: (index, cause) => {
      tell(gate.checkedBytes, false);
      const start = index * segments.size;
      const end = Math.min(file.encryptedSize, start + segments.size) - 1;
      if (cause) {
        return new ImportError(
          'IMPORT_FAILED',
          `${file.path} could not be read at bytes ${start}-${end} (${cause.message}); nothing of them was sent, and the import of ${options.item.name} was undone. Check the NAS, then run the import again.`,
          { cause },
        );
      }
      return new ImportError(
        'CONTENT_MISMATCH',
        `${file.path}: bytes ${start}-${end} (segment ${index + 1} of ${file.encryptedSegmentSha256.length}) do not hash to the signed manifest's SHA-256: the file was damaged or changed after the export. Nothing of them was sent: the upload stopped before them, and the import of ${options.item.name} was undone. Re-ship or re-export the file.`,
      );
    },
  });
  return gate;
}

/** The files an OVF descriptor's References section names (their href). */
function fileReferences(descriptor: string): string[] {
  return [...descriptor.matchAll(/<(?:\w+:)?File\s[^>]*?(?:\w+:)?href="([^"]+)"/g)].map((m) => m[1]!);
}

/** Network names of an OVF descriptor's NetworkSection. */
function ovfNetworks(descriptor: string): string[] {
  const section = /<(?:\w+:)?NetworkSection[\s\S]*?<\/(?:\w+:)?NetworkSection>/.exec(descriptor)?.[0] ?? '';
  return [...section.matchAll(/<(?:\w+:)?Network\s[^>]*?(?:\w+:)?name="([^"]+)"/g)].map((m) => m[1]!);
}

const faultText = (e: XmlNode): string => e.str('localizedMessage') || e.child('fault')?.typeName || 'error';

async function exists(client: VimClient, ref: Moref): Promise<boolean> {
  try {
    const props = await client.properties(ref, ref.type, ['name']);
    return props.has('name');
  } catch {
    return false;
  }
}

async function findVmByName(client: VimClient, folder: Moref, name: string): Promise<Moref | undefined> {
  const vms = await client.listByType(['VirtualMachine', 'VirtualApp'], ['name'], folder);
  return vms.find((v) => v.props.get('name')?.text === name)?.obj;
}

async function destroy(client: VimClient, ref: Moref): Promise<void> {
  const props = await client.properties(ref, ref.type, ['runtime.powerState']).catch(() => new Map());
  if (props.get('runtime.powerState')?.text === 'poweredOn') {
    await client.waitForTask(
      ((await client.invoke('PowerOffVM_Task', { _this: ref })).child('returnval') as XmlNode).moref,
    );
  }
  const task = (await client.invoke('Destroy_Task', { _this: ref })).child('returnval');
  if (task) await client.waitForTask(task.moref);
}
