// Export on the wire against the shared simulator (default model: DC0_H0_VM0 powered on, every
// other VM off, 2 disks of 1 MiB random bytes each, template DC0_C0_TPL0, vApp DC0_C0_APP0).

import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportVm, faultOf, sharedSession } from './peer-session.ts';
import {
  attr,
  decodeXml,
  deviceHref,
  elements,
  httpRequest,
  inners,
  leaseCall,
  moRef,
  RawSoapClient,
  text,
  texts,
  waitLease,
} from './raw-soap.ts';
import type { Inventory, InventoryDisk, InventoryVm, SimulatorHandle } from './simulator.ts';

let sim: SimulatorHandle;
let sdkUrl: string;
let client: RawSoapClient;
let inventory: Inventory;

function vmNamed(name: string): InventoryVm {
  const vm = inventory.vms.find((v) => v.name === name);
  if (!vm) throw new Error(`no VM ${name} in the inventory`);
  return vm;
}

function diskByKey(key: string): InventoryDisk {
  for (const vm of inventory.vms) {
    const disk = vm.disks.find((d) => d.deviceKey === key);
    if (disk) return disk;
  }
  throw new Error(`no disk with device key ${key}`);
}

beforeAll(async () => {
  ({ sim, client, inventory } = await sharedSession());
  sdkUrl = sim.url;
});
afterAll(async () => {
  await sim?.stop();
});

describe('the shared simulator', () => {
  it('has the documented default model', () => {
    const names = inventory.vms.map((v) => v.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'DC0_H0_VM0',
        'DC0_H0_VM1',
        'DC0_C0_RP0_VM0',
        'DC0_C0_APP0_VM0',
        'DC0_C0_TPL0',
      ]),
    );
    expect(vmNamed('DC0_H0_VM0').powerState).toBe('poweredOn');
    expect(vmNamed('DC0_H0_VM1').powerState).toBe('poweredOff');
    expect(vmNamed('DC0_C0_TPL0').template).toBe(true);
    expect(inventory.vApps.map((a) => a.name)).toEqual(['DC0_C0_APP0']);
    for (const vm of inventory.vms) {
      expect(vm.disks).toHaveLength(2);
      for (const d of vm.disks) expect(d.size).toBe(1024 * 1024);
    }
  });

  it('refuses bad credentials with InvalidLogin', async () => {
    const fresh = new RawSoapClient(sdkUrl);
    const fault = await faultOf(fresh.login(sim.username, 'wrong'));
    expect(fault.faultType).toBe('InvalidLogin');
    expect((await faultOf(fresh.login('nobody', sim.password))).faultType).toBe('InvalidLogin');
  });

  it('refuses ExportVm without a session', async () => {
    const anonymous = new RawSoapClient(sdkUrl);
    const fault = await faultOf(
      anonymous.call(
        `<ExportVm xmlns="urn:vim25">${moRef('_this', 'VirtualMachine', vmNamed('DC0_H0_VM1').moref)}</ExportVm>`,
      ),
    );
    expect(fault.faultType).toBe('NotAuthenticated');
  });
});

describe('ExportVm', () => {
  it('serves the exact bytes of both disks of a powered-off VM, then completes', async () => {
    const vm = vmNamed('DC0_H0_VM1');
    const lease = await exportVm(client, vm.moref);
    const snap = await waitLease(client, lease);
    expect(snap.state).toBe('ready');
    expect(snap.entity).toBe(vm.moref);
    expect(snap.totalDiskCapacityInKB).toBe(2 * 1024);
    expect(snap.deviceUrls.map((d) => d.key)).toEqual(vm.disks.map((d) => d.deviceKey));

    for (const [i, device] of snap.deviceUrls.entries()) {
      // The separate NFC host when the shared simulator has one, else the "*" host.
      expect(device.url).toBe(`${sim.nfcUrl ?? 'https://*'}/nfc/${lease}/disk-${i}.vmdk`);
      expect(device.disk).toBe(true);
      expect(device.targetId).toBe(`disk-${i}.vmdk`);
      expect(device.importKey).toBe(`/${vm.name}/disk:${i}`);
      expect(device.sslThumbprint).toBe('');

      const disk = diskByKey(device.key);
      const res = await httpRequest(deviceHref(sdkUrl, device.url));
      expect(res.status).toBe(200);
      expect(res.headers['content-length']).toBe(String(disk.size));
      expect(res.body.equals(await readFile(disk.path))).toBe(true);
    }

    await client.call(leaseCall('HttpNfcLeaseProgress', lease, '<percent>100</percent>'));
    await client.call(leaseCall('HttpNfcLeaseComplete', lease));
    expect((await waitLease(client, lease)).state).toBe('done');
    const first = snap.deviceUrls[0];
    if (!first) throw new Error('no device URL');
    expect((await httpRequest(deviceHref(sdkUrl, first.url))).status).toBe(404);
  });

  it('answers Range requests with 206 and Content-Range', async () => {
    const vm = vmNamed('DC0_C0_RP0_VM1');
    const lease = await exportVm(client, vm.moref);
    const snap = await waitLease(client, lease);
    const device = snap.deviceUrls[1];
    if (!device) throw new Error('no second device URL');
    const disk = diskByKey(device.key);
    const bytes = await readFile(disk.path);
    const href = deviceHref(sdkUrl, device.url);

    const mid = await httpRequest(href, { headers: { Range: 'bytes=1000-1999' } });
    expect(mid.status).toBe(206);
    expect(mid.headers['content-range']).toBe(`bytes 1000-1999/${disk.size}`);
    expect(mid.headers['content-length']).toBe('1000');
    expect(mid.body.equals(bytes.subarray(1000, 2000))).toBe(true);

    const open = await httpRequest(href, { headers: { Range: `bytes=${disk.size - 4096}-` } });
    expect(open.status).toBe(206);
    expect(open.body.equals(bytes.subarray(disk.size - 4096))).toBe(true);

    const suffix = await httpRequest(href, { headers: { Range: 'bytes=-100' } });
    expect(suffix.status).toBe(206);
    expect(suffix.body.equals(bytes.subarray(disk.size - 100))).toBe(true);

    const beyond = await httpRequest(href, { headers: { Range: `bytes=${disk.size}-` } });
    expect(beyond.status).toBe(416);

    const head = await httpRequest(href, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(disk.size));
    expect(head.body.length).toBe(0);

    await client.call(leaseCall('HttpNfcLeaseAbort', lease));
  });

  it('refuses a powered-on VM with InvalidPowerState, as vCenter does', async () => {
    const fault = await faultOf(exportVm(client, vmNamed('DC0_H0_VM0').moref));
    expect(fault.faultType).toBe('InvalidPowerState');
    expect(text(fault.detail, 'requestedState')).toBe('poweredOff');
    expect(text(fault.detail, 'existingState')).toBe('poweredOn');
  });

  it('exports a template', async () => {
    const tpl = vmNamed('DC0_C0_TPL0');
    const lease = await exportVm(client, tpl.moref);
    const snap = await waitLease(client, lease);
    expect(snap.state).toBe('ready');
    expect(snap.deviceUrls).toHaveLength(2);
    const device = snap.deviceUrls[0];
    if (!device) throw new Error('no device URL');
    const res = await httpRequest(deviceHref(sdkUrl, device.url));
    expect(res.body.equals(await readFile(diskByKey(device.key).path))).toBe(true);
    await client.call(leaseCall('HttpNfcLeaseComplete', lease));
  });

  it('reports ManagedObjectNotFound for an unknown VM', async () => {
    expect((await faultOf(exportVm(client, 'vm-999999'))).faultType).toBe('ManagedObjectNotFound');
  });
});

describe('ExportVApp', () => {
  it('serves every disk of every VM of the vApp', async () => {
    const app = inventory.vApps[0];
    if (!app) throw new Error('no vApp');
    const xml = await client.call(
      `<ExportVApp xmlns="urn:vim25">${moRef('_this', 'VirtualApp', app.moref)}</ExportVApp>`,
    );
    const lease = text(xml, 'returnval') ?? '';
    const snap = await waitLease(client, lease);
    expect(snap.state).toBe('ready');
    expect(snap.entity).toBe(app.moref);

    const expectedKeys = app.vms.flatMap(
      (moref) => inventory.vms.find((v) => v.moref === moref)?.disks ?? [],
    );
    expect(snap.deviceUrls.map((d) => d.key).sort()).toEqual(expectedKeys.map((d) => d.deviceKey).sort());
    expect(new Set(snap.deviceUrls.map((d) => d.url)).size).toBe(4);
    for (const device of snap.deviceUrls) {
      const res = await httpRequest(deviceHref(sdkUrl, device.url));
      expect(res.status).toBe(200);
      expect(res.body.equals(await readFile(diskByKey(device.key).path))).toBe(true);
    }
    await client.call(leaseCall('HttpNfcLeaseComplete', lease));
  });
});

describe('HttpNfcLeaseGetManifest', () => {
  it('gives the SHA-256, SHA-1 and size of each served disk', async () => {
    const vm = vmNamed('DC0_C0_RP0_VM0');
    const lease = await exportVm(client, vm.moref);
    await waitLease(client, lease);
    const xml = await client.call(leaseCall('HttpNfcLeaseGetManifest', lease));
    const entries = inners(xml, 'returnval');
    expect(entries).toHaveLength(2);
    for (const [i, entry] of entries.entries()) {
      const disk = vm.disks[i];
      if (!disk) throw new Error('missing disk');
      expect(text(entry, 'key')).toBe(disk.deviceKey);
      expect(text(entry, 'checksumType')).toBe('sha256');
      expect(text(entry, 'checksum')).toBe(disk.sha256);
      expect(text(entry, 'sha1')).toMatch(/^[0-9a-f]{40}$/);
      expect(text(entry, 'size')).toBe(String(disk.size));
      expect(text(entry, 'capacity')).toBe(String(disk.capacityInKB * 1024));
      expect(text(entry, 'disk')).toBe('true');
    }
    await client.call(leaseCall('HttpNfcLeaseComplete', lease));
  });
});

describe('OvfManager.CreateDescriptor', () => {
  const createDescriptor = async (obj: string, type: string, files: string) => {
    const xml = await client.call(
      `<CreateDescriptor xmlns="urn:vim25">${moRef('_this', 'OvfManager', 'OvfManager')}${moRef('obj', type, obj)}` +
        `<cdp>${files}<name>exported</name><description>made by a test</description></cdp></CreateDescriptor>`,
    );
    return { xml, ovf: text(xml, 'ovfDescriptor') ?? '' };
  };
  const ovfFile = (deviceId: string, path: string, size: number) =>
    `<ovfFiles><deviceId>${deviceId}</deviceId><path>${path}</path><size>${size}</size></ovfFiles>`;

  it('describes a VM with a File per ovfFiles entry, its disks, network and hardware', async () => {
    const vm = vmNamed('DC0_H0_VM1');
    const [d0, d1] = vm.disks;
    if (!d0 || !d1) throw new Error('missing disks');
    const { xml, ovf } = await createDescriptor(
      vm.moref,
      'VirtualMachine',
      ovfFile(d0.deviceKey, 'exported-disk0.vmdk', 4321) +
        ovfFile(d1.deviceKey, 'exported-disk1.vmdk', 1234) +
        ovfFile('/vm-0/disk:9', 'stray.vmdk', 1),
    );
    expect(ovf).toMatch(/^<\?xml/);
    const files = elements(ovf, 'File');
    expect(files).toHaveLength(2);
    expect(attr(files[0] ?? '', 'File', 'href')).toBe('exported-disk0.vmdk');
    expect(attr(files[0] ?? '', 'File', 'size')).toBe('4321');
    expect(attr(files[1] ?? '', 'File', 'href')).toBe('exported-disk1.vmdk');

    const disks = elements(ovf, 'Disk');
    expect(disks).toHaveLength(2);
    for (const [i, disk] of disks.entries()) {
      expect(attr(disk, 'Disk', 'capacity')).toBe(String(1024 * 1024));
      expect(attr(disk, 'Disk', 'capacityAllocationUnits')).toBe('byte');
      expect(attr(disk, 'Disk', 'fileRef')).toBe(attr(files[i] ?? '', 'File', 'id'));
    }
    expect(attr(ovf, 'Network', 'name')).toBe('DC0_DVPG0');
    expect(attr(ovf, 'VirtualSystem', 'id')).toBe('exported');
    expect(text(ovf, 'Annotation')).toBe('made by a test');
    const resourceTypes = texts(ovf, 'ResourceType');
    expect(resourceTypes.filter((t) => t === '17')).toHaveLength(2);
    expect(resourceTypes).toEqual(expect.arrayContaining(['3', '4', '6', '10']));

    // The stray ovfFiles entry matches no disk and is reported, not silently used.
    expect(inners(xml, 'warning')).toHaveLength(1);
    expect(decodeXml(xml)).toContain('/vm-0/disk:9');
  });

  it('describes a vApp as a VirtualSystemCollection of its VMs', async () => {
    const app = inventory.vApps[0];
    if (!app) throw new Error('no vApp');
    const { ovf } = await createDescriptor(app.moref, 'VirtualApp', '');
    expect(attr(ovf, 'VirtualSystemCollection', 'id')).toBe('exported');
    expect(elements(ovf, 'VirtualSystem')).toHaveLength(app.vms.length);
    expect(elements(ovf, 'Disk')).toHaveLength(2 * app.vms.length);
    expect(elements(ovf, 'File')).toHaveLength(0);
  });
});
