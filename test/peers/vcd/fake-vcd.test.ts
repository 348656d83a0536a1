import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type RunningSimulator, startSimulator } from '../vsphere/simulator.ts';
import { type RunningFakeVcd, startFakeVcd } from './fake-vcd.ts';

// The fake vCloud Director on the wire: raw HTTP requests written by hand, answers read with
// regular expressions, so that these tests see exactly what a client would.

const VMEXT = 'http://www.vmware.com/vcloud/extension/v1.5';

let sim: RunningSimulator;
let vcd: RunningFakeVcd;
let vmMoRef: string;

async function call(
  method: string,
  path: string,
  init: { headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(`${vcd.url}${path}`, { method, headers: init.headers, body: init.body });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

const attr = (xml: string, element: string, name: string): string | undefined =>
  new RegExp(`<(?:\\w+:)?${element}\\b[^>]*\\s${name}="([^"]*)"`).exec(xml)?.[1];

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function login(): Promise<string> {
  const r = await call('POST', '/cloudapi/1.0.0/sessions/provider', {
    headers: { Accept: 'application/json;version=38.0', Authorization: basic('admin@System', 'secret') },
  });
  expect(r.status).toBe(200);
  return r.headers.get('x-vmware-vcloud-access-token')!;
}

const xmlHeaders = (token: string, contentType?: string) => ({
  Accept: 'application/*+xml;version=38.0',
  Authorization: `Bearer ${token}`,
  ...(contentType ? { 'Content-Type': contentType } : {}),
});

beforeAll(async () => {
  sim = await startSimulator({ binary: inject('vcsimBinary') });
  const inv = await sim.readInventory();
  vmMoRef = inv.vms.find((v) => v.name === 'DC0_H0_VM1')!.moref;
  vcd = await startFakeVcd({
    username: 'admin@System',
    password: 'secret',
    tenantUsers: [{ username: 'alice@acme', password: 'alice-pw' }],
    vcenter: { url: sim.url, username: sim.username, password: sim.password },
    apiVersions: ['36.0', '37.0', '38.0'],
    taskStepMs: 20,
  });
});

afterAll(async () => {
  await vcd?.stop();
  await sim?.stop();
});

describe('fake vCD: versions and sessions', () => {
  it('lists its versions without authentication', async () => {
    const r = await call('GET', '/api/versions', { headers: { Accept: 'application/*+xml' } });
    expect(r.status).toBe(200);
    expect(r.text).toContain('<SupportedVersions xmlns="http://www.vmware.com/vcloud/versions">');
    expect([...r.text.matchAll(/<Version>([^<]+)<\/Version>/g)].map((m) => m[1])).toEqual([
      '36.0',
      '37.0',
      '38.0',
    ]);
    expect(r.text).toContain('/cloudapi/1.0.0/sessions/provider</ProviderLoginUrl>');
  });

  it('opens a provider session for user@System and refuses others', async () => {
    const accept = { Accept: 'application/json;version=38.0' };
    const wrong = await call('POST', '/cloudapi/1.0.0/sessions/provider', {
      headers: { ...accept, Authorization: basic('admin@System', 'nope') },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('x-vmware-vcloud-access-token')).toBeNull();
    const none = await call('POST', '/cloudapi/1.0.0/sessions/provider', { headers: accept });
    expect(none.status).toBe(401);
    const tenant = await call('POST', '/cloudapi/1.0.0/sessions/provider', {
      headers: { ...accept, Authorization: basic('alice@acme', 'alice-pw') },
    });
    expect(tenant.status).toBe(403);
    const ok = await call('POST', '/cloudapi/1.0.0/sessions/provider', {
      headers: { ...accept, Authorization: basic('admin@System', 'secret') },
    });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-vmware-vcloud-access-token')).toMatch(/^[0-9a-f]{32}$/);
    expect(JSON.parse(ok.text)).toMatchObject({ org: { name: 'System' } });
  });

  it('answers 406 to an API version it does not support', async () => {
    const r = await call('POST', '/cloudapi/1.0.0/sessions/provider', {
      headers: { Accept: 'application/json;version=20.0', Authorization: basic('admin@System', 'secret') },
    });
    expect(r.status).toBe(406);
    const token = await login();
    const q = await call('GET', '/api/query?type=adminOrgVdc', {
      headers: { Accept: 'application/*+xml;version=39.0', Authorization: `Bearer ${token}` },
    });
    expect(q.status).toBe(406);
    expect(attr(q.text, 'Error', 'majorErrorCode')).toBe('406');
  });

  it('needs a Bearer token on /api and says so with an Error document', async () => {
    const r = await call('GET', '/api/query?type=adminOrgVdc', {
      headers: { Accept: 'application/*+xml;version=38.0' },
    });
    expect(r.status).toBe(401);
    expect(r.text).toMatch(/<Error xmlns="http:\/\/www.vmware.com\/vcloud\/v1.5"/);
    expect(attr(r.text, 'Error', 'majorErrorCode')).toBe('401');
    const bogus = await call('GET', '/api/query?type=adminOrgVdc', { headers: xmlHeaders('0'.repeat(32)) });
    expect(bogus.status).toBe(401);
  });

  it('answers the query service for the seeded entities', async () => {
    const token = await login();
    const r = await call('GET', '/api/query?type=adminOrgVdc&format=records&filter=name==acme-vdc', {
      headers: xmlHeaders(token),
    });
    expect(r.status).toBe(200);
    expect(attr(r.text, 'QueryResultRecords', 'total')).toBe('1');
    expect(attr(r.text, 'AdminVdcRecord', 'orgName')).toBe('acme');
    const none = await call('GET', '/api/query?type=adminOrgVdc&filter=name==nope', {
      headers: xmlHeaders(token),
    });
    expect(attr(none.text, 'QueryResultRecords', 'total')).toBe('0');
    const badType = await call('GET', '/api/query?type=nonsense', { headers: xmlHeaders(token) });
    expect(badType.status).toBe(400);
    expect(attr(badType.text, 'Error', 'minorErrorCode')).toBe('BAD_REQUEST');
  });
});

describe('fake vCD: import requests', () => {
  let token: string;
  let vdcHref: string;
  let importUrl: string;
  const media = 'application/vnd.vmware.admin.importVmAsVAppParams+xml';
  const params = (inner: string, name = 'wire-vapp') =>
    `<?xml version="1.0" encoding="UTF-8"?><vmext:ImportVmAsVAppParams xmlns:vmext="${VMEXT}" name="${name}" sourceMove="true">${inner}</vmext:ImportVmAsVAppParams>`;

  beforeAll(async () => {
    token = await login();
    const q = await call('GET', '/api/query?type=adminOrgVdc&filter=name==acme-vdc', {
      headers: xmlHeaders(token),
    });
    vdcHref = attr(q.text, 'AdminVdcRecord', 'href')!;
    const refs = await call('GET', '/api/admin/extension/vimServerReferences', {
      headers: xmlHeaders(token),
    });
    expect(refs.status).toBe(200);
    importUrl = `${new URL(attr(refs.text, 'VimServerReference', 'href')!).pathname}/importVmAsVApp`;
  });

  const post = (body: string, contentType = media, url = importUrl) =>
    call('POST', url, { headers: xmlHeaders(token, contentType), body });

  const expectBadRequest = async (r: Promise<{ status: number; text: string }>, mention: RegExp) => {
    const res = await r;
    expect(res.status).toBe(400);
    expect(attr(res.text, 'Error', 'majorErrorCode')).toBe('400');
    expect(attr(res.text, 'Error', 'minorErrorCode')).toBe('BAD_REQUEST');
    expect(attr(res.text, 'Error', 'message')).toMatch(mention);
  };

  it('rejects a body that is not well-formed', async () => {
    await expectBadRequest(post('<vmext:ImportVmAsVAppParams xmlns:vmext="x"><oops>'), /not well-formed/);
  });

  it('rejects a missing VmMoRef, and elements out of schema order', async () => {
    await expectBadRequest(post(params(`<vmext:Vdc href="${vdcHref}"/>`)), /VmMoRef is required/);
    await expectBadRequest(
      post(params(`<vmext:Vdc href="${vdcHref}"/><vmext:VmMoRef>${vmMoRef}</vmext:VmMoRef>`)),
      /VmMoRef is required in ImportVmAsVAppParams before Vdc/,
    );
  });

  it('rejects an unknown Vdc href and a VM the vCenter does not have', async () => {
    await expectBadRequest(
      post(
        params(
          `<vmext:VmMoRef>${vmMoRef}</vmext:VmMoRef><vmext:Vdc href="${vcd.url}/api/vdc/00000000-0000-0000-0000-000000000000"/>`,
        ),
      ),
      /Vdc reference/,
    );
    await expectBadRequest(
      post(params(`<vmext:VmMoRef>vm-99999</vmext:VmMoRef><vmext:Vdc href="${vdcHref}"/>`)),
      /no virtual machine vm-99999/,
    );
  });

  it('refuses the wrong media type (415) and an unknown vCenter (403)', async () => {
    const body = params(`<vmext:VmMoRef>${vmMoRef}</vmext:VmMoRef><vmext:Vdc href="${vdcHref}"/>`);
    const wrongType = await post(body, 'application/xml');
    expect(wrongType.status).toBe(415);
    expect(attr(wrongType.text, 'Error', 'message')).toContain(media);
    const unknown = await post(body, media, '/api/admin/extension/vimServer/nope/importVmAsVApp');
    expect(unknown.status).toBe(403);
  });

  it('accepts a valid import: 201 with the vApp and its task, which runs to success', async () => {
    const r = await post(
      params(
        `<vmext:VmName>wire-vm</vmext:VmName><vmext:VmMoRef>${vmMoRef}</vmext:VmMoRef><vmext:Vdc href="${vdcHref}"/>`,
      ),
    );
    expect(r.status).toBe(201);
    expect(attr(r.text, 'VApp', 'status')).toBe('0');
    const taskHref = attr(r.text, 'Task', 'href')!;
    expect(attr(r.text, 'Task', 'operationName')).toBe('vdcImportVmAsVApp');
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const t = await call('GET', new URL(taskHref).pathname, { headers: xmlHeaders(token) });
      const status = attr(t.text, 'Task', 'status')!;
      seen.add(status);
      if (status === 'success') break;
      await new Promise((res) => setTimeout(res, 10));
    }
    expect([...seen]).toEqual(expect.arrayContaining(['running', 'success']));
    const state = vcd.state();
    expect(state.vapps).toMatchObject([
      { name: 'wire-vapp', vdc: 'acme-vdc', status: 8, vms: [{ name: 'wire-vm', moRef: vmMoRef }] },
    ]);
    // The same VM cannot be imported twice: vCD manages it now.
    await expectBadRequest(
      post(params(`<vmext:VmMoRef>${vmMoRef}</vmext:VmMoRef><vmext:Vdc href="${vdcHref}"/>`, 'again')),
      /already managed/,
    );
  });
});

describe('fake vCD: instantiating a vApp template', () => {
  const VCLOUD = 'http://www.vmware.com/vcloud/v1.5';
  const OVF = 'http://schemas.dmtf.org/ovf/envelope/1';
  const media = 'application/vnd.vmware.vcloud.instantiateVAppTemplateParams+xml';
  let token: string;
  let vdcHref: string;
  let netHref: string;
  let templateHref: string;
  let instantiateUrl: string;

  const waitTask = async (taskHref: string): Promise<string> => {
    for (let i = 0; i < 200; i++) {
      const t = await call('GET', new URL(taskHref).pathname, { headers: xmlHeaders(token) });
      const status = attr(t.text, 'Task', 'status')!;
      if (status !== 'queued' && status !== 'running') return status;
      await new Promise((res) => setTimeout(res, 10));
    }
    throw new Error(`task ${taskHref} did not end`);
  };

  const params = (inner: string, attrs = 'name="wire-from-tpl" deploy="false" powerOn="false"') =>
    `<?xml version="1.0" encoding="UTF-8"?><InstantiateVAppTemplateParams xmlns="${VCLOUD}" xmlns:ovf="${OVF}" ${attrs}>${inner}</InstantiateVAppTemplateParams>`;
  const networkParams = (parent: string) =>
    `<InstantiationParams><NetworkConfigSection><ovf:Info>vApp networks</ovf:Info><NetworkConfig networkName="acme-net"><Configuration><ParentNetwork href="${parent}"/><FenceMode>bridged</FenceMode></Configuration></NetworkConfig></NetworkConfigSection></InstantiationParams>`;
  const post = (body: string, contentType = media, url = instantiateUrl) =>
    call('POST', url, { headers: xmlHeaders(token, contentType), body });
  const expectError = async (
    r: Promise<{ status: number; text: string }>,
    status: number,
    minor: string,
    mention: RegExp,
  ) => {
    const res = await r;
    expect(res.status).toBe(status);
    expect(res.text).toMatch(/<Error xmlns="http:\/\/www.vmware.com\/vcloud\/v1.5"/);
    expect(attr(res.text, 'Error', 'majorErrorCode')).toBe(String(status));
    expect(attr(res.text, 'Error', 'minorErrorCode')).toBe(minor);
    expect(attr(res.text, 'Error', 'message')).toMatch(mention);
  };

  beforeAll(async () => {
    token = await login();
    const q = await call('GET', '/api/query?type=adminOrgVdc&filter=name==acme-vdc', {
      headers: xmlHeaders(token),
    });
    vdcHref = attr(q.text, 'AdminVdcRecord', 'href')!;
    instantiateUrl = `${new URL(vdcHref).pathname}/action/instantiateVAppTemplate`;
    const n = await call('GET', '/api/query?type=orgVdcNetwork&filter=name==acme-net', {
      headers: xmlHeaders(token),
    });
    netHref = attr(n.text, 'OrgVdcNetworkRecord', 'href')!;
    const c = await call('GET', '/api/query?type=adminCatalog&filter=name==acme-catalog', {
      headers: xmlHeaders(token),
    });
    const refs = await call('GET', '/api/admin/extension/vimServerReferences', {
      headers: xmlHeaders(token),
    });
    const inv = await sim.readInventory();
    const tplMoRef = inv.vms.find((v) => v.name === 'DC0_H0_VM0')!.moref;
    const r = await call(
      'POST',
      `${new URL(attr(refs.text, 'VimServerReference', 'href')!).pathname}/importVmAsVAppTemplate`,
      {
        headers: xmlHeaders(token, 'application/vnd.vmware.admin.importVmAsVAppTemplateParams+xml'),
        body: `<vmext:ImportVmAsVAppTemplateParams xmlns:vmext="${VMEXT}" xmlns:vcloud="${VCLOUD}" name="wire-tpl" sourceMove="true"><vmext:VmMoRef>${tplMoRef}</vmext:VmMoRef><vmext:Vdc href="${vdcHref}"/><vmext:Catalog href="${attr(c.text, 'AdminCatalogRecord', 'href')}"/></vmext:ImportVmAsVAppTemplateParams>`,
      },
    );
    expect(r.status).toBe(201);
    templateHref = attr(r.text, 'VAppTemplate', 'href')!;
    expect(await waitTask(attr(r.text, 'Task', 'href')!)).toBe('success');
  });

  it('refuses the wrong media type (415), an unknown VDC (403) and a body out of schema order', async () => {
    const body = params(`<Source href="${templateHref}"/>`);
    const wrongType = await post(body, 'application/vnd.vmware.vcloud.composeVAppParams+xml');
    expect(wrongType.status).toBe(415);
    await expectError(
      post(body, media, '/api/vdc/00000000-0000-0000-0000-000000000000/action/instantiateVAppTemplate'),
      403,
      'ACCESS_TO_RESOURCE_IS_FORBIDDEN',
      /entity does not exist/,
    );
    await expectError(
      post(params(`<Source href="${templateHref}"/>${networkParams(netHref)}`)),
      400,
      'BAD_REQUEST',
      /InstantiationParams is out of order/,
    );
  });

  it('needs the vApp name and a Source that is a vApp template it can see', async () => {
    await expectError(
      post(params(`<Source href="${templateHref}"/>`, 'deploy="false"')),
      400,
      'BAD_REQUEST',
      /needs the attribute name/,
    );
    await expectError(post(params('<Description>x</Description>')), 400, 'BAD_REQUEST', /Source is required/);
    await expectError(
      post(
        params(
          `<Source href="${vcd.url}/api/vAppTemplate/vappTemplate-00000000-0000-0000-0000-000000000000"/>`,
        ),
      ),
      403,
      'ACCESS_TO_RESOURCE_IS_FORBIDDEN',
      /vApp Template: View/,
    );
    await expectError(
      post(params(`<Source href="${vdcHref}"/>`)),
      400,
      'BAD_REQUEST',
      /not a vApp template reference/,
    );
  });

  it('checks the vApp networks of InstantiationParams against the VDC', async () => {
    await expectError(
      post(
        params(
          `${networkParams(`${vcd.url}/api/network/00000000-0000-0000-0000-000000000000`)}<Source href="${templateHref}"/>`,
        ),
      ),
      400,
      'BAD_REQUEST',
      /not a network of the vApp's VDC/,
    );
    await expectError(
      post(
        params(
          `<InstantiationParams><CustomizationSection/></InstantiationParams><Source href="${templateHref}"/>`,
        ),
      ),
      400,
      'BAD_REQUEST',
      /CustomizationSection is not a section/,
    );
  });

  it('creates the vApp: 201 with status 0 and its task, then the template VMs copied with their NICs, on the vApp network', async () => {
    const r = await post(
      params(
        `${networkParams(netHref)}<Source href="${templateHref}"/><AllEULAsAccepted>true</AllEULAsAccepted>`,
      ),
    );
    expect(r.status).toBe(201);
    expect(r.text).toContain('<VApp xmlns="http://www.vmware.com/vcloud/v1.5"');
    expect(attr(r.text, 'VApp', 'status')).toBe('0');
    expect(attr(r.text, 'VApp', 'name')).toBe('wire-from-tpl');
    expect(attr(r.text, 'Task', 'operationName')).toBe('vdcInstantiateVapp');
    expect(attr(r.text, 'Owner', 'href')).toBe(attr(r.text, 'VApp', 'href'));
    expect(await waitTask(attr(r.text, 'Task', 'href')!)).toBe('success');

    const state = vcd.state();
    const tpl = state.templates.find((t) => t.name === 'wire-tpl')!;
    const vapp = state.vapps.find((a) => a.name === 'wire-from-tpl')!;
    expect(vapp).toMatchObject({
      vdc: 'acme-vdc',
      status: 8,
      deployed: false,
      networks: [{ name: 'acme-net', parent: 'acme-net', fenceMode: 'bridged' }],
    });
    expect(vapp.vms.map((v) => v.name)).toEqual(tpl.vms.map((v) => v.name));
    expect(vapp.vms[0]!.nics.map((n) => n.mac)).toEqual(tpl.vms[0]!.nics.map((n) => n.mac));
    expect(vapp.vms[0]!.href).not.toBe(tpl.vms[0]!.href);
    // The template stays in its catalog.
    expect(tpl.catalog).toBe('acme-catalog');

    await expectError(
      post(params(`<Source href="${templateHref}"/>`)),
      400,
      'DUPLICATE_NAME',
      /already exists/,
    );
  });

  it('deploys and powers the new vApp on by default (deploy and powerOn default to true)', async () => {
    const r = await post(params(`<Source href="${templateHref}"/>`, 'name="wire-default"'));
    expect(r.status).toBe(201);
    expect(await waitTask(attr(r.text, 'Task', 'href')!)).toBe('success');
    const vapp = vcd.state().vapps.find((a) => a.name === 'wire-default')!;
    expect(vapp).toMatchObject({ status: 4, deployed: true });
    expect(vapp.vms.every((v) => v.poweredOn)).toBe(true);
  });
});

describe('fake vCD: query filters, decoded once as vCD does (issue #17)', () => {
  // A second fake with names that need escaping; it also speaks 34.0, where filterEncoded still
  // has an effect.
  let lab: RunningFakeVcd;
  let token: string;

  const query = async (type: string, qs: string, version = '38.0') => {
    const r = await fetch(`${lab.url}/api/query?type=${type}&format=records&${qs}`, {
      headers: { Accept: `application/*+xml;version=${version}`, Authorization: `Bearer ${token}` },
    });
    const text = await r.text();
    return {
      status: r.status,
      text,
      total: attr(text, 'QueryResultRecords', 'total'),
      names: [...text.matchAll(/<AdminVdcRecord\b[^>]*\sname="([^"]*)"/g)].map((m) => m[1]),
    };
  };

  beforeAll(async () => {
    lab = await startFakeVcd({
      username: 'admin@System',
      password: 'secret',
      vcenter: { url: sim.url, username: sim.username, password: sim.password },
      apiVersions: ['34.0', '38.0'],
      seed: {
        orgs: [
          {
            name: 'Lab Org',
            vdcs: [{ name: 'Lab VDC' }, { name: 'a(b),c;d' }, { name: 'A,name==B' }, { name: 'Other' }],
          },
        ],
      },
    });
    const r = await fetch(`${lab.url}/cloudapi/1.0.0/sessions/provider`, {
      method: 'POST',
      headers: { Accept: 'application/json;version=38.0', Authorization: basic('admin@System', 'secret') },
    });
    token = r.headers.get('x-vmware-vcloud-access-token')!;
  });

  afterAll(async () => {
    await lab?.stop();
  });

  it('matches values encoded once, in the shapes of both independent clients', async () => {
    // pyvcloud (pyvcloud/vcd/client.py, API 35.0+): quote()d value, ( ) , ; behind %5C.
    expect((await query('adminOrgVdc', 'filter=name==Lab%20VDC')).names).toEqual(['Lab VDC']);
    expect((await query('adminOrgVdc', 'filter=name==a%5C%28b%5C%29%5C%2Cc%5C%3Bd')).names).toEqual([
      'a(b),c;d',
    ]);
    // go-vcloud-director (govcd/system.go QueryProviderVdcByName and others): url.QueryEscape
    // writes the space as '+', and filterEncoded=true, which has no effect from 35.0.
    expect((await query('adminOrgVdc', 'filter=name==Lab+VDC&filterEncoded=true')).names).toEqual([
      'Lab VDC',
    ]);
  });

  it('finds nothing for a double-encoded value, as vCD did (its value keeps %20 after the one decode)', async () => {
    const r = await query('adminOrgVdc', 'filter=name==Lab%2520VDC');
    expect(r.status).toBe(200);
    expect(r.total).toBe('0');
    expect((await query('adminOrgVdc', 'filter=name==Lab%20VDC')).names).toEqual(['Lab VDC']);
    // An href encoded twice, as the agent's client did before issue #17.
    const href = await query('adminOrgVdc', 'filter=org%3D%3Dhttps%253A%252F%252Fhost%252Fapi%252Forg%252F1');
    expect(href.status).toBe(200);
    expect(href.total).toBe('0');
  });

  it('parses ; , ( ) as FIQL operators: an unescaped separator in a value is a 400 or a different filter', async () => {
    // Grouping, AND and OR.
    expect(
      (await query('adminOrgVdc', 'filter=(name==Lab%20VDC;isEnabled==true),name==Other')).names.sort(),
    ).toEqual(['Lab VDC', 'Other']);
    // go-vcloud-director's shape for this name leaves ( , ; unescaped: not a filter.
    const raw = await query('adminOrgVdc', 'filter=name==a%28b%29%2Cc%3Bd');
    expect(raw.status).toBe(400);
    expect(attr(raw.text, 'Error', 'message')?.replaceAll('&quot;', '"')).toMatch(
      /^Cannot parse the supplied filter "name==a\(b\),c;d"/,
    );
    // Unescaped, "A,name==B" is name==A OR name==B: no such VDCs. Escaped, it is the name.
    expect((await query('adminOrgVdc', 'filter=name==A,name==B')).total).toBe('0');
    expect((await query('adminOrgVdc', 'filter=name==A%5C,name==B')).names).toEqual(['A,name==B']);
  });

  it('below API 35.0, decodes each value again when filterEncoded=true, and only then', async () => {
    // pyvcloud client.py _build_query_uri, below 35.0: the whole filter encoded over encoded values.
    const twice = await query(
      'adminOrgVdc',
      'filterEncoded=true&filter=name%3D%3Da%2528b%2529%252Cc%253Bd',
      '34.0',
    );
    expect(twice.names).toEqual(['a(b),c;d']);
    // From 35.0 filterEncoded has no effect, so the same request is a double-encoded value.
    const at38 = await query('adminOrgVdc', 'filterEncoded=true&filter=name%3D%3DLab%2520VDC', '38.0');
    expect(at38.total).toBe('0');
    const without = await query('adminOrgVdc', 'filter=name==Lab%2520VDC', '34.0');
    expect(without.total).toBe('0');
  });

  it('logs each request as it came: request-target, Accept, Content-Type and body', async () => {
    await query('adminOrgVdc', 'filter=name==Lab%20VDC');
    const q = lab
      .state()
      .calls.filter((c) => c.path.startsWith('/api/query'))
      .at(-1);
    expect(q).toMatchObject({
      method: 'GET',
      target: '/api/query?type=adminOrgVdc&format=records&filter=name==Lab%20VDC',
      accept: 'application/*+xml;version=38.0',
      status: 200,
    });
    await fetch(`${lab.url}/api/admin/extension/vimServer/${lab.vimServerId}/importVmAsVApp`, {
      method: 'POST',
      headers: { ...xmlHeaders(token, 'application/vnd.vmware.admin.importVmAsVAppParams+xml') },
      body: '<not-xml',
    });
    expect(lab.state().calls.at(-1)).toMatchObject({
      method: 'POST',
      contentType: 'application/vnd.vmware.admin.importVmAsVAppParams+xml',
      body: '<not-xml',
      status: 400,
    });
  });
});
