/**
 * #7 end to end with the real agents: the same Slack path as slack-e2e.test.ts (modal, Approve,
 * shipping buttons through Bolt's HTTP receiver; the embedded runner with the Slack chat notifier),
 * but the items are picked from the inventory the real export agent reported from a vSphere
 * simulator, and the export agent and the ODT node (`runAgent`, as `odt agent run` starts them)
 * export, encrypt, verify, import and onboard them against the simulators and the fake vCloud
 * Director, as `odt sandbox` does. Slack sees only what the service tells its chat.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initAgentIdentity } from '../../agent/identity/agent-identity.ts';
import { initNodeIdentity } from '../../agent/identity/node-identity.ts';
import { exportRole, importRole } from '../../agent/runtime/roles.ts';
import { runAgent } from '../../agent/runtime/run-agent.ts';
import { type RunningFakeVcd, startFakeVcd } from '../peers/vcd/fake-vcd.ts';
import { buildSimulator, type RunningSimulator, startSimulator } from '../peers/vsphere/simulator.ts';
import { captureLogs } from '../support/logs.ts';
import { markNas } from '../support/nas.ts';
import { reports, requestAndApprove, shipBackAndReceive } from './chat-flow.ts';
import { type ChatHarness, phase, startChatHarness, until } from './chat-harness.ts';
import { CHANNEL, requestValues, visible } from './harness.ts';

let h: ChatHarness;
let customer: RunningSimulator;
let provider: RunningSimulator;
let vcd: RunningFakeVcd;
const stop = new AbortController();
const runs: Promise<unknown>[] = [];
/** What the agents logged: shown when a wait times out. */
const agentLog = captureLogs('info');

beforeAll(async () => {
  const binary = await buildSimulator();
  h = await startChatHarness({ minIntervalMs: 250, agents: false, heartbeatSeconds: 3 });
  customer = await startSimulator({
    binary,
    diskSize: '16MiB',
    dataDir: join(h.stateDir, 'customer-vcenter'),
  });
  provider = await startSimulator({
    binary,
    apps: 0,
    templates: 0,
    dataDir: join(h.stateDir, 'provider-vcenter'),
  });
  vcd = await startFakeVcd({
    username: 'admin@System',
    password: 'test-vcd',
    vcenter: { url: provider.url, username: provider.username, password: provider.password },
  });
  const nas = join(h.stateDir, 'nas');
  mkdirSync(nas);
  await markNas(nas);
  await initNodeIdentity(join(h.stateDir, 'odt-node'));
  const { identity: node } = await initAgentIdentity(join(h.stateDir, 'odt-node-agent'));
  const acme = await h.plane.registry.issueCode('acme', 60_000, new Date());
  const cloud = await h.plane.registry.issueCode('cloud', 60_000, new Date());
  const common = {
    server: h.plane.agentApi.url,
    signal: stop.signal,
    pollMinMs: 100,
    pollMaxMs: 300,
    inventoryEveryMs: 0,
    log: agentLog.logger,
  };
  runs.push(
    runAgent({
      ...common,
      dir: join(h.stateDir, 'export-agent'),
      code: acme.code,
      site: 'acme',
      name: 'acme-export-agent',
      role: exportRole({
        vcenter: {
          url: customer.url,
          username: customer.username,
          password: customer.password,
          trust: { kind: 'system' },
        },
        nas,
        nodeCertPem: node.certPem,
        dir: join(h.stateDir, 'export-agent'),
        parallel: 2,
      }),
    }),
    runAgent({
      ...common,
      dir: join(h.stateDir, 'odt-node-agent'),
      code: cloud.code,
      site: 'cloud',
      name: 'cloud-odt-node',
      role: importRole({
        vcenter: {
          url: provider.url,
          username: provider.username,
          password: provider.password,
          trust: { kind: 'system' },
        },
        nas,
        identityFile: join(h.stateDir, 'odt-node', 'identity.txt'),
        stateDir: join(h.stateDir, 'odt-node'),
        dir: join(h.stateDir, 'odt-node-agent'),
        vcd: { url: vcd.url, username: 'admin@System', password: 'test-vcd', trust: { kind: 'system' } },
        parallel: 2,
      }),
    }),
  );
}, 180_000);

afterAll(async () => {
  stop.abort();
  await Promise.allSettled(runs);
  await h?.close();
  await vcd?.stop();
  await provider?.stop();
  await customer?.stop();
});

describe('Slack end to end with the real agents (#7)', () => {
  it('items from the reported inventory are exported, imported and powered on; Slack shows it in place', async () => {
    const inventory = await until(
      'the inventory of acme',
      async () => (await h.plane.registry.getInventory('acme')) ?? undefined,
    );
    const items = ['DC0_H0_VM1', 'DC0_C0_APP0'];
    const reported = inventory.items as { kind: string; name: string; path: string }[];
    for (const name of items)
      expect(
        reported.some((i) => i.name === name),
        `${name} in the reported inventory`,
      ).toBe(true);
    const values = requestValues({
      site: 'acme',
      inventory: reported,
      items,
      network: 'acme-net',
      provider_site: 'cloud',
      choices: Object.fromEntries(items.map((name) => [name, ['deploy', 'powerOn']])),
    });
    const flow = await requestAndApprove(h, values, false);
    const { id, root } = flow;
    await phase(h, id, 'exported').catch((error: Error) => {
      throw new Error(`${error.message}\nagents:\n${agentLog.text()}`);
    });
    await shipBackAndReceive(h, flow);
    await until('the report', () => reports(h).length > 0, 120_000);

    const t = await h.plane.service.get(id);
    expect(t.items.map((i) => [i.source, i.result.state])).toEqual([
      ['DC0_H0_VM1', 'powered-on'],
      ['DC0_C0_APP0', 'powered-on'],
    ]);
    // One progress message in the thread, updated in place through export and import.
    const progress = h.slack
      .ok('chat.postMessage')
      .filter((c) => String(c.args.text).startsWith(`Progress of ${id}`));
    expect(progress).toHaveLength(1);
    expect(progress[0]!.args.thread_ts).toBe(root);
    const ts = progress[0]!.response.ts as string;
    const updates = h.slack.ok('chat.update').filter((c) => c.args.ts === ts);
    expect(updates.length).toBeGreaterThanOrEqual(1);
    await until('the final state in the progress message', () =>
      visible(h.slack.message(CHANNEL, ts)?.blocks).includes('now *completed*'),
    );
    // The report: per item what it reached, the bytes the agents reported.
    const report = visible(reports(h)[0]!.args.blocks);
    expect(report).toContain('2 of 2 item(s) succeeded');
    expect(report).toContain('`DC0_H0_VM1` — exported · verified · imported · onboarded · powered on');
    expect(report).toContain('`DC0_C0_APP0` — exported · verified · imported · onboarded · powered on');
    const bytes = t.items.reduce((n, i) => n + i.result.bytes, 0);
    expect(bytes).toBeGreaterThan(2 * 16 * 1024 * 1024);
    expect(JSON.stringify(reports(h)[0]!.args.blocks)).not.toContain('odt_retry');
    expect(h.slack.failed()).toEqual([]);
  }, 180_000);
});
