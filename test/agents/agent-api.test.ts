import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentIdentity, initAgentIdentity } from '../../agent/identity/agent-identity.ts';
import { AgentApiClient, AgentApiError } from '../../agent/runtime/api-client.ts';
import type { TransferRequest } from '../../core/index.ts';
import { adminToken, type ControlPlane, startControlPlane } from '../../local/control-plane.ts';
import { odt } from '../support/cli.ts';
import { nodeMakesKey } from '../support/fake-node.ts';
import { until as untilTruthy } from '../support/until.ts';

// Issue 6: enrollment and the signed agent API; tenancy between sites.

let plane: ControlPlane;
let dir: string;
let idA: AgentIdentity;
let idB: AgentIdentity;
let idOther: AgentIdentity;

const request = (site: string): TransferRequest => ({
  site,
  providerSite: 'cloud',
  requester: 'alice',
  items: [{ kind: 'vm', source: `${site}-vm`, target: { vdc: `${site}-vdc` } }],
});

async function toExport(site: string): Promise<string> {
  const t = await plane.service.request(request(site));
  await plane.service.approve(t.id, 'bob');
  // The ODT node's key for the transfer comes first (#18); no node runs here.
  await nodeMakesKey(plane.service, t.id);
  await plane.service.event(t.id, 'appliance-sent', 'bob');
  await plane.service.event(t.id, 'appliance-connected', 'alice');
  return t.id;
}

/** In-process waits: 5 s by default, every 10 ms. */
const until = <T>(f: () => Promise<T | undefined>, what: string, ms = 5000) => untilTruthy(f, what, ms, 10);

async function code(site: string, ttl = '15m'): Promise<string> {
  const r = await odt(['agent', 'enroll', '--site', site, '--ttl', ttl, '--state-dir', dir]);
  expect(r.code).toBe(0);
  return r.out.trim();
}

async function enrolled(identity: AgentIdentity, site: string): Promise<AgentApiClient> {
  const client = new AgentApiClient({ server: plane.agentApi.url, keyPem: identity.keyPem });
  await client.enroll(await code(site), identity.certPem, `${site}-agent`);
  return client;
}

/** Expects an agent-API refusal with this status (and message fragment). */
async function refused(p: Promise<unknown>, status: number, message?: RegExp): Promise<AgentApiError> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AgentApiError);
  const e = error as AgentApiError;
  expect(e.status).toBe(status);
  if (message) expect(e.message).toMatch(message);
  return e;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'odt-agent-api-'));
  plane = await startControlPlane({ stateDir: dir, approvers: ['bob'] });
  const keys = await mkdtemp(join(tmpdir(), 'odt-agent-keys-'));
  const ids = await Promise.all(
    ['a', 'b', 'other'].map(
      async (n) => (await initAgentIdentity(join(keys, n), { commonName: n })).identity,
    ),
  );
  [idA, idB, idOther] = [ids[0]!, ids[1]!, ids[2]!];
  await rm(keys, { recursive: true, force: true });
}, 120_000);

afterAll(async () => {
  await plane?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('enrollment', () => {
  it('enrolls with a one-time code; the agent is bound to the code’s site', async () => {
    const c = await code('acme');
    expect(c).toMatch(/^[A-Z2-9]{5}(-[A-Z2-9]{5}){3}$/);
    const client = new AgentApiClient({ server: plane.agentApi.url, keyPem: idA.keyPem });
    const r = await client.enroll(c, idA.certPem, 'acme-1');
    expect(r.site).toBe('acme');
    expect(await client.me()).toMatchObject({ id: r.agentId, site: 'acme', certSha256: idA.certSha256 });
    const list = await odt(['agent', 'list', '--state-dir', dir, '--json']);
    expect(JSON.parse(list.out)).toContainEqual(expect.objectContaining({ id: r.agentId, revoked: false }));
  });

  it('refuses a reused code', async () => {
    const c = await code('acme');
    await new AgentApiClient({ server: plane.agentApi.url, keyPem: idB.keyPem }).enroll(c, idB.certPem, 'b');
    const again = new AgentApiClient({ server: plane.agentApi.url, keyPem: idOther.keyPem });
    const e = await refused(again.enroll(c, idOther.certPem, 'x'), 401, /already used/);
    expect(e.code).toBe('ENROLLMENT_USED');
    // The cleanup: b's enrollment is revoked so the tenancy tests use fresh agents.
    await odt(['agent', 'revoke', (await plane.registry.list('acme')).at(-1)!.id, '--state-dir', dir]);
  });

  it('refuses an expired code and an unknown one', async () => {
    const expired = await plane.registry.issueCode('acme', 1000, new Date(Date.now() - 5000));
    const client = new AgentApiClient({ server: plane.agentApi.url, keyPem: idOther.keyPem });
    const e = await refused(client.enroll(expired.code, idOther.certPem, 'x'), 401, /expired/);
    expect(e.code).toBe('ENROLLMENT_EXPIRED');
    await refused(client.enroll('AAAAA-BBBBB-CCCCC-DDDDD', idOther.certPem, 'x'), 401, /unknown/);
  });

  it('refuses an enrollment not signed by the certificate’s key (proof of possession)', async () => {
    const c = await code('acme');
    const thief = new AgentApiClient({ server: plane.agentApi.url, keyPem: idOther.keyPem });
    await refused(thief.enroll(c, idA.certPem, 'thief'), 401, /signature/);
  });
});

describe('two sites, two agents', () => {
  let acme: AgentApiClient;
  let globex: AgentApiClient;
  let acmeTransfer: string;
  let acmeTask: string;
  let globexTask: string;

  beforeAll(async () => {
    const keys = await mkdtemp(join(tmpdir(), 'odt-agent-keys-'));
    const [ka, kg] = await Promise.all(
      ['acme', 'globex'].map(
        async (n) => (await initAgentIdentity(join(keys, n), { commonName: n })).identity,
      ),
    );
    acme = await enrolled(ka!, 'acme');
    globex = await enrolled(kg!, 'globex');
    acmeTransfer = await toExport('acme');
    const globexTransfer = await toExport('globex');
    acmeTask = (await until(async () => (await acme.listTasks())[0], 'acme task')).id;
    globexTask = (await until(async () => (await globex.listTasks())[0], 'globex task')).id;
    expect(acmeTask).toContain(acmeTransfer);
    expect(globexTask).toContain(globexTransfer);
  }, 120_000);

  it('each lists only its own site’s tasks', async () => {
    expect((await acme.listTasks()).map((t) => t.id)).toEqual([acmeTask]);
    expect((await globex.listTasks()).map((t) => t.id)).toEqual([globexTask]);
  });

  it('neither can claim the other’s task', async () => {
    await refused(globex.claim(acmeTask), 403, /another site/);
    await refused(acme.claim(globexTask), 403, /another site/);
    expect((await acme.claim(acmeTask)).holder).toBe(acme.id);
    expect((await globex.claim(globexTask)).holder).toBe(globex.id);
  });

  it('neither can heartbeat, fail, release or complete the other’s task', async () => {
    const p = [{ itemId: 'item-1', bytesDone: 1 }];
    await refused(globex.heartbeat(acmeTask, p), 403);
    await refused(acme.heartbeat(globexTask, p), 403);
    await refused(globex.complete(acmeTask, [{ itemId: 'item-1', ok: true }]), 403);
    await refused(acme.complete(globexTask, [{ itemId: 'item-1', ok: true }]), 403);
    await refused(globex.fail(acmeTask, 'X', 'x'), 403);
    await refused(globex.release(acmeTask), 403);
    expect(await acme.listTasks()).toEqual([]); // still held by acme
  });

  it('an agent reads only transfers of its own site', async () => {
    const view = await acme.transfer(acmeTransfer);
    expect(view.items).toEqual([expect.objectContaining({ id: 'item-1', source: 'acme-vm' })]);
    await refused(globex.transfer(acmeTransfer), 403);
    await refused(globex.transfer('tr-nope-000'), 404);
  });

  it('takes a heartbeat that says an import is verifying the NAS, and refuses any other stage by name', async () => {
    await acme.heartbeat(acmeTask, [{ itemId: 'item-1', bytesDone: 5, bytesTotal: 20, stage: 'verifying' }]);
    await refused(
      acme.heartbeat(acmeTask, [
        { itemId: 'item-1', bytesDone: 5, stage: 'uploading' as unknown as 'verifying' },
      ]),
      400,
      /progress\.0\.stage.*must be 'verifying' or absent/,
    );
  });

  it('the holder heartbeats and completes its own task', async () => {
    await acme.heartbeat(acmeTask, [{ itemId: 'item-1', bytesDone: 10, bytesTotal: 20 }]);
    await acme.complete(acmeTask, [{ itemId: 'item-1', ok: true, bytes: 20 }]);
    await refused(acme.complete(acmeTask, [{ itemId: 'item-1', ok: true }]), 409);
    await until(async () => (await plane.service.get(acmeTransfer)).phase === 'exported', 'exported');
  });

  it('stores the reported inventory for the admin', async () => {
    await acme.reportInventory([{ kind: 'vm', name: 'acme-vm', path: '/DC0/vm/acme-vm' }]);
    const res = await fetch(`${plane.agentApi.url}/sites/acme/inventory`, {
      headers: { authorization: `Bearer ${adminToken(dir)}` },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ site: 'acme', agentId: acme.id, items: [{ name: 'acme-vm' }] });
    const anon = await fetch(`${plane.agentApi.url}/sites/acme/inventory`);
    expect(anon.status).toBe(401);
  });

  it('refuses a replayed request (same nonce)', async () => {
    const headers = acme.signHeaders('GET', '/agent/tasks', '', 'replay-nonce-0123456789');
    const first = await fetch(`${plane.agentApi.url}/agent/tasks`, { headers });
    expect(first.status).toBe(200);
    const again = await fetch(`${plane.agentApi.url}/agent/tasks`, { headers });
    expect(again.status).toBe(401);
    expect(((await again.json()) as { error: string }).error).toMatch(/replayed/);
  });

  it('refuses a forged signature (another key claiming the agent id)', async () => {
    const forger = new AgentApiClient({
      server: plane.agentApi.url,
      keyPem: idOther.keyPem,
      agentId: acme.id!,
    });
    await refused(forger.listTasks(), 401, /signature does not verify/);
  });

  it('refuses a tampered body', async () => {
    const body = JSON.stringify({ progress: [] });
    const headers = acme.signHeaders('POST', `/agent/tasks/${globexTask}/heartbeat`, '{"progress":[1]}');
    const res = await fetch(`${plane.agentApi.url}/agent/tasks/${globexTask}/heartbeat`, {
      method: 'POST',
      headers,
      body,
    });
    expect(res.status).toBe(401);
  });

  it('refuses a timestamp outside ±5 minutes', async () => {
    const old = Date.now() - 6 * 60_000;
    const res = await fetch(`${plane.agentApi.url}/agent/tasks`, {
      headers: acme.signHeaders('GET', '/agent/tasks', '', undefined, old),
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: string }).error).toMatch(/outside ±5 minutes/);
    const future = await fetch(`${plane.agentApi.url}/agent/tasks`, {
      headers: acme.signHeaders('GET', '/agent/tasks', '', undefined, Date.now() + 6 * 60_000),
    });
    expect(future.status).toBe(401);
  });

  it('refuses an unknown agent', async () => {
    const ghost = new AgentApiClient({
      server: plane.agentApi.url,
      keyPem: idOther.keyPem,
      agentId: 'agt-ghost',
    });
    await refused(ghost.listTasks(), 401, /unknown agent/);
  });

  it('a revoked agent is refused at its next call', async () => {
    // Before: accepted, and the same calls as below answer. Its own task is held by it (claimed
    // above) and acme's is not its to see, so it lists none.
    expect(await globex.listTasks()).toEqual([]);
    await globex.heartbeat(globexTask, []);
    const r = await odt(['agent', 'revoke', globex.id!, '--state-dir', dir]);
    expect(r.code).toBe(0);
    await refused(globex.listTasks(), 401, /revoked/);
    await refused(globex.heartbeat(globexTask, []), 401, /revoked/);
  });
});
