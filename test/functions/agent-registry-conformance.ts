/**
 * The AgentRegistry port's behaviour, run against every adapter (SQLite locally, DynamoDB on AWS):
 * codes are spent once and expire, a certificate enrolls once, nonces are single-use inside their
 * window, revocation sticks, inventories are per site.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { siteNameRule } from '../../core/index.ts';
import { type AgentRegistry, EnrollmentError, signatureWindowMs } from '../../core/ports/agents.ts';

export interface RegistryFixture {
  /** Two handles on the same registry (two clients / connections), for the races. */
  readonly a: AgentRegistry;
  readonly b: AgentRegistry;
  close(): Promise<void>;
}

const t0 = new Date('2030-01-01T00:00:00.000Z');
const at = (ms: number) => new Date(t0.getTime() + ms);
let n = 0;
const agent = (code: string, suffix = String(++n)) => ({
  code,
  certPem: `-----BEGIN CERTIFICATE-----\ncert-${suffix}\n-----END CERTIFICATE-----`,
  // The separator keeps agent 1's and agent 10's apart once padded.
  certSha256: `SHA${suffix}.`.padEnd(64, '0'),
  name: `agent-${suffix}`,
  id: `agt-${suffix}`,
});

async function refusalOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    if (e instanceof EnrollmentError) return e.refusal;
    throw e;
  }
}

export function agentRegistryConformance(name: string, open: () => Promise<RegistryFixture>): void {
  describe(`AgentRegistry: ${name}`, () => {
    let f: RegistryFixture;
    beforeAll(async () => {
      f = await open();
    });
    afterAll(() => f?.close());

    it('issues a typeable code and enrolls an agent bound to the code’s site', async () => {
      const c = await f.a.issueCode('acme', 60_000, t0);
      expect(c.code).toMatch(/^[A-Z2-9]{5}(-[A-Z2-9]{5}){3}$/);
      expect(c).toMatchObject({ site: 'acme', expiresAt: at(60_000).toISOString() });
      const input = agent(c.code.toLowerCase());
      const rec = await f.a.enroll(input, at(1000));
      expect(rec).toEqual({
        id: input.id,
        site: 'acme',
        name: input.name,
        certSha256: input.certSha256,
        certPem: input.certPem,
        enrolledAt: at(1000).toISOString(),
        revoked: false,
      });
      expect(await f.b.get(input.id)).toEqual(rec);
      expect(await f.b.get('agt-nobody')).toBeUndefined();
    });

    it('refuses a used, an expired and an unknown code', async () => {
      const c = await f.a.issueCode('acme', 60_000, t0);
      await f.a.enroll(agent(c.code), at(1));
      expect(await refusalOf(f.b.enroll(agent(c.code), at(2)))).toBe('used');
      const e = await f.a.issueCode('acme', 1000, t0);
      expect(await refusalOf(f.a.enroll(agent(e.code), at(1000)))).toBe('expired');
      expect(await refusalOf(f.a.enroll(agent('AAAAA-BBBBB-CCCCC-DDDDD'), t0))).toBe('unknown');
    });

    it('refuses a certificate that is already enrolled, and leaves the code usable', async () => {
      const c1 = await f.a.issueCode('acme', 60_000, t0);
      const first = agent(c1.code);
      await f.a.enroll(first, at(1));
      const c2 = await f.a.issueCode('acme', 60_000, t0);
      const again = { ...agent(c2.code), certSha256: first.certSha256 };
      expect(await refusalOf(f.b.enroll(again, at(2)))).toBe('certificate-taken');
      await expect(f.b.enroll(agent(c2.code), at(3))).resolves.toMatchObject({ site: 'acme' });
    });

    it('refuses a code of another site before it is spent (issue 22): the right site still enrolls with it', async () => {
      const c = await f.a.issueCode('acme', 60_000, t0);
      const wrong = agent(c.code);
      expect(await refusalOf(f.a.enroll({ ...wrong, site: 'other' }, at(1)))).toBe('wrong-site');
      expect(await f.b.get(wrong.id)).toBeUndefined();
      await expect(f.b.enroll({ ...agent(c.code), site: 'acme' }, at(2))).resolves.toMatchObject({
        site: 'acme',
      });
    });

    it('issues no code for a site against the site-name rule, nor one living over 30 days (issue 18)', async () => {
      await expect(f.a.issueCode('ACME HQ/../x', 60_000, t0)).rejects.toThrow(siteNameRule);
      for (const ttl of [999_999_999 * 86_400_000, 30 * 86_400_000 + 1, 0, Number.NaN]) {
        await expect(f.a.issueCode('acme', ttl, t0), String(ttl)).rejects.toThrow(/from 1s to 30d/);
      }
      const longest = await f.a.issueCode('acme', 30 * 86_400_000, t0);
      expect(longest.expiresAt).toBe(at(30 * 86_400_000).toISOString());
    });

    it('of two concurrent enrollments with one code, exactly one succeeds', async () => {
      const c = await f.a.issueCode('globex', 60_000, t0);
      const results = await Promise.allSettled([
        f.a.enroll(agent(c.code), at(5)),
        f.b.enroll(agent(c.code), at(5)),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(lost.reason).toBeInstanceOf(EnrollmentError);
      expect((lost.reason as EnrollmentError).refusal).toBe('used');
    });

    it('lists agents, all or per site, oldest first, without another site’s', async () => {
      const c = await f.a.issueCode('initech', 60_000, t0);
      const x = agent(c.code);
      await f.a.enroll(x, at(10));
      const c2 = await f.a.issueCode('initech', 60_000, t0);
      const y = agent(c2.code);
      await f.a.enroll(y, at(20));
      expect((await f.b.list('initech')).map((r) => r.id)).toEqual([x.id, y.id]);
      const all = await f.b.list();
      expect(all.map((r) => r.id)).toEqual(expect.arrayContaining([x.id, y.id]));
      expect(all.some((r) => r.site === 'acme')).toBe(true);
      expect(await f.b.list('nobody')).toEqual([]);
    });

    it('revokes once (the first time stays) and reports unknown agents', async () => {
      const c = await f.a.issueCode('acme', 60_000, t0);
      const x = agent(c.code);
      await f.a.enroll(x, at(1));
      expect(await f.a.revoke(x.id, at(100))).toBe(true);
      expect(await f.b.revoke(x.id, at(200))).toBe(true);
      expect(await f.a.get(x.id)).toMatchObject({ revoked: true, revokedAt: at(100).toISOString() });
      expect(await f.a.revoke('agt-missing', at(1))).toBe(false);
    });

    it('accepts a nonce once inside its window, per agent, and again after it', async () => {
      const w = signatureWindowMs;
      expect(await f.a.useNonce('agt-1', 'nonce-aaaaaaaaaaaaaaaa', t0, w)).toBe(true);
      expect(await f.b.useNonce('agt-1', 'nonce-aaaaaaaaaaaaaaaa', at(w), w)).toBe(false);
      expect(await f.b.useNonce('agt-2', 'nonce-aaaaaaaaaaaaaaaa', at(w), w)).toBe(true);
      expect(await f.a.useNonce('agt-1', 'nonce-aaaaaaaaaaaaaaaa', at(2 * w + 1), w)).toBe(true);
    });

    it('of two concurrent uses of one nonce, exactly one is accepted', async () => {
      const r = await Promise.all([
        f.a.useNonce('agt-9', 'nonce-bbbbbbbbbbbbbbbb', t0, signatureWindowMs),
        f.b.useNonce('agt-9', 'nonce-bbbbbbbbbbbbbbbb', t0, signatureWindowMs),
      ]);
      expect(r.filter(Boolean)).toHaveLength(1);
    });

    it('keeps the latest inventory per site', async () => {
      expect(await f.a.getInventory('acme')).toBeUndefined();
      await f.a.putInventory({ site: 'acme', agentId: 'agt-1', reportedAt: t0.toISOString(), items: [1] });
      const inv = { site: 'acme', agentId: 'agt-2', reportedAt: at(1).toISOString(), items: [{ vm: 'web' }] };
      await f.b.putInventory(inv);
      expect(await f.a.getInventory('acme')).toEqual(inv);
      expect(await f.a.getInventory('globex')).toBeUndefined();
    });
  });
}
