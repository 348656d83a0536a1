import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Transfer } from '../../core/index.ts';
import { type ControlPlane, startControlPlane } from '../../local/control-plane.ts';
import { type RunningFakeVcd, startFakeVcd } from '../peers/vcd/fake-vcd.ts';
import { type RunningSimulator, startSimulator } from '../peers/vsphere/simulator.ts';
import { type AgentProcess, startAgentProcess } from '../support/agent-process.ts';
import { odt } from '../support/cli.ts';
import { jsonLinesIn } from '../support/logs.ts';
import { markNas } from '../support/nas.ts';
import { nodeCertificate } from '../support/node-cert.ts';
import { requestUntilConnected, transferCli, writeTransferRequest } from '../support/transfer-request.ts';
import { until } from '../support/until.ts';

// Issue 6, acceptance: nothing but the admin CLI and the agents' own polling moves a transfer
// from request to onboarded. The agents are real `odt agent run` processes.

/** A port that was free a moment ago: the agent API's fixed --agent-port across restarts. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (e.isFile()) out.push(join(e.parentPath, e.name));
  }
  return out;
}

describe('odt agent run: request → export agent → NAS → ODT node → vCloud Director', () => {
  let customer: RunningSimulator;
  let provider: RunningSimulator;
  let vcd: RunningFakeVcd;
  let plane: ControlPlane;
  let work: string;
  let state: string;
  let nodeCert: string;
  let agentPort: number;
  const agents: AgentProcess[] = [];
  /** The control plane as odt serve starts it, on the same agent port each time (issue 22). */
  const startPlane = () =>
    startControlPlane({ stateDir: state, approvers: ['bob'], heartbeatSeconds: 6, agentPort });

  const cli = (...args: string[]) => transferCli(state)(...args);
  const show = async (id: string) => JSON.parse(await cli('transfer', 'show', id, '--json')) as Transfer;
  const phase = (id: string, p: string) =>
    until(async () => (await show(id)).phase === p, `phase ${p} of ${id}`);
  const request = async (file: string, source: string): Promise<string> =>
    requestUntilConnected(
      cli,
      await writeTransferRequest(file, {
        kind: 'vm',
        source,
        target: { vdc: 'acme-vdc', network: 'acme-net', deploy: true, powerOn: true },
      }),
    );
  const exportArgs = (dir: string, code?: string) => [
    '--server',
    plane.agentApi.url,
    '--role',
    'export',
    '--dir',
    dir,
    ...(code ? ['--code', code] : []),
    '--site',
    'acme',
    '--vcenter',
    customer.url,
    '--username',
    customer.username,
    '--nas',
    join(work, 'nas'),
    '--node-cert',
    nodeCert,
    '--parallel',
    '1',
    '--poll-max',
    '500ms',
  ];

  beforeAll(async () => {
    customer = await startSimulator({ binary: inject('vcsimBinary'), diskSize: '64MiB' });
    provider = await startSimulator({ binary: inject('vcsimBinary'), apps: 0, templates: 0 });
    vcd = await startFakeVcd({
      username: 'admin@System',
      password: 'vcd-pass',
      vcenter: { url: provider.url, username: provider.username, password: provider.password },
    });
    work = await mkdtemp(join(tmpdir(), 'odt-agents-e2e-'));
    // The NAS the export agent writes to, marked as `odt nas init` does (#19).
    await markNas(join(work, 'nas'));
    state = join(work, 'serve');
    agentPort = await freePort();
    plane = await startPlane();
    // The node's long-term identity (packages made by hand); each transfer gets its own key.
    const node = await odt(['node', 'init', '--dir', join(work, 'node')]);
    expect(node.code).toBe(0);
    // The export agent pins the node's certificate: it signs each transfer's recipient (#18).
    nodeCert = await nodeCertificate(join(work, 'agent-cloud'));
    const acmeCode = (await cli('agent', 'enroll', '--site', 'acme')).trim();
    const cloudCode = (await cli('agent', 'enroll', '--site', 'cloud', '--ttl', '5m')).trim();
    agents.push(
      startAgentProcess(exportArgs(join(work, 'agent-acme'), acmeCode), {
        ODT_VCENTER_PASSWORD: customer.password,
      }),
      startAgentProcess(
        [
          '--server',
          plane.agentApi.url,
          '--role',
          'import',
          '--dir',
          join(work, 'agent-cloud'),
          '--code',
          cloudCode,
          '--vcenter',
          provider.url,
          '--username',
          provider.username,
          '--nas',
          join(work, 'nas'),
          '--identity',
          join(work, 'node', 'identity.txt'),
          '--node-dir',
          join(work, 'node'),
          '--vcd',
          vcd.url,
          '--vcd-username',
          'admin@System',
          '--poll-max',
          '500ms',
        ],
        { ODT_VCENTER_PASSWORD: provider.password, ODT_VCD_PASSWORD: 'vcd-pass' },
      ),
    );
  }, 180_000);

  afterAll(async () => {
    for (const a of agents) await a.stop();
    await plane?.close();
    await vcd?.stop();
    await customer?.stop();
    await provider?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('moves a VM with the admin CLI and the agents’ polling only', async () => {
    const id = await request(join(work, 'request.json'), 'DC0_H0_VM1');
    await phase(id, 'exported');
    expect((await show(id)).items[0]!.result.state).toBe('exported');
    // How the export read it, shown to the operator (issue #21): cold, change tracking off.
    expect((await show(id)).items[0]!.result.capture).toEqual({
      read: 'cold (powered off)',
      deltaSync: false,
    });
    expect(await cli('transfer', 'show', id)).toContain('cold (powered off); delta sync later: no');
    await cli('transfer', 'event', id, 'shipped', '--carrier', 'DHL', '--tracking', 'JD01', '--as', 'alice');
    await cli('transfer', 'event', id, 'received', '--as', 'bob');
    await phase(id, 'completed');
    const t = await show(id);
    expect(t.items[0]!.result).toMatchObject({
      state: 'powered-on',
      capture: { read: 'cold (powered off)', deltaSync: false },
    });
    expect(t.items[0]!.result.bytes).toBeGreaterThan(0);

    // The VM's bytes are in the provider's vCenter; vCloud Director took it, powered on.
    const uploads = await files(provider.uploadsDir);
    const disks = uploads.filter((f) => f.endsWith('.vmdk'));
    expect(disks.length).toBeGreaterThanOrEqual(2);
    const app = vcd.state().vapps.find((a) => a.name === 'DC0_H0_VM1')!;
    expect(app).toMatchObject({ vdc: 'acme-vdc', deployed: true });
    expect(app.vms[0]).toMatchObject({ name: 'DC0_H0_VM1', poweredOn: true });

    // The export agent reported the site's inventory on start.
    const inv = JSON.parse(await cli('agent', 'inventory', '--site', 'acme')) as {
      items: { name: string }[];
    };
    expect(inv.items.map((i) => i.name)).toContain('DC0_H0_VM1');
    expect(jsonLinesIn(agents[0]!.log())).toContainEqual(
      expect.objectContaining({
        msg: 'enrolled',
        site: 'acme',
        agentId: expect.stringMatching(/^agt-[0-9a-f]+$/),
      }),
    );
  }, 240_000);

  it('kill -9 mid-disk: the restarted agent resumes the same task without re-sending complete files', async () => {
    // The first export agent stops cleanly (SIGTERM) first, so the restarted one is alone.
    const first = agents[0]!;
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(jsonLinesIn(first.log())).toContainEqual(expect.objectContaining({ msg: 'stopped' }));

    const dir = join(work, 'agent-acme-2');
    const code = (await cli('agent', 'enroll', '--site', 'acme')).trim();
    const env = { ODT_VCENTER_PASSWORD: customer.password };
    // One disk at a time: the state "one disk complete, the next partial" lasts a whole disk.
    const a = startAgentProcess([...exportArgs(dir, code), '--parallel', '1'], env);
    agents.push(a);
    const id = await request(join(work, 'request-2.json'), 'DC0_H0_VM1');
    const item = join(work, 'nas', id, 'item-1');
    // Mid-disk: one disk complete on the NAS, the next one partial.
    const complete = await until(
      async () => {
        const names = await readdir(item).catch(() => [] as string[]);
        const done = names.filter((n) => n.endsWith('.vmdk.age'));
        // A disk's partial, not the journal's own `.journal.json.partial` written between them.
        return done.length >= 1 && names.some((n) => n.endsWith('.vmdk.age.partial')) ? done : undefined;
      },
      'a complete disk and a partial one',
      120_000,
      5,
    );
    a.child.kill('SIGKILL');
    await a.exited;
    const before = await Promise.all(complete.map(async (n) => (await stat(join(item, n))).mtimeMs));

    const again = startAgentProcess([...exportArgs(dir), '--parallel', '1'], env);
    agents.push(again);
    await phase(id, 'exported');
    expect(jsonLinesIn(again.log())).toContainEqual(
      expect.objectContaining({ msg: 'resuming the task', taskId: `${id}-export-1`, transferId: id }),
    );
    const after = await Promise.all(complete.map(async (n) => (await stat(join(item, n))).mtimeMs));
    expect(after).toEqual(before);
    expect((await show(id)).items[0]!.result.state).toBe('exported');
  }, 240_000);

  it('odt serve restarts mid-disk: the agent reconnects by itself and the export completes, no file sent twice (issue 22)', async () => {
    const agent = agents.at(-1)!;
    const id = await request(join(work, 'request-3.json'), 'DC0_H0_VM1');
    const item = join(work, 'nas', id, 'item-1');
    const complete = await until(
      async () => {
        const names = await readdir(item).catch(() => [] as string[]);
        const done = names.filter((n) => n.endsWith('.vmdk.age'));
        return done.length >= 1 && names.some((n) => n.endsWith('.vmdk.age.partial')) ? done : undefined;
      },
      'a complete disk and a partial one',
      120_000,
      5,
    );
    const before = await Promise.all(complete.map(async (n) => (await stat(join(item, n))).mtimeMs));
    const linesBefore = jsonLinesIn(agent.log()).length;

    // Stopped as SIGTERM stops odt serve, for 5 s: more than two heartbeats (every 2 s here), the
    // failures after which the agent used to abort its work. It works on and says why.
    await plane.close();
    await new Promise((r) => setTimeout(r, 5_000));
    const during = jsonLinesIn(agent.log()).slice(linesBefore);
    expect(during.some((l) => /the agent API does not answer/.test(String(l.msg)))).toBe(true);
    plane = await startPlane();
    expect(plane.agentApi.url).toBe(`http://127.0.0.1:${agentPort}`);

    await phase(id, 'exported');
    expect((await show(id)).items[0]!.result.state).toBe('exported');
    // The disks complete before the restart were not written again.
    const after = await Promise.all(complete.map(async (n) => (await stat(join(item, n))).mtimeMs));
    expect(after).toEqual(before);
    // The same process held the task throughout: claimed once, never resumed, never released.
    const lines = jsonLinesIn(agent.log()).filter((l) => l.transferId === id);
    expect(lines.filter((l) => l.msg === 'claimed a task')).toHaveLength(1);
    expect(lines.filter((l) => /resuming|released|no longer ours/.test(String(l.msg)))).toEqual([]);
    expect(agent.child.exitCode).toBeNull();
  }, 240_000);

  it('SIGTERM mid-disk: the agent exits within 5 s and releases its claim; the next one finishes without re-sending complete files (issue 22)', async () => {
    const agent = agents.at(-1)!;
    const id = await request(join(work, 'request-4.json'), 'DC0_H0_VM1');
    const item = join(work, 'nas', id, 'item-1');
    const complete = await until(
      async () => {
        const names = await readdir(item).catch(() => [] as string[]);
        const done = names.filter((n) => n.endsWith('.vmdk.age'));
        return done.length >= 1 && names.some((n) => n.endsWith('.vmdk.age.partial')) ? done : undefined;
      },
      'a complete disk and a partial one',
      120_000,
      5,
    );
    const before = await Promise.all(complete.map(async (n) => (await stat(join(item, n))).mtimeMs));

    const started = Date.now();
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(jsonLinesIn(agent.log())).toContainEqual(
      expect.objectContaining({ msg: expect.stringMatching(/^stopped: task released/), transferId: id }),
    );
    // Open again at once for any agent of the site, not held until its heartbeat lapses.
    expect((await plane.service.openTasks('acme')).map((t) => t.id)).toEqual([`${id}-export-1`]);

    const next = startAgentProcess([...exportArgs(join(work, 'agent-acme-2')), '--parallel', '1'], {
      ODT_VCENTER_PASSWORD: customer.password,
    });
    agents.push(next);
    await phase(id, 'exported');
    const after = await Promise.all(complete.map(async (n) => (await stat(join(item, n))).mtimeMs));
    expect(after).toEqual(before);
  }, 240_000);
});
