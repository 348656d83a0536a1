/**
 * Issue 18, enrollment input: a code lives at most 30 days, and one site-name rule holds in
 * Slack, `odt agent enroll`, the admin APIs (odt serve's and the agent API's) and the agent API's
 * site parameters. A refusal names the rule or the bound, and stores no code.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initAgentIdentity } from '../../agent/identity/agent-identity.ts';
import { AgentApiClient, AgentApiError } from '../../agent/runtime/api-client.ts';
import { siteNameRule } from '../../core/index.ts';
import { adminToken, type ControlPlane, startControlPlane } from '../../local/control-plane.ts';
import { storeFileName } from '../../local/store/sqlite-store.ts';
import { APPROVERS, type Harness, startHarness, visible } from '../bot/harness.ts';
import { odt } from '../support/cli.ts';

const badSite = 'ACME HQ/../x';
let plane: ControlPlane;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'odt-enroll-rules-'));
  plane = await startControlPlane({ stateDir: dir, approvers: ['bob'] });
}, 60_000);
afterAll(async () => {
  await plane?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Enrollment codes stored so far. */
function codesStored(): number {
  const db = new Database(join(dir, storeFileName), { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM agent_enrollment_codes').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

const admin = (base: string, path: string, init: { method?: string; body?: unknown } = {}) =>
  fetch(`${base}${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${adminToken(dir)}`, 'content-type': 'application/json' },
    ...(init.body ? { body: JSON.stringify(init.body) } : {}),
  });

describe('odt agent enroll', () => {
  it("refuses 'ACME HQ/../x' naming the site-name rule, and stores no code", async () => {
    const before = codesStored();
    const r = await odt(['agent', 'enroll', '--site', badSite, '--state-dir', dir]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`'${badSite}' is invalid. ${siteNameRule}`);
    expect(codesStored()).toBe(before);
    // The other commands that take a site say the same, before anything is asked of serve.
    for (const args of [
      ['agent', 'list', '--site', badSite],
      ['agent', 'inventory', '--site', badSite],
    ]) {
      const other = await odt([...args, '--state-dir', dir]);
      expect(other.code, args.join(' ')).toBe(2);
      expect(other.err).toContain(siteNameRule);
    }
  });

  it('refuses --ttl 999999999d (and 31d) with the bound, stores no code; 30d is taken', async () => {
    const before = codesStored();
    for (const ttl of ['999999999d', '31d']) {
      const r = await odt(['agent', 'enroll', '--site', 'acme-hq', '--ttl', ttl, '--state-dir', dir]);
      expect(r.code, ttl).toBe(2);
      expect(r.err).toContain('an enrollment code lives from 1s to 30d');
      expect(r.err).not.toContain('RangeError');
    }
    expect(codesStored()).toBe(before);
    const ok = await odt(['agent', 'enroll', '--site', 'acme-hq', '--ttl', '30d', '--state-dir', dir]);
    expect(ok.code).toBe(0);
    expect(codesStored()).toBe(before + 1);
  });
});

describe('the admin APIs', () => {
  it("odt serve's admin API: 400 naming the rule or the bound, never a 500, no code stored", async () => {
    const before = codesStored();
    const site = await admin(plane.api.url, '/agents/enrollments', {
      method: 'POST',
      body: { site: badSite, ttlMs: 60_000 },
    });
    expect(site.status).toBe(400);
    expect(((await site.json()) as { error: string }).error).toContain(siteNameRule);
    const ttl = await admin(plane.api.url, '/agents/enrollments', {
      method: 'POST',
      body: { site: 'acme-hq', ttlMs: 999_999_999 * 86_400_000 },
    });
    expect(ttl.status).toBe(400);
    expect(((await ttl.json()) as { error: string }).error).toContain('from 1s to 30d');
    expect(codesStored()).toBe(before);
  });

  it("the agent API's admin routes: enrollments, a site's inventory and agents of a site", async () => {
    const before = codesStored();
    const api = plane.agentApi.url;
    const bodies = [
      { site: badSite, ttl: '15m' },
      { site: 'acme-hq', ttl: '999999999d' },
    ];
    for (const body of bodies) {
      const r = await admin(api, '/admin/enrollments', { method: 'POST', body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(((await r.json()) as { error: string }).error).toMatch(
        body.site === badSite ? /site-name|site name is 3-63/ : /from 1s to 30d/,
      );
    }
    expect(codesStored()).toBe(before);
    for (const path of [
      `/admin/sites/${encodeURIComponent(badSite)}/inventory`,
      `/admin/agents?site=${encodeURIComponent(badSite)}`,
    ]) {
      const r = await admin(api, path);
      expect(r.status, path).toBe(400);
      expect(((await r.json()) as { error: string }).error).toContain(siteNameRule);
    }
  });

  it("odt serve's admin API refuses it in a site's inventory and the agents or transfers of a site", async () => {
    for (const path of [
      `/sites/${encodeURIComponent(badSite)}/inventory`,
      `/agents?site=${encodeURIComponent(badSite)}`,
      `/transfers?site=${encodeURIComponent(badSite)}`,
    ]) {
      const r = await admin(plane.api.url, path);
      expect(r.status, path).toBe(400);
      expect(((await r.json()) as { error: string }).error).toContain(siteNameRule);
    }
  });

  it('the agent API refuses an agent started for such a site, and leaves the code unspent', async () => {
    const keys = await mkdtemp(join(tmpdir(), 'odt-enroll-rules-keys-'));
    try {
      const { identity } = await initAgentIdentity(keys, { commonName: 'x' });
      const code = await plane.registry.issueCode('acme-hq', 60_000, new Date());
      const client = new AgentApiClient({ server: plane.agentApi.url, keyPem: identity.keyPem });
      const refused = await client.enroll(code.code, identity.certPem, 'x', badSite).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(AgentApiError);
      expect((refused as AgentApiError).status).toBe(400);
      expect((refused as AgentApiError).message).toContain(siteNameRule);
      expect(await client.enroll(code.code, identity.certPem, 'x', 'acme-hq')).toMatchObject({
        site: 'acme-hq',
      });
    } finally {
      await rm(keys, { recursive: true, force: true });
    }
  }, 60_000);

  it('both registries refuse it too, before storing (the last line of defence)', async () => {
    const before = codesStored();
    await expect(plane.registry.issueCode(badSite, 60_000, new Date())).rejects.toThrow(siteNameRule);
    await expect(plane.registry.issueCode('acme-hq', 8.64e16, new Date())).rejects.toThrow(/from 1s to 30d/);
    expect(codesStored()).toBe(before);
  });
});

describe('/odt agent enroll in Slack', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ inventory: false });
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  it('names the same rule', async () => {
    const res = await h.command('agent enroll ACME-HQ/../x', APPROVERS[0]);
    const body = (await res.json()) as { blocks: unknown[] };
    expect(visible(body.blocks)).toContain(siteNameRule);
  });
});
