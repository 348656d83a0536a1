// Import on the wire against the shared simulator: a descriptor from CreateDescriptor goes
// through CreateImportSpec and ImportVApp, the disks are uploaded to the lease's device URLs,
// and the bytes that arrived are compared with what was sent.

import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faultOf, sharedSession } from './peer-session.ts';
import {
  deviceHref,
  elements,
  escapeXml,
  httpRequest,
  inners,
  leaseCall,
  leaseSnapshot,
  moRef,
  type RawSoapClient,
  text,
  waitLease,
} from './raw-soap.ts';
import type { Inventory, SimulatorHandle } from './simulator.ts';

let sim: SimulatorHandle;
let sdkUrl: string;
let uploadsDir: string;
let client: RawSoapClient;
let inventory: Inventory;
let pool: string;
let datastore: string;
let vmNetwork: string;

async function findByInventoryPath(path: string): Promise<string> {
  const xml = await client.call(
    `<FindByInventoryPath xmlns="urn:vim25">${moRef('_this', 'SearchIndex', 'SearchIndex')}` +
      `<inventoryPath>${escapeXml(path)}</inventoryPath></FindByInventoryPath>`,
  );
  const ref = text(xml, 'returnval');
  if (!ref) throw new Error(`nothing at ${path}`);
  return ref;
}

async function createDescriptor(vmMoref: string, files: { deviceId: string; path: string; size: number }[]) {
  const ovfFiles = files
    .map(
      (f) =>
        `<ovfFiles><deviceId>${f.deviceId}</deviceId><path>${f.path}</path><size>${f.size}</size></ovfFiles>`,
    )
    .join('');
  const xml = await client.call(
    `<CreateDescriptor xmlns="urn:vim25">${moRef('_this', 'OvfManager', 'OvfManager')}` +
      `${moRef('obj', 'VirtualMachine', vmMoref)}<cdp>${ovfFiles}</cdp></CreateDescriptor>`,
  );
  return text(xml, 'ovfDescriptor') ?? '';
}

async function createImportSpec(descriptor: string, entityName: string): Promise<string> {
  return client.call(
    `<CreateImportSpec xmlns="urn:vim25">${moRef('_this', 'OvfManager', 'OvfManager')}` +
      `<ovfDescriptor>${escapeXml(descriptor)}</ovfDescriptor>` +
      `${moRef('resourcePool', 'ResourcePool', pool)}${moRef('datastore', 'Datastore', datastore)}` +
      `<cisp><locale></locale><deploymentOption></deploymentOption><entityName>${escapeXml(entityName)}</entityName>` +
      `<networkMapping><name>DC0_DVPG0</name>${moRef('network', 'Network', vmNetwork)}</networkMapping></cisp>` +
      '</CreateImportSpec>',
  );
}

/** ImportVApp with the importSpec element of a CreateImportSpec response, pasted as <spec>. */
async function importVApp(importSpecResponse: string): Promise<string> {
  const spec = elements(importSpecResponse, 'importSpec')[0];
  if (!spec) throw new Error('no importSpec in the response');
  const asSpec = spec.replace(/^<importSpec/, '<spec').replace(/<\/importSpec>$/, '</spec>');
  const xml = await client.call(
    `<ImportVApp xmlns="urn:vim25">${moRef('_this', 'ResourcePool', pool)}${asSpec}</ImportVApp>`,
  );
  return text(xml, 'returnval') ?? '';
}

beforeAll(async () => {
  ({ sim, client, inventory } = await sharedSession());
  sdkUrl = sim.url;
  uploadsDir = join(sim.dataDir, 'uploads');
  pool = await findByInventoryPath('DC0/host/DC0_C0/Resources');
  datastore = await findByInventoryPath('DC0/datastore/LocalDS_0');
  vmNetwork = await findByInventoryPath('DC0/network/VM Network');
});
afterAll(async () => {
  await sim?.stop();
});

describe('import through ImportVApp', () => {
  it('stores the uploaded bytes of every disk byte for byte', async () => {
    const source = inventory.vms.find((v) => v.name === 'DC0_H0_VM1');
    if (!source) throw new Error('no source VM');
    // What a client would upload: different from the source disks, and of odd sizes.
    const payloads = [randomBytes(300_001), randomBytes(123_457)];
    const descriptor = await createDescriptor(
      source.moref,
      source.disks.map((d, i) => ({
        deviceId: d.deviceKey,
        path: `imported-disk${i}.vmdk`,
        size: payloads[i]?.length ?? 0,
      })),
    );

    const specXml = await createImportSpec(descriptor, 'imported-from-descriptor');
    expect(inners(specXml, 'error')).toEqual([]);
    const fileItems = inners(specXml, 'fileItem').map((f) => ({
      deviceId: text(f, 'deviceId') ?? '',
      path: text(f, 'path') ?? '',
      size: Number(text(f, 'size')),
    }));
    expect(fileItems.map((f) => f.path)).toEqual(['imported-disk0.vmdk', 'imported-disk1.vmdk']);

    const lease = await importVApp(specXml);
    const snap = await waitLease(client, lease);
    expect(snap.state).toBe('ready');
    expect(snap.entity).toMatch(/^vm-/);
    expect(snap.deviceUrls).toHaveLength(2);

    const sent = new Map<string, Buffer>();
    for (const [i, item] of fileItems.entries()) {
      const device = snap.deviceUrls.find((d) => d.importKey === item.deviceId);
      if (!device) throw new Error(`no device URL for ${item.deviceId}`);
      const payload = payloads[i] ?? Buffer.alloc(0);
      const res = await httpRequest(deviceHref(sdkUrl, device.url), {
        method: 'POST',
        headers: {
          'Content-Type': 'application/x-vnd.vmware-streamVmdk',
          'Content-Length': String(payload.length),
        },
        body: payload,
      });
      expect(res.status).toBe(200);
      await client.call(leaseCall('HttpNfcLeaseProgress', lease, `<percent>${50 * (i + 1)}</percent>`));
      const name = new URL(device.url.replace('*', 'x')).pathname.split('/').pop() ?? '';
      sent.set(name, payload);
    }

    for (const [name, payload] of sent) {
      const arrived = await readFile(join(uploadsDir, lease, name));
      expect(arrived.equals(payload)).toBe(true);
    }

    const manifest = await client.call(leaseCall('HttpNfcLeaseGetManifest', lease));
    expect(inners(manifest, 'returnval')).toHaveLength(2);

    await client.call(leaseCall('HttpNfcLeaseComplete', lease));
    expect((await leaseSnapshot(client, lease)).state).toBe('done');
    // The lease is over: its device URLs take no more data.
    const first = snap.deviceUrls[0];
    if (!first) throw new Error('no device URL');
    const late = await httpRequest(deviceHref(sdkUrl, first.url), {
      method: 'PUT',
      body: Buffer.from('late'),
    });
    expect(late.status).toBe(404);

    // The imported VM exists under the requested name.
    const entity = snap.entity ?? '';
    const props = await client.properties('VirtualMachine', entity, ['name']);
    expect(text(props.get('name') ?? '', 'val')).toBe('imported-from-descriptor');
  });

  it('accepts a small hand-written OVF and a PUT upload', async () => {
    const ovf = `<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
  xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
  <References><File ovf:href="tiny.vmdk" ovf:id="f1" ovf:size="5"/></References>
  <DiskSection><Info>disks</Info><Disk ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="d1" ovf:fileRef="f1"/></DiskSection>
  <VirtualSystem ovf:id="tiny"><Info>vm</Info>
    <VirtualHardwareSection><Info>hw</Info>
      <System><vssd:ElementName>Virtual Hardware Family</vssd:ElementName><vssd:InstanceID>0</vssd:InstanceID><vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType></System>
      <Item><rasd:ElementName>scsi</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceSubType>lsilogic</rasd:ResourceSubType><rasd:ResourceType>6</rasd:ResourceType></Item>
      <Item><rasd:ElementName>disk</rasd:ElementName><rasd:HostResource>ovf:/disk/d1</rasd:HostResource><rasd:InstanceID>2</rasd:InstanceID><rasd:Parent>1</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>`;
    // Without <System> govmomi's CreateImportSpec would crash; the peer answers with a fault.
    const noSystem = ovf.replace(/<System>.*<\/System>/, '');
    await expect(createImportSpec(noSystem, 'tiny-import')).rejects.toMatchObject({
      faultType: 'InvalidArgument',
    });

    const specXml = await createImportSpec(ovf, 'tiny-import');
    const lease = await importVApp(specXml);
    const snap = await waitLease(client, lease);
    const device = snap.deviceUrls[0];
    if (!device) throw new Error('no device URL');
    const res = await httpRequest(deviceHref(sdkUrl, device.url), {
      method: 'PUT',
      headers: { Overwrite: 't' },
      body: Buffer.from('hello'),
    });
    expect(res.status).toBe(200);
    const name = device.url.split('/').pop() ?? '';
    expect((await readFile(join(uploadsDir, lease, name))).toString()).toBe('hello');
    await client.call(leaseCall('HttpNfcLeaseComplete', lease));
  });

  it('an aborted import lease takes no more uploads', async () => {
    const source = inventory.vms.find((v) => v.name === 'DC0_C0_RP0_VM0');
    if (!source) throw new Error('no source VM');
    const descriptor = await createDescriptor(
      source.moref,
      source.disks.map((d, i) => ({ deviceId: d.deviceKey, path: `aborted-${i}.vmdk`, size: 10 })),
    );
    const lease = await importVApp(await createImportSpec(descriptor, 'aborted-import'));
    const snap = await waitLease(client, lease);
    await client.call(leaseCall('HttpNfcLeaseAbort', lease));
    const device = snap.deviceUrls[0];
    if (!device) throw new Error('no device URL');
    const res = await httpRequest(deviceHref(sdkUrl, device.url), { method: 'POST', body: Buffer.from('x') });
    expect(res.status).toBe(404);
    expect((await leaseSnapshot(client, lease)).state).toBe('error');
  });

  it('answers a vApp descriptor with NotSupported instead of crashing', async () => {
    const app = inventory.vApps[0];
    if (!app) throw new Error('no vApp');
    const xml = await client.call(
      `<CreateDescriptor xmlns="urn:vim25">${moRef('_this', 'OvfManager', 'OvfManager')}` +
        `${moRef('obj', 'VirtualApp', app.moref)}<cdp></cdp></CreateDescriptor>`,
    );
    const descriptor = text(xml, 'ovfDescriptor') ?? '';
    const fault = await faultOf(createImportSpec(descriptor, 'a-vapp'));
    expect(fault.faultType).toBe('NotSupported');
    // The simulator still answers.
    await client.call(
      `<CurrentTime xmlns="urn:vim25">${moRef('_this', 'ServiceInstance', 'ServiceInstance')}</CurrentTime>`,
    );
  });
});
