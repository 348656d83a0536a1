// Issue 21: a running VM is exported without being powered off, from a snapshot through a linked
// clone, and nothing of ours stays on the vCenter, whatever way the export ends. The peer
// (test/peers/vsphere, snapshot.go) freezes disk content at a snapshot; the test plays the guest,
// writing into the source disk before the snapshot and while the export runs.

import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ExportError, exportItem } from '../../../agent/export/export-item.ts';
import { deltaSync } from '../../../agent/package/transfer-manifest.ts';
import { VimClient } from '../../../agent/vsphere/client.ts';
import { findItem, type InventoryItem, readInventory } from '../../../agent/vsphere/inventory.ts';
import { liveCloneName, liveMarker, startLiveCapture } from '../../../agent/vsphere/live-capture.ts';
import { guestWrite, vmStatuses } from '../../peers/vsphere/guest.ts';
import { httpRequest } from '../../peers/vsphere/raw-soap.ts';
import { type RunningSimulator, startSimulator } from '../../peers/vsphere/simulator.ts';
import { exportArgs, initParties, odt } from '../../support/cli.ts';
import { ageDecrypt } from '../../support/disks.ts';

const mark = (s: string) => Buffer.from(s.padEnd(512, '#'));
const BEFORE = mark('MARKER-BEFORE-SNAPSHOT');
const DURING = mark('MARKER-DURING-EXPORT');

/** Nothing of ours on the vCenter: no clone named sneakernet-live…, no snapshot of that name. */
async function expectNothingOfOurs(sim: RunningSimulator): Promise<void> {
  const vms = await vmStatuses(sim);
  expect(vms.filter((v) => v.name.startsWith(liveMarker)).map((v) => v.name)).toEqual([]);
  expect(
    vms.flatMap((v) =>
      v.snapshots.filter((s) => s.name.startsWith(liveMarker)).map((s) => `${v.name}: ${s.name}`),
    ),
  ).toEqual([]);
}

describe('live export of a running VM', () => {
  let sim: RunningSimulator;
  let client: VimClient;
  let work: string;
  let recipient: string;
  let inventory: InventoryItem[];

  beforeAll(async () => {
    sim = await startSimulator({
      binary: inject('vcsimBinary'),
      diskSize: '1MiB',
      poweredOn: ['DC0_H0_VM0', 'DC0_H0_VM1', 'DC0_C0_RP0_VM0', 'DC0_C0_RP0_VM1', 'DC0_C0_APP0_VM0'],
      toolsRunning: ['DC0_H0_VM1', 'DC0_C0_RP0_VM1'],
      quiesceFails: ['DC0_C0_RP0_VM1'],
      // 1 MiB/s: each disk takes about a second, so a write "during the export" is during it.
      nfcBytesPerSecond: 1 << 20,
    });
    client = await VimClient.connect({
      url: sim.url,
      username: sim.username,
      password: sim.password,
      trust: { kind: 'insecure' },
    });
    work = await mkdtemp(join(tmpdir(), 'odt-live-'));
    recipient = await initParties(work);
    inventory = await readInventory(client);
  });
  afterAll(async () => {
    await client?.logout();
    await sim?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const item = (name: string) => findItem(inventory, name);
  const root = (transfer: string) => join(work, 'nas', transfer);

  it('exports the VM as at the snapshot: the marker written before is in the package, the one written during is not', async () => {
    const vm = item('DC0_H0_VM0');
    expect(vm.powerState).toBe('poweredOn');
    await guestWrite(sim, vm.name, 0, 4096, BEFORE);
    const writes: Promise<string>[] = [];
    const result = await exportItem({
      client,
      item: vm,
      itemId: 'item-1',
      root: root('tr-live-1'),
      recipients: [recipient],
      parallel: 1,
      onProgress: (p) => {
        // The first bytes moved: the snapshot is taken; the guest goes on writing.
        if (writes.length === 0 && p.bytes > 0) {
          writes.push(guestWrite(sim, vm.name, 0, 8192, DURING), guestWrite(sim, vm.name, 1, 0, DURING));
        }
      },
    });
    expect(writes).toHaveLength(2);
    await Promise.all(writes);

    expect(result.capture).toMatchObject({
      mode: 'live',
      consistency: 'crash-consistent',
      changeTracking: 'off',
    });
    expect(Date.parse(result.capture!.snapshotAt!)).toBeGreaterThan(Date.now() - 60_000);
    expect(deltaSync(result.capture).ready).toBe(false);

    const dir = join(root('tr-live-1'), 'item-1');
    const disk0 = await ageDecrypt(work, join(dir, 'DC0_H0_VM0-disk-0.vmdk.age'));
    const disk1 = await ageDecrypt(work, join(dir, 'DC0_H0_VM0-disk-1.vmdk.age'));
    expect(disk0.includes(BEFORE)).toBe(true);
    expect(disk0.includes(DURING)).toBe(false);
    expect(disk1.includes(DURING)).toBe(false);
    // disk 1 was not written before the snapshot: its bytes are the ones the peer started with.
    const source = (await sim.readInventory()).vms.find((v) => v.name === vm.name)!;
    expect(createHash('sha256').update(disk1).digest('hex')).toBe(source.disks[1]!.sha256);

    // The VM ran throughout, and nothing of ours is left.
    const after = (await vmStatuses(sim)).find((v) => v.name === vm.name)!;
    expect(after.powerState).toBe('poweredOn');
    await expectNothingOfOurs(sim);
    // The descriptor names the VM, not the clone.
    const ovf = (await ageDecrypt(work, join(dir, 'DC0_H0_VM0.ovf.age'))).toString();
    expect(ovf).toContain('DC0_H0_VM0');
    expect(ovf).not.toContain(liveMarker);
  });

  it('quiesces when VMware Tools run, switches change tracking on when asked, and records each disk changeId', async () => {
    const vm = item('DC0_H0_VM1');
    const during: Promise<string>[] = [];
    const result = await exportItem({
      client,
      item: vm,
      itemId: 'item-1',
      root: root('tr-live-2'),
      recipients: [recipient],
      parallel: 1,
      enableChangeTracking: true,
      onProgress: (p) => {
        if (during.length === 0 && p.bytes > 0) during.push(guestWrite(sim, vm.name, 0, 65536, DURING));
      },
    });
    await Promise.all(during);
    const capture = result.capture!;
    expect(capture).toMatchObject({ mode: 'live', consistency: 'quiesced', changeTracking: 'enabled' });
    expect(capture.disks.map((d) => d.file)).toEqual(['DC0_H0_VM1-disk-0.vmdk', 'DC0_H0_VM1-disk-1.vmdk']);
    for (const d of capture.disks) expect(d.changeId).toMatch(/^52 .+\/\d+$/);
    expect(deltaSync(capture)).toEqual({ ready: true, text: 'yes: changeId recorded for 2 disk(s)' });
    await expectNothingOfOurs(sim);

    // QueryChangedDiskAreas from the recorded changeId, against a snapshot taken now, answers
    // exactly the area the guest wrote during the export.
    const snap = (await client.waitForTask(
      (
        await client.invoke('CreateSnapshot_Task', {
          _this: vm.ref,
          name: 'later',
          memory: false,
          quiesce: false,
        })
      ).child('returnval')!.moref,
    ))!.moref;
    try {
      for (const [i, d] of capture.disks.entries()) {
        const res = await client.invoke('QueryChangedDiskAreas', {
          _this: vm.ref,
          snapshot: snap,
          deviceKey: d.deviceKey,
          startOffset: 0,
          changeId: d.changeId!,
        });
        const areas = res
          .child('returnval')!
          .all('changedArea')
          .map((a) => [Number(a.str('start')), Number(a.str('length'))]);
        expect(areas, d.file).toEqual(i === 0 ? [[65536, 512]] : []);
      }
    } finally {
      await client.waitForTask(
        (await client.invoke('RemoveSnapshot_Task', { _this: snap, removeChildren: false })).child(
          'returnval',
        )!.moref,
      );
    }
  });

  it('a failure mid-export (the host aborts the lease) leaves no clone and no snapshot; the rerun completes', async () => {
    const vm = item('DC0_C0_RP0_VM0');
    let aborted = false;
    const failed = await exportItem({
      client,
      item: vm,
      itemId: 'item-1',
      root: root('tr-live-3'),
      recipients: [recipient],
      parallel: 1,
      onProgress: (p) => {
        if (!aborted && p.bytes > 0) {
          aborted = true;
          void (async () => {
            const leases = JSON.parse(
              (await httpRequest(new URL('/_test/leases', sim.url).toString())).body.toString(),
            ) as { id: string; state: string }[];
            for (const l of leases.filter((x) => x.state === 'ready'))
              await httpRequest(new URL(`/_test/lease/${l.id}/abort`, sim.url).toString(), {
                method: 'POST',
              });
          })();
        }
      },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(failed).toBeInstanceOf(Error);
    await expectNothingOfOurs(sim);

    const again = await exportItem({
      client,
      item: vm,
      itemId: 'item-1',
      root: root('tr-live-3'),
      recipients: [recipient],
    });
    expect(again.capture?.mode).toBe('live');
    expect(again.files.filter((f) => f.role === 'disk')).toHaveLength(2);
    await expectNothingOfOurs(sim);
  });

  it('a guest that cannot quiesce (ApplicationQuiesceFault) is exported crash-consistent, and says so', async () => {
    const result = await exportItem({
      client,
      item: item('DC0_C0_RP0_VM1'),
      itemId: 'item-1',
      root: root('tr-live-8'),
      recipients: [recipient],
    });
    expect(result.capture).toMatchObject({ mode: 'live', consistency: 'crash-consistent' });
    await expectNothingOfOurs(sim);
  });

  it('Ctrl-C (the signal) mid-export leaves no clone and no snapshot', async () => {
    const vm = item('DC0_C0_RP0_VM1');
    const controller = new AbortController();
    const stopped = await exportItem({
      client,
      item: vm,
      itemId: 'item-1',
      root: root('tr-live-4'),
      recipients: [recipient],
      signal: controller.signal,
      onProgress: (p) => {
        if (p.bytes > 0) controller.abort(new Error('interrupted'));
      },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(stopped).toBeInstanceOf(Error);
    await expectNothingOfOurs(sim);
  });

  it('--cold-only refuses a running VM as before, and a template is never exported live', async () => {
    const err = await exportItem({
      client,
      item: item('DC0_H0_VM0'),
      itemId: 'item-1',
      root: root('tr-live-5'),
      recipients: [recipient],
      coldOnly: true,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExportError);
    expect((err as ExportError).code).toBe('POWERED_ON');
    expect((err as Error).message).toContain('--cold-only');
    await expectNothingOfOurs(sim);
  });

  it('a cold export records where change tracking stands (off here: no delta sync later)', async () => {
    const result = await exportItem({
      client,
      item: item('DC0_C0_TPL0'),
      itemId: 'item-1',
      root: root('tr-live-6'),
      recipients: [recipient],
    });
    expect(result.capture).toMatchObject({ mode: 'cold', changeTracking: 'off' });
    expect(deltaSync(result.capture).ready).toBe(false);
  });

  it('refuses a vApp with a running VM by name, with the reason', async () => {
    const err = await exportItem({
      client,
      item: item('DC0_C0_APP0'),
      itemId: 'item-1',
      root: root('tr-live-7'),
      recipients: [recipient],
    }).catch((e: unknown) => e);
    expect((err as ExportError).code).toBe('POWERED_ON');
    expect((err as Error).message).toContain(item('DC0_C0_APP0').path);
    expect((err as Error).message).toContain('would not be taken at one moment');
    await expectNothingOfOurs(sim);
  });

  it('odt export --dry-run says a running VM would be exported live, and --cold-only that it would be refused', async () => {
    const args = [
      ...exportArgs(sim, work, recipient, ['DC0_H0_VM0'], join(work, 'nas-dry'), 'tr-live-dry'),
      '--dry-run',
    ];
    const env = { ODT_VCENTER_PASSWORD: sim.password };
    const live = await odt(args, env);
    expect(live.out).toContain('would be exported live, from a snapshot through a linked clone');
    expect(live.code).toBe(0);
    const cold = await odt([...args, '--cold-only'], env);
    expect(cold.out).toContain('would be REFUSED');
    await expectNothingOfOurs(sim);
  });

  it('a VM read live by a killed run and powered off since: the rerun removes our snapshot and clone and exports it cold, from scratch', async () => {
    const vm = item('DC0_C0_RP0_VM0');
    const dir = join(root('tr-live-9'), 'item-1');
    // What a run killed with SIGKILL leaves: the snapshot, the clone, and .live.json naming them.
    const { capture } = await startLiveCapture(client, vm, { transferId: 'tr-live-9', itemId: 'item-1' });
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, '.live.json'), JSON.stringify(capture));
    expect((await vmStatuses(sim)).some((v) => v.name === liveCloneName('tr-live-9', 'item-1'))).toBe(true);
    await client.waitForTask(
      (await client.invoke('PowerOffVM_Task', { _this: vm.ref })).child('returnval')!.moref,
    );

    const off = findItem(await readInventory(client), 'DC0_C0_RP0_VM0');
    expect(off.powerState).toBe('poweredOff');
    const result = await exportItem({
      client,
      item: off,
      itemId: 'item-1',
      root: root('tr-live-9'),
      recipients: [recipient],
    });
    expect(result.capture?.mode).toBe('cold');
    await expectNothingOfOurs(sim);
  });

  it('names the clone after the transfer and item', () => {
    expect(liveCloneName('tr-x', 'item-2')).toBe('sneakernet-live-tr-x-item-2');
  });

  it('keeps no clone or snapshot marker files on the NAS beyond its own bookkeeping', async () => {
    const files = await readdir(join(root('tr-live-1'), 'item-1'));
    expect(files.filter((f) => !f.startsWith('.')).sort()).toEqual([
      'DC0_H0_VM0-disk-0.vmdk.age',
      'DC0_H0_VM0-disk-1.vmdk.age',
      'DC0_H0_VM0.mf.age',
      'DC0_H0_VM0.ovf.age',
    ]);
    expect((await stat(join(root('tr-live-1'), 'item-1', '.capture.json'))).isFile()).toBe(true);
  });
});

describe('live export without the privileges', () => {
  let sim: RunningSimulator;
  let client: VimClient;
  let work: string;
  let recipient: string;

  beforeAll(async () => {
    sim = await startSimulator({
      binary: inject('vcsimBinary'),
      diskSize: '64KiB',
      denyPrivileges: ['VirtualMachine.State.CreateSnapshot', 'VirtualMachine.Inventory.Delete'],
      poweredOn: ['DC0_H0_VM0', 'DC0_C0_RP0_VM0'],
    });
    client = await VimClient.connect({
      url: sim.url,
      username: sim.username,
      password: sim.password,
      trust: { kind: 'insecure' },
    });
    work = await mkdtemp(join(tmpdir(), 'odt-live-priv-'));
    recipient = await initParties(work);
  });
  afterAll(async () => {
    await client?.logout();
    await sim?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('names the privileges the user lacks and takes no snapshot', async () => {
    const inventory = await readInventory(client);
    const err = await exportItem({
      client,
      item: findItem(inventory, 'DC0_H0_VM0'),
      itemId: 'item-1',
      root: join(work, 'nas', 'tr-priv'),
      recipients: [recipient],
    }).catch((e: unknown) => e);
    expect((err as ExportError).code).toBe('LIVE_PRIVILEGES');
    expect((err as Error).message).toContain(
      'VirtualMachine.State.CreateSnapshot, VirtualMachine.Inventory.Delete',
    );
    expect((await vmStatuses(sim)).find((v) => v.name === 'DC0_H0_VM0')!.snapshots).toEqual([]);
  });

  it('odt inventory names what a live export needs and what this user lacks, per running VM', async () => {
    const env = { ODT_VCENTER_PASSWORD: sim.password };
    const args = ['inventory', '--vcenter', sim.url, '--username', sim.username];
    const text = await odt(args, env);
    expect(text.code).toBe(0);
    expect(text.out).toContain('2 running VM(s) are exported live');
    expect(text.out).toContain('VirtualMachine.State.CreateSnapshot, VirtualMachine.State.RemoveSnapshot');
    expect(text.out).toContain(
      '/DC0/vm/DC0_H0_VM0: this user LACKS VirtualMachine.State.CreateSnapshot, VirtualMachine.Inventory.Delete',
    );
    const json = JSON.parse((await odt([...args, '--json'], env)).out) as {
      name: string;
      liveExport?: { needs: string[]; missing: string[] | null };
    }[];
    expect(json.find((i) => i.name === 'DC0_H0_VM0')?.liveExport?.missing).toEqual([
      'VirtualMachine.State.CreateSnapshot',
      'VirtualMachine.Inventory.Delete',
    ]);
    expect(json.find((i) => i.name === 'DC0_H0_VM1')?.liveExport).toBeUndefined(); // powered off
  });
});
