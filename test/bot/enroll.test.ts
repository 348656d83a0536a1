import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { initAgentIdentity } from '../../agent/identity/agent-identity.ts';
import { AgentApiClient } from '../../agent/runtime/api-client.ts';
import { registerAgentRun } from '../../cli/commands/agent-run.ts';
import { APPROVERS, type Harness, REQUESTER, startHarness, visible } from './harness.ts';

let h: Harness;
beforeEach(async () => {
  h = await startHarness({ inventory: false, bot: { enrollmentTtlMs: 10 * 60_000 } });
});
afterEach(async () => {
  await h?.close();
});

const APPROVER = APPROVERS[0]!;
const CODE = /[A-HJ-NP-Z2-9]{5}(?:-[A-HJ-NP-Z2-9]{5}){3}/;

async function enroll(text: string, user = APPROVER) {
  const res = await h.command(`agent enroll ${text}`.trim(), user);
  expect(res.status).toBe(200);
  return (await res.json()) as { response_type: string; text: string; blocks: unknown[] };
}

/** The long flags `odt agent run` really has (cli/commands/agent-run.ts). */
function agentRunFlags(): Set<string> {
  const program = new Command();
  registerAgentRun(program, { out: process.stdout, err: process.stderr });
  const run = program.commands.find((c) => c.name() === 'agent')!.commands.find((c) => c.name() === 'run')!;
  return new Set(run.options.map((o) => o.long!));
}

describe('/odt agent enroll', () => {
  it('gives an approver a one-time code and the agent command line, ephemerally; the code enrolls an agent', async () => {
    const before = Date.now();
    const body = await enroll('acme-dc2');
    expect(body.response_type).toBe('ephemeral');
    const seen = visible(body.blocks);
    const code = CODE.exec(seen)![0];
    expect(seen).toContain('Enrollment code for the export agent of `acme-dc2`');
    expect(seen).toContain('(10 min)');
    const expires = /<!date\^(\d+)\^/.exec(seen)!;
    expect(Number(expires[1]) * 1000).toBeGreaterThanOrEqual(before + 10 * 60_000 - 1000);
    expect(Number(expires[1]) * 1000).toBeLessThanOrEqual(Date.now() + 10 * 60_000);
    const line = /```([\s\S]+?)```/.exec(seen)![1]!;
    expect(line).toContain('odt agent run');
    expect(seen).toContain('`ODT_VCENTER_PASSWORD`');
    expect(line).toContain('--role export');
    // The node's certificate, pinned on the export agent's side (issue #18).
    expect(line).toContain('--node-cert');
    expect(line).toContain('--site acme-dc2');
    expect(line).toContain(`--code ${code}`);
    expect(line).toContain(`--server ${h.plane.agentApi.url}`);
    // Every flag in the line is one that odt agent run takes.
    const flags = agentRunFlags();
    for (const flag of line.match(/--[a-z-]+/g)!) expect(flags, flag).toContain(flag);
    // The code never went through the Web API (no channel message, no DM).
    expect(JSON.stringify(h.slack.calls)).not.toContain(code);
    // And it is real: an agent enrolls with it, for that site, once.
    const dir = mkdtempSync(join(tmpdir(), 'odt-enroll-'));
    const { identity } = await initAgentIdentity(join(dir, 'agent'), { commonName: 'acme-dc2-export' });
    const client = new AgentApiClient({ server: h.plane.agentApi.url, keyPem: identity.keyPem });
    expect(await client.enroll(code, identity.certPem, 'acme-dc2-export')).toMatchObject({
      site: 'acme-dc2',
    });
    expect((await h.plane.registry.list('acme-dc2')).map((a) => a.name)).toEqual(['acme-dc2-export']);
  });

  it('for the ODT node (import role) the line has the import flags', async () => {
    const body = await enroll('provider import');
    const line = /```([\s\S]+?)```/.exec(visible(body.blocks))![1]!;
    expect(line).toContain('--role import');
    expect(line).toContain('--identity');
    expect(line).toContain('--vcd-username');
    expect(line).not.toContain('--recipient');
    const flags = agentRunFlags();
    for (const flag of line.match(/--[a-z-]+/g)!) expect(flags, flag).toContain(flag);
  });

  it('refuses a non-approver, and issues nothing', async () => {
    const body = await enroll('acme-dc2', REQUESTER);
    expect(body.response_type).toBe('ephemeral');
    expect(body.text).toContain('Only approvers may enroll agents');
    expect(CODE.test(JSON.stringify(body))).toBe(false);
    expect(h.slack.calls).toHaveLength(0);
  });

  it('says what is wrong with a bad site, a bad role or no site', async () => {
    expect((await enroll('Not_A_Site')).text).toContain('`Not_A_Site` is not a site name');
    expect((await enroll('acme-dc2 backup')).text).toContain('The role is `export`');
    expect((await enroll('')).text).toContain('Which site?');
    const usage = (await (await h.command('agent', APPROVER)).json()) as { text: string };
    expect(usage.text).toContain('/odt agent enroll <site> [export|import]');
  });

  it('is listed in the help', async () => {
    const help = (await (await h.command('help')).json()) as { blocks: unknown[] };
    expect(visible(help.blocks)).toContain('/odt agent enroll <site>');
  });
});
