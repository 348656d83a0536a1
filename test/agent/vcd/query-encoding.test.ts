import { afterEach, describe, expect, it } from 'vitest';
import { VcdClient } from '../../../agent/vcd/client.ts';
import { type FakeVcdOptions, type RunningFakeVcd, startFakeVcd } from '../../peers/vcd/fake-vcd.ts';

// Issue #17: the query service's filter values reach vCD decoded exactly once, with the FIQL
// separators escaped. The fake vCD here is never asked to import, so it needs no vCenter.

const fakes: RunningFakeVcd[] = [];
const clients: VcdClient[] = [];

const SEED: FakeVcdOptions['seed'] = {
  orgs: [
    {
      name: 'Lab Org',
      vdcs: [
        { name: 'Lab VDC', networks: ['Lab Net (dmz)', 'a(b),c;d', 'back\\slash'] },
        // The same network name in another VDC: only the VDC href tells them apart.
        { name: 'a(b),c;d', networks: ['Lab Net (dmz)'] },
      ],
      catalogs: ['Cat, main; v2'],
    },
  ],
};

async function connected(apiVersions?: string[]): Promise<{ f: RunningFakeVcd; c: VcdClient }> {
  const f = await startFakeVcd({
    username: 'admin@System',
    password: 'secret',
    vcenter: { url: 'http://127.0.0.1:9', username: 'unused', password: 'unused' },
    seed: SEED,
    ...(apiVersions ? { apiVersions } : {}),
  });
  fakes.push(f);
  const c = await VcdClient.connect({
    url: f.url,
    username: 'admin@System',
    password: 'secret',
    trust: { kind: 'system' },
  });
  clients.push(c);
  return { f, c };
}

/** The request-target of the last query, exactly as it came on the wire. */
const lastQuery = (f: RunningFakeVcd) =>
  f
    .state()
    .calls.filter((x) => x.path.startsWith('/api/query'))
    .at(-1);

afterEach(async () => {
  for (const c of clients.splice(0)) await c.logout();
  for (const f of fakes.splice(0)) await f.stop();
});

describe('VcdClient query filters through the fake vCD (issue #17)', () => {
  it('finds entities whose names have spaces, parentheses, commas, semicolons and backslashes', async () => {
    const { c } = await connected();
    expect((await c.findVdc('Lab VDC')).name).toBe('Lab VDC');
    expect((await c.findVdc('a(b),c;d')).name).toBe('a(b),c;d');
    expect((await c.findCatalog('Cat, main; v2')).name).toBe('Cat, main; v2');
    expect((await c.findOrgVdcNetwork('Lab VDC', 'a(b),c;d')).name).toBe('a(b),c;d');
    expect((await c.findOrgVdcNetwork('Lab VDC', 'back\\slash')).name).toBe('back\\slash');
  });

  it('looks up by VDC href: the same network name in two VDCs gives two networks', async () => {
    const { c } = await connected();
    const lab = await c.findVdc('Lab VDC');
    const other = await c.findVdc('a(b),c;d');
    const inLab = await c.findOrgVdcNetwork(lab, 'Lab Net (dmz)');
    const inOther = await c.findOrgVdcNetwork(other, 'Lab Net (dmz)');
    expect(inLab.attrs.vdcName).toBe('Lab VDC');
    expect(inOther.attrs.vdcName).toBe('a(b),c;d');
    expect(inLab.href).not.toBe(inOther.href);
    expect(await c.findVApp(lab, 'no such vApp')).toBeUndefined();
  });
});

describe('the query string VcdClient sends, pinned to the independent clients (issue #17)', () => {
  // Expected strings written by hand from pyvcloud, pyvcloud/vcd/client.py: `_AbstractQuery.__init__`
  // (an equality_filter value goes through urllib.parse.quote, which keeps unreserved characters and
  // '/'), `_escape_special_characters` (%28 %29 %2C %3B get %5C, an encoded backslash, in front) and
  // `_build_query_uri` (from API 35.0 `&filter=` + the filter as it is, no filterEncoded).
  // go-vcloud-director (govcd/api.go newRequest with url.QueryEscape values, e.g.
  // govcd/system.go QueryProviderVdcByName) would send `filter=name==Lab+VDC&filterEncoded=true`
  // and `vdc==https%3A%2F%2Fhost%2Fapi%2Fvdc%2F123`: the same values once decoded; it does not
  // escape `( ) , ;`, so the second case has no go-vcloud-director equivalent.
  const base = '/api/query?type=adminOrgVdc&format=records&pageSize=128';

  it('from API 35.0: each value encoded once, ( ) , ; behind an encoded backslash', async () => {
    const { f, c } = await connected(['36.0', '37.0', '38.0']);
    expect(c.apiVersion).toBe('38.0');

    await c.query('adminOrgVdc', { name: 'Lab VDC' });
    expect(lastQuery(f)).toMatchObject({ target: `${base}&filter=name==Lab%20VDC`, status: 200 });

    await c.query('adminOrgVdc', { name: 'a(b),c;d' });
    expect(lastQuery(f)).toMatchObject({
      target: `${base}&filter=name==a%5C%28b%5C%29%5C%2Cc%5C%3Bd`,
      status: 200,
    });

    await c.query('orgVdcNetwork', { vdc: 'https://host/api/vdc/123' });
    expect(lastQuery(f)).toMatchObject({
      target:
        '/api/query?type=orgVdcNetwork&format=records&pageSize=128&filter=vdc==https%3A//host/api/vdc/123',
      status: 200,
    });
  });

  it('below API 35.0: filterEncoded=true and the value encoded twice, as pyvcloud does there', async () => {
    // pyvcloud client.py `_build_query_uri`, branch below 35.0: '&filterEncoded=true&filter=' +
    // quote(filter), over values its callers have already encoded (get_typed_query's docstring:
    // "Each value in query string must be url-encoded").
    const { f, c } = await connected(['33.0', '34.0']);
    expect(c.apiVersion).toBe('34.0');

    await c.query('adminOrgVdc', { name: 'Lab VDC' });
    expect(lastQuery(f)).toMatchObject({
      target: `${base}&filterEncoded=true&filter=name%3D%3DLab%2520VDC`,
      status: 200,
    });
    expect((await c.findVdc('a(b),c;d')).name).toBe('a(b),c;d');
    expect(lastQuery(f)?.target).toBe(`${base}&filterEncoded=true&filter=name%3D%3Da%2528b%2529%252Cc%253Bd`);
  });
});
