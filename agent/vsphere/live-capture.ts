/**
 * A running VM exported without downtime: a snapshot (quiesced when VMware Tools run, else
 * crash-consistent), a linked clone from it (`CloneVM_Task` with the snapshot and
 * `diskMoveType=createNewChildDiskBacking`, powered off, in the VM's folder), which the normal
 * export lease reads; then the clone is destroyed and the snapshot removed. The package is the VM
 * as it was at the snapshot.
 *
 * Everything made here is marked by name: the snapshot `sneakernet-live <transfer> <item>`, the
 * clone `sneakernet-live-<transfer>-<item>`. A run that was killed leaves them; the next run of
 * the same transfer finds them by that name: it reuses a snapshot the item's folder on the NAS
 * recorded (so the files already written, taken from it, stay valid) and removes anything else
 * of ours before taking a new one.
 */
import { AgentError } from '../errors.ts';
import type { VimClient } from './client.ts';
import type { InventoryItem } from './inventory.ts';
import type { Moref } from './wire/serialize.ts';
import { VimFaultError } from './wire/soap-connection.ts';
import type { XmlNode } from './wire/xml.ts';

export const liveMarker = 'sneakernet-live';
export const liveSnapshotName = (transferId: string, itemId: string): string =>
  `${liveMarker} ${transferId} ${itemId}`;
export const liveCloneName = (transferId: string, itemId: string): string =>
  `${liveMarker}-${transferId}-${itemId}`;

/** Where change tracking stood: on already, switched on by this export (--enable-cbt), or off. */
export type ChangeTracking = 'on' | 'enabled' | 'off';

export interface CapturedDisk {
  /** VirtualDevice.key of the disk in the source VM. */
  readonly deviceKey: number;
  readonly label: string;
  /** The disk backing's changeId in the snapshot: where a later delta sync starts. */
  readonly changeId?: string;
}

/** What a live export read from: saved in the item's folder (`.live.json`) until it ends. */
export interface LiveCapture {
  readonly vm: Moref;
  readonly snapshot: Moref;
  readonly clone: Moref;
  /** The snapshot's createTime (ISO 8601). */
  readonly takenAt: string;
  readonly quiesced: boolean;
  readonly changeTracking: ChangeTracking;
  readonly disks: readonly CapturedDisk[];
}

export class LiveExportError extends AgentError<'EXPORT_FAILED' | 'POWERED_ON'> {
  constructor(code: 'EXPORT_FAILED' | 'POWERED_ON', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'LiveExportError';
  }
}

/**
 * The privileges a live export needs besides those of a cold one (VApp.Export), on the VM: the
 * snapshot, the clone (its folder gets a VM made from an existing one), and the clean-up. With
 * --enable-cbt also the one to switch change tracking on. Names as in the vSphere privilege list.
 */
export function livePrivileges(options: { readonly enableChangeTracking?: boolean } = {}): string[] {
  return [
    'VirtualMachine.State.CreateSnapshot',
    'VirtualMachine.State.RemoveSnapshot',
    'VirtualMachine.Provisioning.Clone',
    'VirtualMachine.Inventory.CreateFromExisting',
    'VirtualMachine.Inventory.Delete',
    ...(options.enableChangeTracking ? ['VirtualMachine.Config.ChangeTracking'] : []),
  ];
}

/**
 * The privileges of `wanted` this session lacks on `entity` (AuthorizationManager.
 * HasPrivilegeOnEntity; answers in the order asked). Undefined when the server cannot tell
 * (an ESXi host without an AuthorizationManager, or the call refused): then nobody knows, and
 * the export finds out when it tries.
 */
export async function missingPrivileges(
  client: VimClient,
  entity: Moref,
  wanted: readonly string[],
): Promise<string[] | undefined> {
  return (await missingPrivilegesOn(client, [entity], wanted)).get(entity.value);
}

/**
 * The same for several entities in one call (HasPrivilegeOnEntities): by moref value; an entity
 * is absent from the map when the server cannot tell.
 */
export async function missingPrivilegesOn(
  client: VimClient,
  entities: readonly Moref[],
  wanted: readonly string[],
): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const manager = client.serviceContent.authorizationManager;
  if (!manager || entities.length === 0) return out;
  try {
    const session = await client.properties(client.serviceContent.sessionManager, 'SessionManager', [
      'currentSession',
    ]);
    const sessionId = session.get('currentSession')?.str('key');
    if (!sessionId) return out;
    if (entities.length === 1) {
      const res = await client.invoke('HasPrivilegeOnEntity', {
        _this: manager,
        entity: entities[0]!,
        sessionId,
        privId: wanted,
      });
      const granted = res.all('returnval').map((n) => n.text === 'true');
      out.set(
        entities[0]!.value,
        wanted.filter((_, i) => granted[i] !== true),
      );
      return out;
    }
    const res = await client.invoke('HasPrivilegeOnEntities', {
      _this: manager,
      entity: entities,
      sessionId,
      privId: wanted,
    });
    for (const ep of res.all('returnval')) {
      const entity = ep.child('entity')?.text;
      if (!entity) continue;
      const granted = new Set(
        ep
          .all('privAvailability')
          .filter((a) => a.str('isGranted') === 'true')
          .map((a) => a.str('privId')),
      );
      out.set(
        entity,
        wanted.filter((w) => !granted.has(w)),
      );
    }
    return out;
  } catch (error) {
    if (error instanceof VimFaultError) return out;
    throw error;
  }
}

interface VmState {
  readonly name: string;
  readonly folder?: Moref;
  readonly changeTrackingEnabled: boolean;
  readonly toolsRunning: boolean;
  readonly snapshots: readonly { ref: Moref; name: string; createTime: string; quiesced: boolean }[];
}

function flattenTree(nodes: readonly XmlNode[], out: VmState['snapshots'][number][] = []) {
  for (const n of nodes) {
    const ref = n.child('snapshot');
    if (ref)
      out.push({
        ref: ref.moref,
        name: n.str('name') ?? '',
        createTime: n.str('createTime') ?? '',
        quiesced: n.str('quiesced') === 'true',
      });
    flattenTree(n.all('childSnapshotList'), out);
  }
  return out;
}

async function vmState(client: VimClient, vm: Moref, signal?: AbortSignal): Promise<VmState> {
  const props = await client.properties(
    vm,
    'VirtualMachine',
    ['name', 'parent', 'config.changeTrackingEnabled', 'guest.toolsRunningStatus', 'snapshot'],
    signal ? { signal } : {},
  );
  const folder = props.get('parent')?.moref;
  return {
    name: props.get('name')?.text ?? vm.value,
    ...(folder ? { folder } : {}),
    changeTrackingEnabled: props.get('config.changeTrackingEnabled')?.text === 'true',
    toolsRunning: props.get('guest.toolsRunningStatus')?.text === 'guestToolsRunning',
    snapshots: flattenTree(props.get('snapshot')?.all('rootSnapshotList') ?? []),
  };
}

/** Clones of ours for this transfer and item (by name), anywhere in the vCenter. */
async function ourClones(client: VimClient, transferId: string, itemId: string): Promise<Moref[]> {
  const name = liveCloneName(transferId, itemId);
  const vms = await client.listByType(['VirtualMachine'], ['name']);
  return vms.filter((v) => v.props.get('name')?.text === name).map((v) => v.obj);
}

const task = async (client: VimClient, call: Promise<XmlNode>): Promise<XmlNode | undefined> => {
  const res = await call;
  return client.waitForTask(res.child('returnval')!.moref);
};

/** Destroys a clone of ours; one already gone is fine. Powered on by someone? Off first. */
async function destroyClone(client: VimClient, clone: Moref): Promise<void> {
  try {
    const props = await client.properties(clone, 'VirtualMachine', ['runtime.powerState']);
    if (props.get('runtime.powerState')?.text === 'poweredOn')
      await task(client, client.invoke('PowerOffVM_Task', { _this: clone }));
    await task(client, client.invoke('Destroy_Task', { _this: clone }));
  } catch (error) {
    if (error instanceof VimFaultError && error.faultType === 'ManagedObjectNotFound') return;
    throw error;
  }
}

async function removeSnapshot(client: VimClient, snapshot: Moref): Promise<void> {
  try {
    await task(
      client,
      client.invoke('RemoveSnapshot_Task', { _this: snapshot, removeChildren: false, consolidate: true }),
    );
  } catch (error) {
    if (error instanceof VimFaultError && error.faultType === 'ManagedObjectNotFound') return;
    throw error;
  }
}

/**
 * Removes every clone and snapshot of ours for this item except `keep` (a snapshot to reuse).
 * Returns what it removed, for the log.
 */
export async function sweepLive(
  client: VimClient,
  vm: Moref,
  ids: { readonly transferId: string; readonly itemId: string },
  keep?: Moref,
): Promise<{ clones: number; snapshots: number }> {
  const clones = await ourClones(client, ids.transferId, ids.itemId);
  for (const c of clones) await destroyClone(client, c);
  const name = liveSnapshotName(ids.transferId, ids.itemId);
  const stale = (await vmState(client, vm)).snapshots.filter(
    (s) => s.name === name && s.ref.value !== keep?.value,
  );
  for (const s of stale) await removeSnapshot(client, s.ref);
  return { clones: clones.length, snapshots: stale.length };
}

/** Each disk of a `config.hardware.device` list: key, label and the backing's changeId. */
function capturedDisks(devices: XmlNode | undefined): CapturedDisk[] {
  return (devices?.children ?? [])
    .filter((d) => d.typeName === 'VirtualDisk')
    .map((d) => {
      const changeId = d.path('backing', 'changeId')?.text;
      return {
        deviceKey: Number(d.str('key')),
        label: d.path('deviceInfo', 'label')?.text ?? `disk ${d.str('key')}`,
        ...(changeId ? { changeId } : {}),
      };
    });
}

/** Each disk of the snapshot's config, with its changeId at the snapshot. */
async function snapshotDisks(client: VimClient, snapshot: Moref): Promise<CapturedDisk[]> {
  const props = await client.properties(snapshot, 'VirtualMachineSnapshot', ['config.hardware.device']);
  return capturedDisks(props.get('config.hardware.device'));
}

/** Faults of a quiesced snapshot that a crash-consistent one does not have (API reference, SnapshotFault). */
const quiesceFaults = new Set(['ApplicationQuiesceFault', 'FilesystemQuiesceFault', 'ToolsUnavailable']);

export interface StartLiveOptions {
  readonly transferId: string;
  readonly itemId: string;
  /** Switch change tracking on when it is off (it changes the customer's VM: only when asked). */
  readonly enableChangeTracking?: boolean;
  /** A capture an earlier run of this item recorded: its snapshot is reused if it is still there. */
  readonly earlier?: LiveCapture;
  readonly signal?: AbortSignal;
}

/**
 * Takes the snapshot and makes the linked clone (or reuses those of `earlier`). Anything of ours
 * for this item that it does not reuse is removed first. On failure it removes what it made.
 */
export async function startLiveCapture(
  client: VimClient,
  item: InventoryItem,
  options: StartLiveOptions,
): Promise<{ capture: LiveCapture; reused: boolean }> {
  const ids = { transferId: options.transferId, itemId: options.itemId };
  const state = await vmState(client, item.ref, options.signal);
  const snapName = liveSnapshotName(ids.transferId, ids.itemId);
  const earlier = options.earlier;
  const kept =
    earlier && earlier.vm.value === item.ref.value
      ? state.snapshots.find((s) => s.name === snapName && s.ref.value === earlier.snapshot.value)
      : undefined;
  await sweepLive(client, item.ref, ids, kept?.ref);

  let changeTracking: ChangeTracking = state.changeTrackingEnabled ? 'on' : 'off';
  let snapshot: Moref | undefined = kept?.ref;
  let clone: Moref | undefined;
  try {
    if (!snapshot) {
      if (!state.changeTrackingEnabled && options.enableChangeTracking) {
        // On a running VM it takes effect at the next stun/unstun: the snapshot just below.
        await task(
          client,
          client.invoke('ReconfigVM_Task', { _this: item.ref, spec: { changeTrackingEnabled: true } }),
        );
        changeTracking = 'enabled';
      }
      const take = (quiesce: boolean) =>
        task(
          client,
          client.invoke('CreateSnapshot_Task', {
            _this: item.ref,
            name: snapName,
            description: `Taken by Sneakernet to export this VM while it runs (transfer ${ids.transferId}, ${ids.itemId}); removed when the export ends.`,
            memory: false,
            quiesce,
          }),
        );
      // Quiesced when VMware Tools run; when the guest cannot quiesce (its pre-freeze script
      // fails, or I/O could not be held long enough) the snapshot is taken crash-consistent, as
      // backup products do, and the capture says so.
      const result = await take(state.toolsRunning).catch((error: unknown) => {
        if (state.toolsRunning && error instanceof VimFaultError && quiesceFaults.has(error.faultType))
          return take(false);
        throw error;
      });
      snapshot = result?.moref;
      if (!snapshot)
        throw new LiveExportError(
          'EXPORT_FAILED',
          `CreateSnapshot_Task on ${item.path} returned no snapshot`,
        );
    } else if (earlier) {
      changeTracking = earlier.changeTracking;
    }
    const taken = (await vmState(client, item.ref)).snapshots.find((s) => s.ref.value === snapshot!.value);
    const folder = state.folder ?? (await vmFolderOf(client, item));
    const cloned = await task(
      client,
      client.invoke('CloneVM_Task', {
        _this: item.ref,
        folder,
        name: liveCloneName(ids.transferId, ids.itemId),
        spec: {
          location: { diskMoveType: 'createNewChildDiskBacking' },
          template: false,
          powerOn: false,
          snapshot,
        },
      }),
    );
    clone = cloned?.moref;
    if (!clone) throw new LiveExportError('EXPORT_FAILED', `CloneVM_Task of ${item.path} returned no VM`);
    const capture: LiveCapture = {
      vm: item.ref,
      snapshot,
      clone,
      takenAt: taken?.createTime ? new Date(taken.createTime).toISOString() : new Date().toISOString(),
      quiesced: taken?.quiesced ?? false,
      changeTracking,
      disks: await snapshotDisks(client, snapshot),
    };
    return { capture, reused: kept !== undefined };
  } catch (error) {
    await endLiveCapture(client, { clone, snapshot }).catch(() => {});
    if (error instanceof VimFaultError || error instanceof LiveExportError) {
      throw new LiveExportError(
        'EXPORT_FAILED',
        `${item.path} runs, and its live export could not start: ${error.message}. Nothing of it was left on the vCenter; ` +
          'fix the cause, or power the VM off and export it cold.',
        { cause: error },
      );
    }
    throw error;
  }
}

/** The datacenter's VM folder, for a VM whose parent is a vApp rather than a folder. */
async function vmFolderOf(client: VimClient, item: InventoryItem): Promise<Moref> {
  const dc = item.path.split('/').filter(Boolean)[0] ?? '';
  const res = await client.invoke('FindByInventoryPath', {
    _this: client.serviceContent.searchIndex,
    inventoryPath: `${dc}/vm`,
  });
  const folder = res.child('returnval')?.moref;
  if (!folder) throw new LiveExportError('EXPORT_FAILED', `no VM folder found for datacenter ${dc}`);
  return folder;
}

/** Destroys the clone, then removes the snapshot (in that order: the clone reads the snapshot). */
export async function endLiveCapture(
  client: VimClient,
  made: { readonly clone?: Moref | undefined; readonly snapshot?: Moref | undefined },
): Promise<void> {
  let first: unknown;
  if (made.clone) await destroyClone(client, made.clone).catch((e) => (first ??= e));
  if (made.snapshot) await removeSnapshot(client, made.snapshot).catch((e) => (first ??= e));
  if (first) throw first;
}

/** "live, from snapshot at <time>, quiesced|crash-consistent". */
export const liveSummary = (c: { takenAt: string; quiesced: boolean }): string =>
  `live, from snapshot at ${c.takenAt}, ${c.quiesced ? 'quiesced' : 'crash-consistent'}`;

/** Where change tracking stands on a VM that is not running: its disks' changeIds as they are now. */
export async function coldDisks(
  client: VimClient,
  vm: Moref,
): Promise<{ changeTracking: ChangeTracking; disks: CapturedDisk[] }> {
  const props = await client.properties(vm, 'VirtualMachine', [
    'config.changeTrackingEnabled',
    'config.hardware.device',
  ]);
  const disks = capturedDisks(props.get('config.hardware.device'));
  return { changeTracking: props.get('config.changeTrackingEnabled')?.text === 'true' ? 'on' : 'off', disks };
}
