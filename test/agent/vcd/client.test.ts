import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { VcdClient, VcdError } from '../../../agent/vcd/client.ts';
import { parseVcdXml, type VcdNode } from '../../../agent/vcd/wire/xml.ts';
import { type FakeVcdOptions, type RunningFakeVcd, startFakeVcd } from '../../peers/vcd/fake-vcd.ts';
import { type Inventory, type RunningSimulator, startSimulator } from '../../peers/vsphere/simulator.ts';

// The vCloud Director client against the fake vCD, attached to a running vSphere simulator.

let sim: RunningSimulator;
let inventory: Inventory;
const fakes: RunningFakeVcd[] = [];
const clients: VcdClient[] = [];

const moref = (name: string) => inventory.vms.find((v) => v.name === name)!.moref;

async function fake(extra: Partial<FakeVcdOptions> = {}): Promise<RunningFakeVcd> {
  const f = await startFakeVcd({
    username: 'admin@System',
    password: 'secret',
    vcenter: { url: sim.url, username: sim.username, password: sim.password },
    seed: {
      orgs: [
        {
          name: 'acme',
          vdcs: [{ name: 'acme-vdc', networks: ['acme-net', 'acme-dmz'] }],
          catalogs: ['acme-catalog'],
        },
      ],
    },
    taskStepMs: 10,
    ...extra,
  });
  fakes.push(f);
  return f;
}

async function connect(f: RunningFakeVcd, extra: { maxVersion?: string; password?: string } = {}) {
  const c = await VcdClient.connect({
    url: f.url,
    username: 'admin@System',
    password: extra.password ?? 'secret',
    trust: { kind: 'system' },
    taskPollMs: 10,
    ...(extra.maxVersion ? { maxVersion: extra.maxVersion } : {}),
  });
  clients.push(c);
  return c;
}

/** A fake vCD (with these options) and a client connected to it. */
async function session(extra: Partial<FakeVcdOptions> = {}): Promise<{ f: RunningFakeVcd; c: VcdClient }> {
  const f = await fake(extra);
  return { f, c: await connect(f) };
}

/**
 * Imports a simulator VM into a catalog as a vApp template (default: the template DC0_C0_TPL0 as
 * "golden" into acme-catalog of acme-vdc) and resolves with the template's href.
 */
async function importTemplate(
  c: VcdClient,
  { vm = 'DC0_C0_TPL0', name = 'golden', vdc = 'acme-vdc', catalog = 'acme-catalog' } = {},
): Promise<string> {
  const r = await c.importVm({ vmMoRef: moref(vm), name, vdc, placement: 'catalog', catalog });
  if (!r.templateHref) throw new Error(`importing ${vm} into ${catalog} gave no template href`);
  return r.templateHref;
}

/** Imports DC0_C0_APP0_VM0 as a new vApp, then DC0_C0_APP0_VM1 into that vApp (placement existing-vapp). */
async function importIntoOneVApp(c: VcdClient, vdc: string, vapp: string) {
  const first = await c.importVm({
    vmMoRef: moref('DC0_C0_APP0_VM0'),
    name: 'app-vm0',
    vdc,
    placement: 'vapp',
    vapp,
  });
  const second = await c.importVm({
    vmMoRef: moref('DC0_C0_APP0_VM1'),
    name: 'app-vm1',
    vdc,
    placement: 'existing-vapp',
    vapp,
  });
  return { first, second };
}

beforeAll(async () => {
  sim = await startSimulator({ binary: inject('vcsimBinary') });
  inventory = await sim.readInventory();
});

afterEach(async () => {
  for (const c of clients.splice(0)) await c.logout();
  for (const f of fakes.splice(0)) await f.stop();
});

afterAll(async () => {
  await sim?.stop();
});

describe('VcdClient.connect', () => {
  it('negotiates the highest common API version and opens a provider session', async () => {
    const { f, c } = await session({ apiVersions: ['36.0', '37.0', '38.0', '39.0'] });
    expect(c.apiVersion).toBe('38.0');
    expect(f.state().sessions).toBe(1);
    const older = await connect(f, { maxVersion: '37.0' });
    expect(older.apiVersion).toBe('37.0');
    expect(
      f
        .state()
        .calls.filter((x) => x.path === '/cloudapi/1.0.0/sessions/provider')
        .map((x) => x.status),
    ).toEqual([200, 200]);
    await c.logout();
    expect(f.state().sessions).toBe(1);
  });

  it('says clearly when no version is in common', async () => {
    const f = await fake({ apiVersions: ['27.0', '29.0'] });
    const err = await connect(f).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VcdError);
    expect(err).toMatchObject({ code: 'VCD_VERSION' });
    expect((err as Error).message).toMatch(
      /offers API versions 27.0, 29.0; this agent needs one between 33.0 and 38.0/,
    );
  });

  it('reports a wrong password as a login refusal naming the user', async () => {
    const f = await fake();
    const err = await connect(f, { password: 'wrong' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VcdError);
    expect(err).toMatchObject({ code: 'VCD_AUTH', status: 401 });
    expect((err as Error).message).toMatch(/refused the login of admin@System: wrong user name or password/);
    expect(f.state().sessions).toBe(0);
  });
  it('refuses a tenant (non-System) user with a clear reason', async () => {
    const f = await fake({ tenantUsers: [{ username: 'alice@acme', password: 'pw' }] });
    const err = await VcdClient.connect({
      url: f.url,
      username: 'alice@acme',
      password: 'pw',
      trust: { kind: 'system' },
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'VCD_AUTH', status: 403 });
    expect((err as Error).message).toMatch(/alice@acme is not a provider user/);
  });
});

describe('VcdClient look-ups', () => {
  it('finds VDCs, catalogs, networks, vApps and the vCenter registration', async () => {
    const { f, c } = await session();
    const vdc = await c.findVdc('acme-vdc');
    expect(vdc.href).toMatch(/\/api\/vdc\//);
    expect((await c.findCatalog('acme-catalog')).name).toBe('acme-catalog');
    expect((await c.findOrgVdcNetwork('acme-vdc', 'acme-dmz')).attrs.vdcName).toBe('acme-vdc');
    expect(await c.findVApp(vdc, 'none-yet')).toBeUndefined();
    expect((await c.vimServer()).href).toContain(f.vimServerId);
    await expect(c.findVdc('nope')).rejects.toMatchObject({
      code: 'VCD_NOT_FOUND',
      message: expect.stringContaining('"nope"'),
    });
    await expect(c.findOrgVdcNetwork(vdc, 'nope')).rejects.toMatchObject({ code: 'VCD_NOT_FOUND' });
  });
});

describe('VcdClient.importVm', () => {
  it('imports a VM as a vApp, connects it to a network, deploys and powers it on', async () => {
    const { f, c } = await session();
    const vm = moref('DC0_H0_VM1');
    const r = await c.importVm({
      vmMoRef: vm,
      name: 'web-01',
      vdc: 'acme-vdc',
      placement: 'vapp',
      sourceMove: true,
    });
    expect(r.vappHref).toMatch(/\/api\/vApp\/vapp-/);
    expect(r.vmHref).toMatch(/\/api\/vApp\/vm-/);
    let s = f.state();
    expect(s.vapps).toMatchObject([{ name: 'web-01', vdc: 'acme-vdc', status: 8, deployed: false }]);
    expect(s.vapps[0]!.vms).toMatchObject([{ name: 'web-01', moRef: vm, poweredOn: false }]);
    const nicCount = s.vapps[0]!.vms[0]!.nics.length;
    expect(nicCount).toBeGreaterThan(0);
    expect(s.vapps[0]!.vms[0]!.nics[0]).toMatchObject({ network: 'none', isConnected: false });

    const nics = await c.connectNetwork(r.vmHref!, 'acme-net', { isConnected: true, allocation: 'POOL' });
    expect(nics).toHaveLength(nicCount);
    s = f.state();
    expect(s.vapps[0]!.networks).toEqual([{ name: 'acme-net', parent: 'acme-net', fenceMode: 'bridged' }]);
    expect(
      s.vapps[0]!.vms[0]!.nics.every(
        (n) => n.network === 'acme-net' && n.isConnected && n.allocation === 'POOL',
      ),
    ).toBe(true);

    // A second network is added next to the first, not instead of it.
    await c.connectNetwork(r.vmHref!, 'acme-dmz', { allocation: 'DHCP', nicIndex: 0 });
    expect(f.state().vapps[0]!.networks.map((n) => n.name)).toEqual(['acme-net', 'acme-dmz']);

    await c.deploy(r.vappHref!, { powerOn: false });
    s = f.state();
    expect(s.vapps[0]).toMatchObject({ deployed: true, status: 8 });
    await c.powerOn(r.vappHref!);
    s = f.state();
    expect(s.vapps[0]).toMatchObject({ deployed: true, status: 4 });
    expect(s.vapps[0]!.vms[0]!.poweredOn).toBe(true);
    expect((await c.getVApp(r.vappHref!)).status).toBe(4);
    expect(s.tasks.every((t) => t.status === 'success')).toBe(true);
    expect(s.calls.find((x) => x.path.endsWith('/importVmAsVApp'))).toMatchObject({
      status: 201,
      contentType: 'application/vnd.vmware.admin.importVmAsVAppParams+xml',
    });
  });

  it('deploys with powerOn in one step', async () => {
    const { f, c } = await session();
    const r = await c.importVm({
      vmMoRef: moref('DC0_C0_RP0_VM1'),
      name: 'db-01',
      vdc: 'acme-vdc',
      placement: 'vapp',
    });
    await c.deploy(r.vappHref!, { powerOn: true });
    expect(f.state().vapps[0]).toMatchObject({ deployed: true, status: 4, vms: [{ poweredOn: true }] });
  });

  it('imports a second VM into an existing vApp', async () => {
    const { f, c } = await session();
    const { first, second } = await importIntoOneVApp(c, 'acme-vdc', 'app');
    expect(second.vappHref).toBe(first.vappHref);
    expect(second.vmHref).toBeDefined();
    expect(second.vmHref).not.toBe(first.vmHref);
    const s = f.state();
    expect(s.vapps).toHaveLength(1);
    expect(s.vapps[0]!.vms.map((v) => v.name)).toEqual(['app-vm0', 'app-vm1']);
    expect(s.tasks.find((t) => t.operationName === 'vdcImportVmIntoExistingVApp')).toMatchObject({
      status: 'success',
      owner: 'app',
    });
  });

  it('imports a template into a catalog', async () => {
    const { f, c } = await session();
    const r = await c.importVm({
      vmMoRef: moref('DC0_C0_TPL0'),
      name: 'golden',
      vdc: 'acme-vdc',
      placement: 'catalog',
      catalog: 'acme-catalog',
    });
    expect(r.templateHref).toMatch(/\/api\/vAppTemplate\/vappTemplate-/);
    expect(r.vmHref).toBeDefined();
    expect(f.state().templates).toMatchObject([
      {
        name: 'golden',
        catalog: 'acme-catalog',
        vdc: 'acme-vdc',
        status: 8,
        vms: [{ moRef: moref('DC0_C0_TPL0') }],
      },
    ]);
  });

  it('reports a failed import task per item, naming the VM and the reason', async () => {
    const bad = moref('DC0_H0_VM0');
    const { f, c } = await session({ failImportOf: [bad] });
    const err = await c
      .importVm({ vmMoRef: bad, name: 'broken', vdc: 'acme-vdc', placement: 'vapp' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VcdError);
    expect(err).toMatchObject({ code: 'VCD_TASK', minorErrorCode: 'INTERNAL_SERVER_ERROR' });
    expect((err as Error).message).toContain(`VM ${bad} ("broken")`);
    expect((err as Error).message).toContain('disks could not be relocated');
    expect(f.state().vapps).toEqual([]);
    // Another VM still imports: one failure does not hide the rest.
    await c.importVm({ vmMoRef: moref('DC0_H0_VM1'), name: 'fine', vdc: 'acme-vdc', placement: 'vapp' });
    expect(f.state().vapps.map((a) => a.name)).toEqual(['fine']);
  });

  it('passes on vCD refusals with the VM named: unknown moref, unknown VDC, unknown vApp', async () => {
    const { c } = await session();
    const err = await c
      .importVm({ vmMoRef: 'vm-99999', name: 'ghost', vdc: 'acme-vdc', placement: 'vapp' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'VCD_ERROR', status: 400, minorErrorCode: 'BAD_REQUEST' });
    expect((err as Error).message).toMatch(/VM vm-99999 \("ghost"\).*no virtual machine vm-99999/);
    await expect(
      c.importVm({ vmMoRef: moref('DC0_H0_VM1'), name: 'x', vdc: 'nope', placement: 'vapp' }),
    ).rejects.toMatchObject({ code: 'VCD_NOT_FOUND' });
    await expect(
      c.importVm({
        vmMoRef: moref('DC0_H0_VM1'),
        name: 'x',
        vdc: 'acme-vdc',
        placement: 'existing-vapp',
        vapp: 'nope',
      }),
    ).rejects.toMatchObject({ code: 'VCD_NOT_FOUND', message: expect.stringContaining('"nope"') });
  });
});

describe('VcdClient.instantiateVAppTemplate', () => {
  it('creates a vApp from a catalog template on the network, powered off, then connects, deploys and powers it on', async () => {
    const { f, c } = await session();
    const templateHref = await importTemplate(c);
    const r = await c.instantiateVAppTemplate({
      templateHref,
      vdc: 'acme-vdc',
      name: 'golden',
      network: 'acme-net',
      description: 'from the golden template',
    });
    expect((await c.getVApp(r.vappHref)).description).toBe('from the golden template');
    expect(r.vappHref).toMatch(/\/api\/vApp\/vapp-/);
    const created = f.state().vapps.find((a) => a.href === r.vappHref)!;
    // Sent deploy="false" powerOn="false": the server's defaults (true) would start it unconnected.
    expect(created).toMatchObject({
      name: 'golden',
      deployed: false,
      status: 8,
      networks: [{ name: 'acme-net', parent: 'acme-net', fenceMode: 'bridged' }],
    });
    expect(r.vmHrefs).toEqual(created.vms.map((v) => v.href));
    expect(f.state().calls.find((x) => x.path.endsWith('/action/instantiateVAppTemplate'))).toMatchObject({
      status: 201,
      contentType: 'application/vnd.vmware.vcloud.instantiateVAppTemplateParams+xml',
    });

    for (const vm of r.vmHrefs) await c.connectNetwork(vm, 'acme-net');
    await c.deploy(r.vappHref, { powerOn: true });
    const after = f.state().vapps.find((a) => a.href === r.vappHref)!;
    expect(after).toMatchObject({ deployed: true, status: 4 });
    expect(
      after.vms.every((v) => v.poweredOn && v.nics.every((n) => n.network === 'acme-net' && n.isConnected)),
    ).toBe(true);
    // The template stays in the catalog.
    expect(f.state().templates.map((t) => t.name)).toEqual(['golden']);
  });

  it('names the template and passes on vCD refusals and failed tasks', async () => {
    const { f, c } = await session({ failInstantiateOf: ['broken'] });
    const good = await importTemplate(c);
    await c.instantiateVAppTemplate({ templateHref: good, vdc: 'acme-vdc', name: 'taken' });
    const dup = await c
      .instantiateVAppTemplate({ templateHref: good, vdc: 'acme-vdc', name: 'taken' })
      .catch((e: unknown) => e);
    expect(dup).toBeInstanceOf(VcdError);
    expect(dup).toMatchObject({ status: 400, minorErrorCode: 'DUPLICATE_NAME' });
    expect((dup as Error).message).toContain(`Instantiating vApp template ${good} as vApp "taken" failed`);

    const ghost = good.replace(/vappTemplate-.*/, 'vappTemplate-00000000-0000-0000-0000-000000000000');
    await expect(
      c.instantiateVAppTemplate({ templateHref: ghost, vdc: 'acme-vdc', name: 'ghost' }),
    ).rejects.toMatchObject({ status: 403, minorErrorCode: 'ACCESS_TO_RESOURCE_IS_FORBIDDEN' });
    await expect(
      c.instantiateVAppTemplate({ templateHref: good, vdc: 'acme-vdc', name: 'x', network: 'nope' }),
    ).rejects.toMatchObject({ code: 'VCD_NOT_FOUND', message: expect.stringContaining('"nope"') });

    const bad = await importTemplate(c, { vm: 'DC0_H0_VM0', name: 'broken' });
    const failed = await c
      .instantiateVAppTemplate({ templateHref: bad, vdc: 'acme-vdc', name: 'from-broken' })
      .catch((e: unknown) => e);
    expect(failed).toMatchObject({ code: 'VCD_TASK' });
    expect((failed as Error).message).toContain('could not be cloned');
    expect(f.state().vapps.map((a) => a.name)).toEqual(['taken']);
  });
});

describe('VcdClient.instantiateVAppTemplate across organizations', () => {
  it("refuses (403) a template of another organization's catalog, as if it did not exist", async () => {
    const { f, c } = await session({
      seed: {
        orgs: [
          { name: 'acme', vdcs: [{ name: 'acme-vdc' }], catalogs: ['acme-catalog'] },
          { name: 'globex', vdcs: [{ name: 'globex-vdc' }] },
        ],
      },
    });
    const templateHref = await importTemplate(c);
    await expect(
      c.instantiateVAppTemplate({ templateHref, vdc: 'globex-vdc', name: 'stolen' }),
    ).rejects.toMatchObject({ status: 403, minorErrorCode: 'ACCESS_TO_RESOURCE_IS_FORBIDDEN' });
    await c.instantiateVAppTemplate({ templateHref, vdc: 'acme-vdc', name: 'own' });
    expect(f.state().vapps.map((a) => [a.name, a.vdc])).toEqual([['own', 'acme-vdc']]);
  });
});

describe('VcdClient with names that need escaping in query filters (issue #17)', () => {
  it('imports into an existing vApp, connects a network and instantiates on one, all found by name and VDC href', async () => {
    const f = await fake({
      seed: {
        orgs: [
          {
            name: 'Lab Org',
            vdcs: [
              { name: 'Lab VDC', networks: ['Lab Net (dmz)', 'a(b),c;d'] },
              // Same network name in another VDC: a lookup that lost the VDC href would find two.
              { name: 'Other VDC', networks: ['Lab Net (dmz)'] },
            ],
            catalogs: ['Cat, main; v2'],
          },
        ],
      },
    });
    const c = await connect(f);
    const vapp = 'App (blue), v2; final';
    const { first, second } = await importIntoOneVApp(c, 'Lab VDC', vapp);
    expect(second.vappHref).toBe(first.vappHref);

    await c.connectNetwork(first.vmHref!, 'Lab Net (dmz)');
    await c.connectNetwork(second.vmHref!, 'a(b),c;d');
    expect(
      f
        .state()
        .vapps.find((a) => a.name === vapp)!
        .networks.map((n) => n.name),
    ).toEqual(['Lab Net (dmz)', 'a(b),c;d']);

    const templateHref = await importTemplate(c, {
      name: 'golden (v2)',
      vdc: 'Lab VDC',
      catalog: 'Cat, main; v2',
    });
    const made = await c.instantiateVAppTemplate({
      templateHref,
      vdc: 'Lab VDC',
      name: 'from golden; copy',
      network: 'Lab Net (dmz)',
    });
    expect(f.state().vapps.find((a) => a.href === made.vappHref)).toMatchObject({
      vdc: 'Lab VDC',
      networks: [{ name: 'Lab Net (dmz)', parent: 'Lab Net (dmz)', fenceMode: 'bridged' }],
    });
    expect(f.state().calls.filter((x) => x.status >= 400)).toEqual([]);
  });
});

describe('VcdClient requests, pinned to the independent clients for the same operations', () => {
  // Facts from go-vcloud-director and pyvcloud files, cited per check; the checks are our own.
  const names = (n: VcdNode | undefined) => (n?.children ?? []).map((c) => c.name);

  it('sends the paths, media types, Accept and body element order that they send', async () => {
    const { f, c } = await session();
    const r = await c.importVm({
      vmMoRef: moref('DC0_H0_VM1'),
      name: 'web-01',
      vdc: 'acme-vdc',
      placement: 'vapp',
    });
    await c.connectNetwork(r.vmHref!, 'acme-net', { allocation: 'POOL' });
    await c.deploy(r.vappHref!, { powerOn: false });
    await c.powerOn(r.vappHref!);
    const templateHref = await importTemplate(c);
    await c.instantiateVAppTemplate({
      templateHref,
      vdc: 'acme-vdc',
      name: 'copy',
      network: 'acme-net',
      description: 'a copy',
    });
    const calls = f.state().calls;
    const one = (method: string, re: RegExp) => {
      const hits = calls.filter((x) => x.method === method && re.test(x.path));
      expect(hits, `${method} ${re}`).toHaveLength(1);
      return hits[0]!;
    };

    // Accept: application/*+xml;version=<negotiated> on every /api request (go-vcloud-director
    // govcd/api.go newRequest; pyvcloud pyvcloud/vcd/client.py Client._do_request_prim).
    const api = calls.filter((x) => x.path.startsWith('/api/') && x.path !== '/api/versions');
    expect(api.length).toBeGreaterThan(10);
    expect(new Set(api.map((x) => x.accept))).toEqual(new Set(['application/*+xml;version=38.0']));

    // instantiateVAppTemplate: POST {non-admin vdc}/action/instantiateVAppTemplate (go
    // govcd/vdc.go CreateVappFromTemplate; pyvcloud pyvcloud/vcd/vdc.py instantiate_vapp posts to
    // the non-admin VDC), media type MimeInstantiateVappTemplateParams (go types/v56/constants.go) =
    // EntityType.INSTANTIATE_VAPP_TEMPLATE_PARAMS (pyvcloud client.py).
    const inst = one('POST', /^\/api\/vdc\/[0-9a-f-]+\/action\/instantiateVAppTemplate$/);
    expect(inst.contentType).toBe('application/vnd.vmware.vcloud.instantiateVAppTemplateParams+xml');
    // Body: attributes name, deploy, powerOn; Description, InstantiationParams, Source,
    // AllEULAsAccepted in that order (go types/v56/types.go InstantiateVAppTemplateParams; pyvcloud
    // vdc.py instantiate_vapp); the vApp network as NetworkConfigSection(Info, NetworkConfig(
    // Configuration(ParentNetwork, FenceMode))) (pyvcloud vdc.py _configure_vapp_network; go
    // types.go NetworkConfiguration).
    const params = parseVcdXml(inst.body!);
    expect(params.name).toBe('InstantiateVAppTemplateParams');
    expect(params.attrs).toMatchObject({ name: 'copy', deploy: 'false', powerOn: 'false' });
    expect(names(params)).toEqual(['Description', 'InstantiationParams', 'Source', 'AllEULAsAccepted']);
    const section = params.child('InstantiationParams')?.child('NetworkConfigSection');
    expect(names(section)).toEqual(['Info', 'NetworkConfig']);
    expect(section?.child('NetworkConfig')?.attr('networkName')).toBe('acme-net');
    expect(names(section?.child('NetworkConfig')?.child('Configuration'))).toEqual([
      'ParentNetwork',
      'FenceMode',
    ]);

    // NetworkConnectionSection: PUT {vm}/networkConnectionSection/ (go govcd/vm.go
    // UpdateNetworkConnectionSection), MimeNetworkConnectionSection = pyvcloud
    // EntityType.NETWORK_CONNECTION_SECTION; Info, PrimaryNetworkConnectionIndex, NetworkConnection*,
    // each NetworkConnectionIndex, IsConnected, MACAddress, IpAddressAllocationMode,
    // NetworkAdapterType in go types.go NetworkConnection's order.
    const nics = one('PUT', /^\/api\/vApp\/vm-[0-9a-f-]+\/networkConnectionSection\/$/);
    expect(nics.contentType).toBe('application/vnd.vmware.vcloud.networkConnectionSection+xml');
    const nicDoc = parseVcdXml(nics.body!);
    expect(names(nicDoc).slice(0, 2)).toEqual(['Info', 'PrimaryNetworkConnectionIndex']);
    expect(new Set(names(nicDoc).slice(2))).toEqual(new Set(['NetworkConnection']));
    expect(names(nicDoc.child('NetworkConnection'))).toEqual([
      'NetworkConnectionIndex',
      'IsConnected',
      'MACAddress',
      'IpAddressAllocationMode',
      'NetworkAdapterType',
    ]);

    // NetworkConfigSection: PUT {vapp}/networkConfigSection/ (go govcd/vapp.go
    // updateNetworkConfigurations). go spells the type ...networkconfigsection+xml, pyvcloud
    // (EntityType.NETWORK_CONFIG_SECTION) ...networkConfigSection+xml: media types compare
    // case-insensitively, so either.
    const nets = one('PUT', /^\/api\/vApp\/vapp-[0-9a-f-]+\/networkConfigSection\/$/);
    expect(nets.contentType?.toLowerCase()).toBe('application/vnd.vmware.vcloud.networkconfigsection+xml');
    const netDoc = parseVcdXml(nets.body!);
    expect(names(netDoc)).toEqual(['Info', 'NetworkConfig']);
    expect(names(netDoc.child('NetworkConfig')?.child('Configuration'))).toEqual([
      'ParentNetwork',
      'FenceMode',
    ]);

    // deploy: POST {vapp}/action/deploy with DeployVAppParams, powerOn an attribute, no children
    // (go govcd/vapp.go Deploy, types.go DeployVAppParams; pyvcloud vapp.py deploy, EntityType.DEPLOY).
    const deploy = one('POST', /^\/api\/vApp\/vapp-[0-9a-f-]+\/action\/deploy$/);
    expect(deploy.contentType).toBe('application/vnd.vmware.vcloud.deployVAppParams+xml');
    const deployDoc = parseVcdXml(deploy.body!);
    expect(deployDoc.name).toBe('DeployVAppParams');
    expect(deployDoc.attrs.powerOn).toBe('false');
    expect(deployDoc.children).toEqual([]);

    // power on: POST {vapp}/power/action/powerOn without a body (go govcd/vapp.go PowerOn;
    // pyvcloud vapp.py power_on posts the power:powerOn link with no contents).
    const power = one('POST', /^\/api\/vApp\/vapp-[0-9a-f-]+\/power\/action\/powerOn$/);
    expect(power.body).toBeUndefined();
    expect(power.contentType).toBeUndefined();

    // Neither independent client imports VMs from vCenter: the import requests follow the vCD API
    // reference only (importVmAsVApp consumes application/vnd.vmware.admin.importVmAsVAppParams+xml;
    // vmwextensions.xsd order VmName, VmMoRef, Vdc), which the fake checks.
    const imp = one('POST', /\/importVmAsVApp$/);
    expect(imp.contentType).toBe('application/vnd.vmware.admin.importVmAsVAppParams+xml');
    expect(names(parseVcdXml(imp.body!))).toEqual(['VmName', 'VmMoRef', 'Vdc']);
  });
});

describe('VcdClient waits for every task embedded in a created entity', () => {
  it('returns only when the second embedded task has ended too', async () => {
    const { f, c } = await session({ companionTask: { operationName: 'vappUpdateLease' } });
    await c.importVm({ vmMoRef: moref('DC0_H0_VM1'), name: 'web-01', vdc: 'acme-vdc', placement: 'vapp' });
    expect(f.state().tasks.map((t) => [t.operationName, t.status])).toEqual([
      ['vdcImportVmAsVApp', 'success'],
      ['vappUpdateLease', 'success'],
    ]);
    const templateHref = await importTemplate(c);
    await c.instantiateVAppTemplate({ templateHref, vdc: 'acme-vdc', name: 'copy' });
    expect(f.state().tasks.filter((t) => t.status !== 'success')).toEqual([]);
  });

  it('reports a failure of the second embedded task by its place, operationName and href', async () => {
    const { f, c } = await session({ companionTask: { operationName: 'vappUpdateLease', fail: true } });
    const err = await c
      .importVm({ vmMoRef: moref('DC0_H0_VM1'), name: 'web-01', vdc: 'acme-vdc', placement: 'vapp' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VcdError);
    expect(err).toMatchObject({ code: 'VCD_TASK', minorErrorCode: 'INTERNAL_SERVER_ERROR' });
    const second = f.state().tasks.find((t) => t.operationName === 'vappUpdateLease')!;
    expect((err as Error).message).toContain(`Task 2 of 2 (vappUpdateLease, ${second.href})`);
    expect((err as Error).message).toContain('simulated failure of the second task');
  });
});

// Issue 23, point 3: a task wait ends at its deadline and at once on an abort; an aborted wait
// asks vCD to cancel the task, which then leaves nothing half-made.
describe('VcdClient task waits that stop', () => {
  it('ends within a second of an abort with its reason, and cancels the task', async () => {
    const { f, c } = await session({ taskRunningMs: { vdcImportVmAsVApp: Number.POSITIVE_INFINITY } });
    const controller = new AbortController();
    const reason = new Error('Ctrl-C');
    setTimeout(() => controller.abort(reason), 200);
    const started = Date.now();
    const err = await c
      .importVm({
        vmMoRef: moref('DC0_H0_VM1'),
        name: 'web-01',
        vdc: 'acme-vdc',
        placement: 'vapp',
        signal: controller.signal,
      })
      .catch((e: unknown) => e);
    expect(err).toBe(reason);
    expect(Date.now() - started).toBeLessThan(1_200);
    const task = f.state().tasks.find((t) => t.operationName === 'vdcImportVmAsVApp')!;
    expect(task.status).toBe('canceled');
    expect(f.state().vapps).toEqual([]);
    expect(f.state().calls.filter((call) => call.path.endsWith('/action/cancel'))).toHaveLength(1);
    // The VM is free for the next import.
    f.setTaskRunningMs({});
    await c.importVm({ vmMoRef: moref('DC0_H0_VM1'), name: 'web-01', vdc: 'acme-vdc', placement: 'vapp' });
    expect(f.state().vapps.map((a) => a.name)).toEqual(['web-01']);
  });

  it('gives up at its deadline with VCD_TIMEOUT naming the task and its status', async () => {
    const { c } = await session({ taskRunningMs: { vdcImportVmAsVApp: Number.POSITIVE_INFINITY } });
    const err = await c
      .importVm({
        vmMoRef: moref('DC0_H0_VM1'),
        name: 'web-01',
        vdc: 'acme-vdc',
        placement: 'vapp',
        timeoutMs: 300,
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VcdError);
    expect(err).toMatchObject({ code: 'VCD_TIMEOUT' });
    expect((err as Error).message).toMatch(/task .*\/api\/task\/.* still running after 300 ms/);
  });

  it('cuts a call under way on an abort', async () => {
    const { c } = await session();
    const reason = new Error('stop');
    await expect(c.findVdc('acme-vdc', { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });
});
