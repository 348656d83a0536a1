import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadAgentIdentity } from '../../agent/identity/agent-identity.ts';
import { type RunningSimulator, startSimulator } from '../peers/vsphere/simulator.ts';
import { type AgentProcess, startAgentProcess } from '../support/agent-process.ts';
import { answerKeyTaskOverApi } from '../support/fake-node.ts';
import { jsonLinesIn } from '../support/logs.ts';
import { markNas } from '../support/nas.ts';
import { nodeCertificate } from '../support/node-cert.ts';
import { type ServeProcess, serveAdmin, startServe } from '../support/serve-process.ts';
import { writeTransferRequest } from '../support/transfer-request.ts';
import { until } from '../support/until.ts';

// Issue 22, acceptance 2, with `odt serve` itself: the process is stopped with SIGTERM (as
// systemd stops it) while a real export agent is mid-disk, stays down until the agent has found
// its API gone, and is started again without --agent-port (the port of the last start, kept in
// the state folder). The agent, never restarted, reconnects by itself, the transfer is exported
// and no complete disk is written again. (test/agents/agents-e2e.test.ts restarts the control
// plane inside the test's own process, with a shorter heartbeat than odt serve has.)

/** A port that was free a moment ago: the agent API's --agent-port of the first start. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe('odt serve (a process) restarted while an export agent is mid-disk', () => {
  let customer: RunningSimulator;
  let work: string;
  let state: string;
  let serve: ServeProcess | undefined;
  let agent: AgentProcess | undefined;

  beforeAll(async () => {
    customer = await startSimulator({ binary: inject('vcsimBinary'), diskSize: '64MiB' });
    work = await mkdtemp(join(tmpdir(), 'odt-serve-agent-restart-'));
    state = join(work, 'serve');
    await markNas(join(work, 'nas'));
  }, 180_000);

  afterAll(async () => {
    await agent?.stop();
    if (serve) {
      serve.child.kill('SIGKILL');
      await serve.exited;
    }
    await customer?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('the agent reconnects by itself to the restarted serve, and the export completes with no disk sent twice', async () => {
    const agentPort = await freePort();
    serve = await startServe(state, ['--agent-port', String(agentPort)]);
    const server = `http://127.0.0.1:${agentPort}`;
    expect(serve.out()).toContain(`agent API ${server}`);
    const { cli, api, show } = serveAdmin(state);
    const ok = async (...args: string[]) => {
      const r = await cli(...args);
      expect(r.code, `odt ${args.join(' ')}: ${r.err}`).toBe(0);
      return r.out.trim();
    };

    // The ODT node's identity: its certificate is pinned by the export agent, and it signs the
    // transfer's recipient (#18); this test runs no node, so its key task is answered over the API.
    const nodeCert = await nodeCertificate(join(work, 'node-agent'));
    const node = await loadAgentIdentity(join(work, 'node-agent'));
    const code = await ok('agent', 'enroll', '--site', 'acme');
    agent = startAgentProcess(
      [
        '--server',
        server,
        '--role',
        'export',
        '--dir',
        join(work, 'agent'),
        '--code',
        code,
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
        // One disk at a time: "one disk complete, the next partial" lasts a whole disk.
        '--parallel',
        '1',
        '--poll-max',
        '500ms',
      ],
      { ODT_VCENTER_PASSWORD: customer.password },
    );
    const a = agent;
    await until(async () => /serving the site/.test(a.log()), `the agent to start: ${a.log()}`, 60_000);

    const file = await writeTransferRequest(join(work, 'request.json'), {
      kind: 'vm',
      source: 'DC0_H0_VM1',
      target: { vdc: 'acme-vdc' },
    });
    const id = await ok('transfer', 'request', '--file', file);
    await ok('transfer', 'approve', id, '--as', 'bob');
    await until(
      async () => answerKeyTaskOverApi(api, 'cloud', await show(id), 'node-1', node).catch(() => false),
      'the make-key task',
      30_000,
    );
    await ok('transfer', 'event', id, 'appliance-sent', '--as', 'bob');
    await ok('transfer', 'event', id, 'appliance-connected', '--as', 'alice');

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
    const linesBefore = jsonLinesIn(a.log()).length;

    // SIGTERM while the agent holds the task: serve ends within 5 s, as systemd's stop needs.
    const stopping = serve;
    serve = undefined;
    const started = Date.now();
    stopping.child.kill('SIGTERM');
    expect(await stopping.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(5_000);

    // Down until the agent has met its absent API (at the latest when it reports the item).
    await until(
      async () =>
        jsonLinesIn(a.log())
          .slice(linesBefore)
          .some((l) => /the agent API does not answer/.test(String(l.msg))),
      `the agent to find its API gone: ${a.log().slice(-2000)}`,
      180_000,
    );
    expect(a.child.exitCode).toBeNull();

    // Started again without --agent-port: the port the agent was given, kept from the last start.
    serve = await startServe(state, [], { anyAgentPort: false });
    expect(serve.out()).toContain(`agent API ${server}`);
    expect(serve.out()).toMatch(/resumed 1 open transfer/);

    await until(async () => (await show(id)).phase === 'exported', `transfer ${id} exported`, 120_000);
    expect((await show(id)).items[0]!.result.state).toBe('exported');
    // The disks complete before the restart were not written again.
    const after = await Promise.all(complete.map(async (n) => (await stat(join(item, n))).mtimeMs));
    expect(after).toEqual(before);
    // The same process held the task throughout: claimed once, never resumed, never released.
    const lines = jsonLinesIn(a.log()).filter((l) => l.transferId === id);
    expect(lines.filter((l) => l.msg === 'claimed a task')).toHaveLength(1);
    expect(lines.filter((l) => /resuming|released|no longer ours/.test(String(l.msg)))).toEqual([]);
    expect(a.child.exitCode).toBeNull();
  }, 480_000);
});
