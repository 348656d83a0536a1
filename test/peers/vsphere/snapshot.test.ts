// Snapshots, linked clones, change tracking and QueryChangedDiskAreas on the wire (vcsim/layers.go,
// vcsim/snapshot.go; README "Snapshots, clones and changed blocks"). Each describe block has a
// simulator of its own: these tests change the inventory.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { guestWrite, vmStatuses } from './guest.ts';
import { exportVm, faultOf, type PeerSession, usePeer } from './peer-session.ts';
import {
  attr,
  deviceHref,
  elements,
  escapeXml,
  httpRequest,
  inners,
  leaseCall,
  moRef,
  text,
  waitLease,
} from './raw-soap.ts';
import type { InventoryVm } from './simulator.ts';

const vmRef = (moref: string) => moRef('_this', 'VirtualMachine', moref);

/** The result of a task that has ended (the simulator runs tasks before answering). */
async function taskResult(peer: PeerSession, callXml: string): Promise<string | undefined> {
  const task = text(callXml, 'returnval');
  if (!task) throw new Error('no task returned');
  const info = (await peer.client.properties('Task', task, ['info'])).get('info') ?? '';
  const state = text(info, 'state');
  if (state !== 'success') {
    throw new Error(
      `task ${task} ended ${state}: ${attr(info, 'fault', 'xsi:type') ?? text(info, 'localizedMessage')}`,
    );
  }
  return text(info, 'result');
}

async function enableCbt(peer: PeerSession, vm: string): Promise<void> {
  await taskResult(
    peer,
    await peer.client.call(
      `<ReconfigVM_Task xmlns="urn:vim25">${vmRef(vm)}<spec><changeTrackingEnabled>true</changeTrackingEnabled></spec></ReconfigVM_Task>`,
    ),
  );
}

async function snapshot(peer: PeerSession, vm: string, name: string, quiesce = false): Promise<string> {
  const snap = await taskResult(
    peer,
    await peer.client.call(
      `<CreateSnapshot_Task xmlns="urn:vim25">${vmRef(vm)}<name>${escapeXml(name)}</name>` +
        `<memory>false</memory><quiesce>${quiesce}</quiesce></CreateSnapshot_Task>`,
    ),
  );
  if (!snap) throw new Error('CreateSnapshot_Task returned no snapshot');
  return snap;
}

const removeSnapshot = async (peer: PeerSession, snap: string) =>
  taskResult(
    peer,
    await peer.client.call(
      `<RemoveSnapshot_Task xmlns="urn:vim25">${moRef('_this', 'VirtualMachineSnapshot', snap)}<removeChildren>false</removeChildren></RemoveSnapshot_Task>`,
    ),
  );

const cloneCall = async (peer: PeerSession, vm: string, name: string, snap?: string, linked = true) => {
  const folder = text(
    (await peer.client.properties('VirtualMachine', vm, ['parent'])).get('parent') ?? '',
    'val',
  );
  return peer.client.call(
    `<CloneVM_Task xmlns="urn:vim25">${vmRef(vm)}${moRef('folder', 'Folder', folder ?? '')}<name>${name}</name>` +
      `<spec><location>${linked ? '<diskMoveType>createNewChildDiskBacking</diskMoveType>' : ''}</location>` +
      `<template>false</template><powerOn>false</powerOn>` +
      `${snap ? moRef('snapshot', 'VirtualMachineSnapshot', snap) : ''}</spec></CloneVM_Task>`,
  );
};

async function linkedClone(
  peer: PeerSession,
  vm: string,
  name: string,
  snap?: string,
  linked = true,
): Promise<string> {
  const clone = await taskResult(peer, await cloneCall(peer, vm, name, snap, linked));
  if (!clone) throw new Error('CloneVM_Task returned no VM');
  return clone;
}

const destroy = async (peer: PeerSession, vm: string) =>
  taskResult(peer, await peer.client.call(`<Destroy_Task xmlns="urn:vim25">${vmRef(vm)}</Destroy_Task>`));

const powerOff = async (peer: PeerSession, vm: string) =>
  taskResult(
    peer,
    await peer.client.call(`<PowerOffVM_Task xmlns="urn:vim25">${vmRef(vm)}</PowerOffVM_Task>`),
  );

/** The changeId of each disk backing in a snapshot's config (key → changeId). */
async function snapshotChangeIds(peer: PeerSession, snap: string): Promise<Map<number, string>> {
  const devices =
    (await peer.client.properties('VirtualMachineSnapshot', snap, ['config.hardware.device'])).get(
      'config.hardware.device',
    ) ?? '';
  const out = new Map<number, string>();
  for (const d of elements(devices, 'VirtualDevice')) {
    if (!/type="VirtualDisk"/.test(d.slice(0, d.indexOf('>')))) continue;
    out.set(Number(text(d, 'key')), text(d, 'changeId') ?? '');
  }
  return out;
}

async function changedAreas(
  peer: PeerSession,
  vm: string,
  key: number,
  changeId: string,
  snap?: string,
  startOffset = 0,
): Promise<{ startOffset: number; length: number; areas: [number, number][] }> {
  const xml = await peer.client.call(
    `<QueryChangedDiskAreas xmlns="urn:vim25">${vmRef(vm)}${snap ? moRef('snapshot', 'VirtualMachineSnapshot', snap) : ''}` +
      `<deviceKey>${key}</deviceKey><startOffset>${startOffset}</startOffset><changeId>${escapeXml(changeId)}</changeId></QueryChangedDiskAreas>`,
  );
  const rv = inners(xml, 'returnval')[0] ?? '';
  return {
    startOffset: Number(text(rv, 'startOffset')),
    length: Number(text(rv, 'length')),
    areas: inners(rv, 'changedArea').map((a) => [Number(text(a, 'start')), Number(text(a, 'length'))]),
  };
}

/** Exports a powered-off VM and returns each disk's bytes, in device order. */
async function exportDisks(peer: PeerSession, vm: string): Promise<Buffer[]> {
  const lease = await exportVm(peer.client, vm);
  const snap = await waitLease(peer.client, lease);
  expect(snap.state).toBe('ready');
  const out: Buffer[] = [];
  for (const d of snap.deviceUrls.filter((u) => u.disk)) {
    const res = await httpRequest(deviceHref(peer.sim.url, d.url));
    expect(res.status).toBe(200);
    out.push(res.body);
  }
  await peer.client.call(leaseCall('HttpNfcLeaseComplete', lease));
  return out;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const marker = (s: string) => Buffer.from(s.padEnd(512, '.'));

function vmNamed(peer: PeerSession, name: string): InventoryVm {
  const vm = peer.inventory.vms.find((v) => v.name === name);
  if (!vm) throw new Error(`no VM ${name}`);
  return vm;
}

describe('a linked clone from a snapshot of a running VM', () => {
  const peer = usePeer({
    diskSize: '256KiB',
    poweredOn: ['DC0_H0_VM0', 'DC0_H0_VM1'],
    toolsRunning: ['DC0_H0_VM1'],
  });

  it('reads the disks as they were at the snapshot, not the writes that came after', async () => {
    const p = peer();
    const vm = vmNamed(p, 'DC0_H0_VM0');
    const before = marker('BEFORE-SNAPSHOT');
    await guestWrite(p.sim, vm.name, 0, 4096, before);
    const snap = await snapshot(p, vm.moref, 'sneakernet-test');
    const after = marker('AFTER-SNAPSHOT');
    await guestWrite(p.sim, vm.name, 0, 8192, after);
    await guestWrite(p.sim, vm.name, 1, 0, after);

    const clone = await linkedClone(p, vm.moref, 'clone-1', snap);
    const status = (await vmStatuses(p.sim)).find((v) => v.moref === clone);
    expect(status?.powerState).toBe('poweredOff');

    const [d0, d1] = await exportDisks(p, clone);
    const original0 = await readFile(vm.disks[0]!.path); // the running VM's writes went elsewhere
    expect(d0!.subarray(4096, 4608)).toEqual(before);
    expect(d0!.includes(after)).toBe(false);
    expect(sha256(d1!)).toBe(vm.disks[1]!.sha256);
    expect(d0!.length).toBe(original0.length);

    // The clone keeps reading the snapshot's state after the snapshot is gone...
    await guestWrite(p.sim, vm.name, 0, 12288, after);
    await removeSnapshot(p, snap);
    const [again] = await exportDisks(p, clone);
    expect(sha256(again!)).toBe(sha256(d0!));
    // ...and once the clone is destroyed, nothing of it or of the snapshot is left.
    await destroy(p, clone);
    const left = await vmStatuses(p.sim);
    expect(left.map((v) => v.name)).not.toContain('clone-1');
    expect(left.find((v) => v.name === vm.name)?.snapshots).toEqual([]);

    // The running VM itself has every write: powered off, it exports with all of them.
    await powerOff(p, vm.moref);
    const [live0, live1] = await exportDisks(p, vm.moref);
    expect(live0!.subarray(4096, 4608)).toEqual(before);
    expect(live0!.subarray(8192, 8704)).toEqual(after);
    expect(live0!.subarray(12288, 12800)).toEqual(after);
    expect(live1!.subarray(0, 512)).toEqual(after);
  });

  it('lists snapshots in the tree, quiesced only when VMware Tools run', async () => {
    const p = peer();
    const withTools = vmNamed(p, 'DC0_H0_VM1');
    const snap = await snapshot(p, withTools.moref, 'q', true);
    const tree =
      (await p.client.properties('VirtualMachine', withTools.moref, ['snapshot'])).get('snapshot') ?? '';
    expect(text(tree, 'name')).toBe('q');
    expect(text(tree, 'quiesced')).toBe('true');
    expect((await vmStatuses(p.sim)).find((v) => v.name === withTools.name)?.snapshots).toEqual([
      { moref: snap, name: 'q', quiesced: true },
    ]);
    await removeSnapshot(p, snap);

    const without = vmNamed(p, 'DC0_C0_RP0_VM0'); // powered off, no tools: quiesce is ignored
    const s2 = await snapshot(p, without.moref, 'nq', true);
    expect((await vmStatuses(p.sim)).find((v) => v.name === without.name)?.snapshots).toEqual([
      { moref: s2, name: 'nq', quiesced: false },
    ]);
    await removeSnapshot(p, s2);
  });

  it('refuses a linked clone without a snapshot, and a snapshot of another VM', async () => {
    const p = peer();
    const vm = vmNamed(p, 'DC0_C0_RP0_VM1');
    const fault = await faultOf(cloneCall(p, vm.moref, 'no-snapshot'));
    expect(fault.faultType).toBe('InvalidArgument');
    const other = await snapshot(p, vmNamed(p, 'DC0_C0_RP0_VM0').moref, 'other');
    expect((await faultOf(cloneCall(p, vm.moref, 'wrong-snapshot', other))).faultType).toBe(
      'InvalidArgument',
    );
    await removeSnapshot(p, other);
  });

  it('gives a full clone the source content (the stock simulator leaves it empty)', async () => {
    const p = peer();
    const vm = vmNamed(p, 'DC0_C0_APP0_VM0');
    const clone = await linkedClone(p, vm.moref, 'full-clone', undefined, false);
    const disks = await exportDisks(p, clone);
    expect(disks.map(sha256)).toEqual(vm.disks.map((d) => d.sha256));
    // and the source keeps its own disk files
    expect((await exportDisks(p, vm.moref)).map(sha256)).toEqual(vm.disks.map((d) => d.sha256));
    await destroy(p, clone);
  });
});

describe('nested snapshots', () => {
  const peer = usePeer({ diskSize: '256KiB', poweredOn: ['DC0_H0_VM0'] });

  it('a clone of the second snapshot reads the writes before it and not after; removing both merges everything into the VM', async () => {
    const p = peer();
    const vm = vmNamed(p, 'DC0_H0_VM0');
    const one = marker('ONE');
    const two = marker('TWO');
    const three = marker('THREE');
    const a = await snapshot(p, vm.moref, 'a');
    await guestWrite(p.sim, vm.name, 0, 0, one); // into a delta over a's layer
    const b = await snapshot(p, vm.moref, 'b'); // freezes that delta
    await guestWrite(p.sim, vm.name, 0, 512, two);
    const fromA = await linkedClone(p, vm.moref, 'from-a', a);
    const fromB = await linkedClone(p, vm.moref, 'from-b', b);
    await guestWrite(p.sim, vm.name, 0, 1024, three);

    const [cloneA] = await exportDisks(p, fromA);
    const [cloneB] = await exportDisks(p, fromB);
    const original = await readFile(vm.disks[0]!.path);
    expect(sha256(cloneA!)).toBe(vm.disks[0]!.sha256);
    expect(cloneB!.subarray(0, 512)).toEqual(one); // composed: a's layer + the delta b froze
    expect(cloneB!.includes(two)).toBe(false);
    expect(cloneB!.subarray(512)).toEqual(original.subarray(512));

    // Snapshots removed while the clones still read them: the clones keep their content.
    await removeSnapshot(p, a);
    await removeSnapshot(p, b);
    expect(sha256((await exportDisks(p, fromB))[0]!)).toBe(sha256(cloneB!));
    await destroy(p, fromA);
    await destroy(p, fromB);
    await powerOff(p, vm.moref);
    const [live] = await exportDisks(p, vm.moref);
    expect(live!.subarray(0, 512)).toEqual(one);
    expect(live!.subarray(512, 1024)).toEqual(two);
    expect(live!.subarray(1024, 1536)).toEqual(three);
    expect(live!.subarray(1536)).toEqual(original.subarray(1536));
    expect((await vmStatuses(p.sim)).find((v) => v.name === vm.name)?.snapshots).toEqual([]);
  });
});

describe('a snapshot removed while a linked clone of it exists, before the VM wrote anything', () => {
  const peer = usePeer({ diskSize: '64KiB', poweredOn: ['DC0_H0_VM0'] });

  it("keeps the clone reading the snapshot state when the VM writes afterwards, and the clone's writes its own", async () => {
    const p = peer();
    const vm = vmNamed(p, 'DC0_H0_VM0');
    const snap = await snapshot(p, vm.moref, 's');
    const clone = await linkedClone(p, vm.moref, 'c', snap);
    await removeSnapshot(p, snap);
    await guestWrite(p.sim, vm.name, 0, 0, marker('AFTER'));
    expect(sha256((await exportDisks(p, clone))[0]!)).toBe(vm.disks[0]!.sha256);
    // Nor does a write into the clone reach the VM: they share only the read-only layer.
    await guestWrite(p.sim, 'c', 0, 4096, marker('CLONE'));
    await destroy(p, clone);
    await powerOff(p, vm.moref);
    const [live] = await exportDisks(p, vm.moref);
    expect(live!.subarray(0, 512)).toEqual(marker('AFTER'));
    expect(live!.includes(marker('CLONE'))).toBe(false);
  });
});

describe('HasPrivilegeOnEntity with -deny-privileges', () => {
  const peer = usePeer({ denyPrivileges: ['VirtualMachine.State.CreateSnapshot'] });

  it('answers one boolean per privilege, in order, false for a denied one', async () => {
    const p = peer();
    const session = (await p.client.properties('SessionManager', 'SessionManager', ['currentSession'])).get(
      'currentSession',
    );
    const xml = await p.client.call(
      `<HasPrivilegeOnEntity xmlns="urn:vim25">${moRef('_this', 'AuthorizationManager', 'AuthorizationManager')}` +
        `${moRef('entity', 'VirtualMachine', vmNamed(p, 'DC0_H0_VM0').moref)}<sessionId>${text(session ?? '', 'key')}</sessionId>` +
        '<privId>System.Read</privId><privId>VirtualMachine.State.CreateSnapshot</privId><privId>VirtualMachine.State.RemoveSnapshot</privId>' +
        '</HasPrivilegeOnEntity>',
    );
    expect(inners(xml, 'returnval')).toEqual(['true', 'false', 'true']);
  });
});

describe('change tracking and QueryChangedDiskAreas', () => {
  const peer = usePeer({ diskSize: '1MiB', poweredOn: ['DC0_H0_VM0'] });

  it('answers exactly the areas written after a snapshot changeId', async () => {
    const p = peer();
    const vm = vmNamed(p, 'DC0_H0_VM0');
    const [disk0] = vm.disks;
    const statusBefore = (await vmStatuses(p.sim)).find((v) => v.name === vm.name)!;
    expect(statusBefore.disks.every((d) => d.changeId === '')).toBe(true);

    await enableCbt(p, vm.moref);
    // On a running VM tracking starts at the next stun/unstun: the snapshot.
    expect((await vmStatuses(p.sim)).find((v) => v.name === vm.name)!.disks[0]!.changeId).toBe('');
    const a = await snapshot(p, vm.moref, 'a');
    const ids = await snapshotChangeIds(p, a);
    const changeId = ids.get(disk0!.key)!;
    expect(changeId).toMatch(/^52( [0-9a-f]{2}){7}-[0-9a-f]{2}( [0-9a-f]{2}){7}\/0$/);

    const id1 = await guestWrite(p.sim, vm.name, 0, 65536, Buffer.alloc(1000, 1));
    expect(id1).toBe(changeId.replace(/\/0$/, '/1'));
    await guestWrite(p.sim, vm.name, 0, 524288, Buffer.alloc(512, 2));
    await guestWrite(p.sim, vm.name, 0, 524800, Buffer.alloc(512, 3)); // touches the previous one
    const b = await snapshot(p, vm.moref, 'b');
    await guestWrite(p.sim, vm.name, 0, 0, Buffer.alloc(512, 4)); // after b: not in the answer

    const since = await changedAreas(p, vm.moref, disk0!.key, changeId, b);
    expect(since).toEqual({
      startOffset: 0,
      length: 1 << 20,
      areas: [
        [65536, 1024], // 1000 bytes, whole 512-byte sectors
        [524288, 1024],
      ],
    });
    // a window that starts later
    expect((await changedAreas(p, vm.moref, disk0!.key, changeId, b, 524288)).areas).toEqual([
      [524288, 1024],
    ]);
    // nothing changed between b and itself
    const idB = (await snapshotChangeIds(p, b)).get(disk0!.key)!;
    expect((await changedAreas(p, vm.moref, disk0!.key, idB, b)).areas).toEqual([]);
    // "*": every allocated area (the peer counts the whole disk)
    expect((await changedAreas(p, vm.moref, disk0!.key, '*', b)).areas).toEqual([[0, 1 << 20]]);
    // the second disk was not written
    expect((await changedAreas(p, vm.moref, vm.disks[1]!.key, ids.get(vm.disks[1]!.key)!, b)).areas).toEqual(
      [],
    );

    // Without a snapshot only for a powered-off VM; a changeId of another epoch is a FileFault.
    expect((await faultOf(changedAreas(p, vm.moref, disk0!.key, changeId))).faultType).toBe('FileFault');
    expect(
      (await faultOf(changedAreas(p, vm.moref, disk0!.key, changeId.replace(/^52 ../, '52 zz'), b)))
        .faultType,
    ).toBe('FileFault');
    expect((await faultOf(changedAreas(p, vm.moref, 9999, changeId, b))).faultType).toBe('InvalidArgument');

    await removeSnapshot(p, a);
    await removeSnapshot(p, b);
    await powerOff(p, vm.moref);
    const current = await changedAreas(p, vm.moref, disk0!.key, changeId);
    expect(current.areas).toEqual([
      [0, 512],
      [65536, 1024],
      [524288, 1024],
    ]);
  });

  it('fails the snapshot of a template', async () => {
    const p = peer();
    const tpl = vmNamed(p, 'DC0_C0_TPL0');
    const fault = await faultOf(
      p.client.call(
        `<CreateSnapshot_Task xmlns="urn:vim25">${vmRef(tpl.moref)}<name>t</name><memory>false</memory><quiesce>false</quiesce></CreateSnapshot_Task>`,
      ),
    );
    expect(fault.faultType).toBe('NotSupported');
  });
});
