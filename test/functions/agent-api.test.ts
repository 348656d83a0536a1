import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentIdentity, initAgentIdentity } from '../../agent/identity/agent-identity.ts';
import { AgentApiClient } from '../../agent/runtime/api-client.ts';
import { createTransfer } from '../../core/model/lifecycle.ts';
import type { TaskRecord } from '../../core/ports/task-queue.ts';
import { JsonLinesChat } from '../../core/service/json-lines-chat.ts';
import {
  type AgentApiDeps,
  adminSecretArn,
  agentApiHandler,
  type HttpApiEvent,
  type HttpApiResult,
  secretReader,
} from '../../functions/agent-api.ts';
import { createRuntime, type Runtime } from '../../functions/runtime.ts';
import { agentApiAccess } from '../../infra/function-access.ts';
import { agentBodyLimits } from '../../shared/agent-api.ts';
import { type Dynalite, functionConfig, RecordingEngine, startDynalite } from './support.ts';

// The agent API's Lambda handler with API Gateway HTTP API (v2) events, over dynalite.

const adminToken = 'test-admin-token-0123456789';
let db: Dynalite;
let rt: Runtime;
let deps: AgentApiDeps;
let keys: string;
let idA: AgentIdentity;
let idB: AgentIdentity;
const engine = new RecordingEngine();
const metrics: string[] = [];
const dynamoOps = new Set<string>();
let handler: ReturnType<typeof agentApiHandler>;

function event(
  method: string,
  target: string,
  body = '',
  headers: Record<string, string> = {},
): HttpApiEvent {
  const [rawPath = '/', rawQueryString = ''] = target.split('?');
  return {
    version: '2.0',
    rawPath,
    rawQueryString,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body ? { body: Buffer.from(body).toString('base64'), isBase64Encoded: true } : {}),
    requestContext: { http: { method } },
  };
}

async function call(e: HttpApiEvent): Promise<{ status: number; body: Record<string, unknown> & unknown[] }> {
  const r = (await handler(e)) as HttpApiResult;
  return { status: r.statusCode, body: JSON.parse(r.body) };
}

/** A signed request from `client` (the same signature the agent runtime makes). */
function signed(client: AgentApiClient, method: string, target: string, body?: unknown, nonce?: string) {
  const text = body === undefined ? '' : JSON.stringify(body);
  return event(method, target, text, client.signHeaders(method, target, text, nonce));
}

const admin = (method: string, target: string, body?: unknown) =>
  event(method, target, body === undefined ? '' : JSON.stringify(body), {
    authorization: `Bearer ${adminToken}`,
  });

async function enroll(identity: AgentIdentity, site: string): Promise<AgentApiClient> {
  const code = await call(admin('POST', '/admin/enrollments', { site }));
  expect(code.status).toBe(201);
  const anon = new AgentApiClient({ server: 'http://unused', keyPem: identity.keyPem });
  const r = await call(
    signed(anon, 'POST', '/agents/enroll', {
      code: code.body.code,
      certificate: identity.certPem,
      name: site,
    }),
  );
  expect(r.status).toBe(201);
  expect(r.body.site).toBe(site);
  return new AgentApiClient({
    server: 'http://unused',
    keyPem: identity.keyPem,
    agentId: String(r.body.agentId),
  });
}

async function task(id: string, site: string): Promise<void> {
  await rt.store.tasks.enqueue(
    { id, kind: 'export', site, transferId: `tr-${id}`, itemIds: ['i1'], heartbeatSeconds: 600 },
    new Date(),
  );
  await rt.store.tokens.putToken(`tr-${id}`, 'export', `token-${id}`);
}

let a: AgentApiClient;
let b: AgentApiClient;

beforeAll(async () => {
  db = await startDynalite('odt-agent-api');
  rt = createRuntime(functionConfig(db), {
    dynamodb: db.client((op) => dynamoOps.add(op)),
    workflow: engine,
    chat: new JsonLinesChat(() => {}),
  });
  deps = {
    service: rt.service,
    tasks: rt.store.tasks,
    registry: rt.registry,
    clock: rt.clock,
    adminToken: async () => adminToken, // the fake secret
    heartbeatSeconds: 600,
    emit: (line) => metrics.push(line),
  };
  handler = agentApiHandler(() => deps);
  keys = await mkdtemp(join(tmpdir(), 'odt-fn-agent-keys-'));
  idA = (await initAgentIdentity(join(keys, 'a'), { commonName: 'a' })).identity;
  idB = (await initAgentIdentity(join(keys, 'b'), { commonName: 'b' })).identity;
  a = await enroll(idA, 'acme');
  b = await enroll(idB, 'globex');
  await task('acme-1', 'acme');
  await task('globex-1', 'globex');
}, 120_000);

afterAll(async () => {
  await db?.close();
  if (keys) await rm(keys, { recursive: true, force: true });
});

describe('enrollment', () => {
  it('enrolled each agent into its code’s site, in DynamoDB', async () => {
    expect((await call(signed(a, 'GET', '/agent/me'))).body).toMatchObject({ site: 'acme', id: a.id });
    expect(await rt.registry.get(b.id!)).toMatchObject({ site: 'globex', revoked: false });
  });

  it('refuses a reused code', async () => {
    const code = await call(admin('POST', '/admin/enrollments', { site: 'acme', ttl: '5m' }));
    const anon = new AgentApiClient({ server: 'http://unused', keyPem: idA.keyPem });
    // idA is enrolled already, so use the code once with a fresh identity, then again.
    const idC = (await initAgentIdentity(join(keys, 'c'), { commonName: 'c' })).identity;
    const c = new AgentApiClient({ server: 'http://unused', keyPem: idC.keyPem });
    const body = { code: code.body.code, certificate: idC.certPem };
    expect((await call(signed(c, 'POST', '/agents/enroll', body))).status).toBe(201);
    const again = await call(signed(anon, 'POST', '/agents/enroll', { ...body, certificate: idA.certPem }));
    expect(again).toMatchObject({ status: 401, body: { code: 'ENROLLMENT_USED' } });
  }, 60_000);
});

describe('signed requests', () => {
  it('list only the agent’s own site’s tasks', async () => {
    const r = await call(signed(a, 'GET', '/agent/tasks'));
    expect(r.status).toBe(200);
    expect((r.body as unknown as TaskRecord[]).map((t) => t.id)).toEqual(['acme-1']);
    const g = await call(signed(b, 'GET', '/agent/tasks'));
    expect((g.body as unknown as TaskRecord[]).map((t) => t.id)).toEqual(['globex-1']);
  });

  it('refuse another site’s task: get, claim, heartbeat, fail', async () => {
    for (const [method, target] of [
      ['GET', '/agent/tasks/globex-1'],
      ['POST', '/agent/tasks/globex-1/claim'],
      ['POST', '/agent/tasks/globex-1/heartbeat'],
      ['POST', '/agent/tasks/globex-1/fail'],
    ] as const) {
      const r = await call(signed(a, method, target, method === 'POST' ? {} : undefined));
      expect(r, `${method} ${target}`).toMatchObject({ status: 403, body: { code: 'FORBIDDEN' } });
    }
    expect((await rt.store.tasks.get('globex-1'))?.status).toBe('open');
  });

  it('claim, heartbeat → SendTaskHeartbeat (and a metric), fail → SendTaskFailure', async () => {
    expect((await call(signed(a, 'POST', '/agent/tasks/acme-1/claim', {}))).status).toBe(200);
    const hb = await call(
      signed(a, 'POST', '/agent/tasks/acme-1/heartbeat', { progress: [{ itemId: 'i1', bytesDone: 10 }] }),
    );
    expect(hb.status).toBe(200);
    expect(engine.calls).toContainEqual({ op: 'heartbeat', token: 'token-acme-1' });
    const line = JSON.parse(metrics.at(-1)!) as Record<string, unknown>;
    expect(line).toMatchObject({ Service: 'agent-api', Site: 'acme', TaskHeartbeats: 1 });
    const fail = await call(signed(a, 'POST', '/agent/tasks/acme-1/fail', { code: 'DISK', reason: 'full' }));
    expect(fail.status).toBe(200);
    expect(engine.calls).toContainEqual({
      op: 'failure',
      token: 'token-acme-1',
      error: 'DISK',
      cause: 'full',
    });
  });

  it('refuse a replayed nonce', async () => {
    const e = signed(b, 'GET', '/agent/me', undefined, 'replayed-nonce-0123456789');
    expect((await call(e)).status).toBe(200);
    const again = await call(e);
    expect(again.status).toBe(401);
    expect(String(again.body.error)).toMatch(/replayed/);
  });

  it('refuse a forged signature and an unsigned request', async () => {
    const e = signed(b, 'GET', '/agent/tasks');
    const forged = { ...e, headers: { ...e.headers, 'x-odt-agent': a.id! } };
    expect((await call(forged)).status).toBe(401);
    expect((await call(event('GET', '/agent/tasks', '', { 'x-odt-agent': a.id! }))).status).toBe(401);
  });

  it('check the head before the body, and limit bodies as odt serve does (issue #18)', async () => {
    const pad = 'x'.repeat(agentBodyLimits.task);
    // No signature headers: refused as such, whatever the body.
    const unsigned = await call(event('POST', '/agent/tasks/acme-1/heartbeat', JSON.stringify({ pad })));
    expect(unsigned.status).toBe(401);
    expect(String(unsigned.body.error)).toMatch(/missing x-odt-agent/);
    // Signed by a known agent, but over the task calls' limit: 413 before the body is parsed.
    const big = await call(signed(a, 'POST', '/agent/tasks/acme-1/heartbeat', { progress: [], pad }));
    expect(big.status).toBe(413);
    expect(big.body).toMatchObject({ code: 'TOO_LARGE' });
    // The inventory has room for a large site.
    const items = Array.from({ length: 5000 }, (_, i) => ({
      kind: 'vm',
      name: `vm-${i}`,
      path: `/DC0/vm/${'p'.repeat(200)}-${i}`,
    }));
    expect(JSON.stringify({ items }).length).toBeGreaterThan(agentBodyLimits.task);
    expect((await call(signed(a, 'POST', '/agent/inventory', { items }))).status).toBe(200);
    // Kept gzipped: over DynamoDB's 400 KB an item as JSON, it is stored and read back whole.
    expect((await call(admin('GET', '/admin/sites/acme/inventory'))).body.items).toHaveLength(5000);
  });

  it('refuse a revoked agent at its next call', async () => {
    const idD = (await initAgentIdentity(join(keys, 'd'), { commonName: 'd' })).identity;
    const d = await enroll(idD, 'acme');
    expect((await call(admin('POST', `/admin/agents/${d.id}/revoke`))).status).toBe(200);
    const r = await call(signed(d, 'GET', '/agent/tasks'));
    expect(r.status).toBe(401);
    expect(String(r.body.error)).toMatch(/revoked/);
  }, 60_000);
});

describe('admin routes', () => {
  it('refuse a request without the admin token, or with a wrong one (401)', async () => {
    const tries: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong' },
      { authorization: adminToken },
    ];
    for (const headers of tries) {
      for (const [method, target] of [
        ['POST', '/admin/enrollments'],
        ['GET', '/admin/agents'],
        ['POST', `/admin/agents/${a.id}/revoke`],
        ['GET', '/admin/sites/acme/inventory'],
      ] as const) {
        const r = await call(event(method, target, JSON.stringify({ site: 'acme' }), headers));
        expect(r, `${method} ${target}`).toMatchObject({ status: 401, body: { code: 'UNAUTHORIZED' } });
      }
    }
    expect((await rt.registry.get(a.id!))?.revoked).toBe(false);
  });

  it('serve agents and inventories with the token', async () => {
    const list = await call(admin('GET', '/admin/agents?site=globex'));
    expect(list.status).toBe(200);
    expect((list.body as unknown as { id: string; certPem?: string }[]).map((x) => x.id)).toEqual([b.id]);
    expect(JSON.stringify(list.body)).not.toMatch(/BEGIN CERTIFICATE/);
    expect((await call(signed(a, 'POST', '/agent/inventory', { items: [{ vm: 'web' }] }))).status).toBe(200);
    const inv = await call(admin('GET', '/admin/sites/acme/inventory'));
    expect(inv).toMatchObject({ status: 200, body: { site: 'acme', items: [{ vm: 'web' }] } });
  });
});

describe('the heartbeat sweep', () => {
  it('counts claimed tasks whose heartbeat is older than half the interval, per site and in all', async () => {
    await task('globex-2', 'globex');
    const old = new Date(Date.now() - 400_000);
    await rt.store.tasks.claim('globex-2', 'globex', b.id!, old);
    metrics.length = 0;
    const r = (await handler({ action: 'heartbeat-sweep' })) as { staleHolds: Record<string, number> };
    expect(r.staleHolds).toEqual({ acme: 0, globex: 1 });
    const lines = metrics.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toContainEqual(
      expect.objectContaining({ Service: 'agent-api', Site: 'globex', StaleTaskHolds: 1 }),
    );
    const total = lines.find((l) => !('Site' in l));
    expect(total).toMatchObject({ Service: 'agent-api', StaleTaskHolds: 1 });
    expect(total!._aws).toMatchObject({
      CloudWatchMetrics: [{ Namespace: 'Sneakernet/Agents', Dimensions: [['Service']] }],
    });
  });
});

describe('the admin token secret', () => {
  it('is read once per container, and again only after a failed read', async () => {
    const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:odt-admin-AbCdEf';
    let calls = 0;
    let fail = true;
    const client = {
      send: async (command: GetSecretValueCommand) => {
        calls++;
        expect(command).toBeInstanceOf(GetSecretValueCommand);
        expect(command.input.SecretId).toBe(arn);
        if (fail) throw new Error('throttled');
        return { SecretString: 'tok' };
      },
    };
    const read = secretReader(client as never, arn);
    await expect(read()).rejects.toThrow('throttled');
    fail = false;
    expect(await read()).toBe('tok');
    expect(await read()).toBe('tok');
    expect(calls).toBe(2);
  });

  it('needs ADMIN_TOKEN_SECRET_ARN', () => {
    expect(() => adminSecretArn({})).toThrow(/ADMIN_TOKEN_SECRET_ARN is not set/);
    expect(() => adminSecretArn({ ADMIN_TOKEN_SECRET_ARN: 'token' })).toThrow(/invalid/);
  });
});

describe('the transfer an ODT node is given (#18)', () => {
  it('names the enrolled export agent that completed the export, certificate and all, as odt serve does', async () => {
    const exporter = (await initAgentIdentity(join(keys, 'pin-x'), { commonName: 'x' })).identity;
    const node = (await initAgentIdentity(join(keys, 'pin-n'), { commonName: 'n' })).identity;
    const x = await enroll(exporter, 'pin-acme');
    const n = await enroll(node, 'pin-cloud');
    // Stored as the workflow would have it (no StartExecution: the agent API does not start any).
    const t = createTransfer(
      {
        site: 'pin-acme',
        providerSite: 'pin-cloud',
        requester: 'alice',
        items: [{ kind: 'vm', source: 'web-01', target: { vdc: 'acme-vdc' } }],
      },
      'tr-20261201-a1b2c3',
      new Date(),
    );
    await rt.store.transfers.create(t);
    const id = `${t.id}-export-1`;
    const now = new Date();
    await rt.store.tasks.enqueue(
      { id, kind: 'export', site: 'pin-acme', transferId: t.id, itemIds: ['item-1'], heartbeatSeconds: 600 },
      now,
    );
    await rt.store.tasks.claim(id, 'pin-acme', x.id!, now);
    await rt.store.tasks.complete(id, x.id!, [{ itemId: 'item-1', ok: true, bytes: 1 }], now);

    const seen = await call(signed(n, 'GET', `/agent/transfers/${t.id}`));
    expect(seen.status).toBe(200);
    expect(seen.body).toMatchObject({
      site: 'pin-acme',
      exportAgent: { id: x.id, certPem: exporter.certPem, certSha256: exporter.certSha256 },
    });
    // The customer's own agent is given no signer to pin: it is not the one that checks.
    expect((await call(signed(x, 'GET', `/agent/transfers/${t.id}`))).body).not.toHaveProperty('exportAgent');
  });
});

describe('IAM coverage', () => {
  it('every DynamoDB and Step Functions call made above is granted to the function (infra/)', () => {
    const granted = new Set<string>([...agentApiAccess.table, ...agentApiAccess.index]);
    expect(dynamoOps.size).toBeGreaterThan(0);
    for (const op of dynamoOps) expect(granted, op).toContain(`dynamodb:${op}`);
    const states: Record<string, string> = {
      heartbeat: 'states:SendTaskHeartbeat',
      success: 'states:SendTaskSuccess',
      failure: 'states:SendTaskFailure',
    };
    for (const c of engine.calls) expect(agentApiAccess.states as readonly string[]).toContain(states[c.op]);
  });
});
