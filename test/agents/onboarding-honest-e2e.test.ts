import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Transfer } from '../../core/index.ts';
import { type ControlPlane, startControlPlane } from '../../local/control-plane.ts';
import { type AgentProcess, startAgentProcess } from '../support/agent-process.ts';
import { odt } from '../support/cli.ts';
import { nodeCertificate } from '../support/node-cert.ts';
import { type OnboardingSites, startOnboardingSites, vcdUsername } from '../support/onboarding-sites.ts';
import { requestUntilConnected, transferCli, writeTransferRequest } from '../support/transfer-request.ts';
import { until } from '../support/until.ts';

// Issue #19, "honest states", through the workflow with real agents: an ODT node started without
// vCloud Director settings takes a transfer whose item asks for a VDC and power-on. It says so when
// it claims the task, the item ends failed with the reason (VCD_NOT_CONFIGURED, naming where the VM
// is in vCenter and what was asked) in the transfer and in the report, and the transfer is not
// `completed`. Restarted with --vcd, "retry the failed items" finishes it without importing again.
describe('an import without vCloud Director does not call onboarding done (#19)', () => {
  let sites: OnboardingSites;
  let plane: ControlPlane;
  let state: string;
  const agents: AgentProcess[] = [];

  const cli = (...args: string[]) => transferCli(state)(...args);
  const show = async (id: string) => JSON.parse(await cli('transfer', 'show', id, '--json')) as Transfer;
  const phase = (id: string, ...p: string[]) =>
    until(async () => p.includes((await show(id)).phase), `phase ${p.join('|')} of ${id}`, 120_000);

  const importAgent = (code: string | undefined, withVcd: boolean): AgentProcess =>
    startAgentProcess(
      [
        ...['--server', plane.agentApi.url, '--role', 'import', '--dir', join(sites.work, 'agent-cloud')],
        ...(code ? ['--code', code] : []),
        ...['--vcenter', sites.provider.url, '--username', sites.provider.username],
        ...['--nas', sites.nas, '--poll-max', '500ms'],
        ...['--identity', join(sites.work, 'node', 'identity.txt'), '--node-dir', join(sites.work, 'node')],
        ...(withVcd ? ['--vcd', sites.vcd.url, '--vcd-username', vcdUsername] : []),
      ],
      sites.importEnv(),
    );

  beforeAll(async () => {
    sites = await startOnboardingSites(inject('vcsimBinary'), 'odt-honest-e2e-', { diskSize: '4MiB' });
    state = join(sites.work, 'serve');
    plane = await startControlPlane({ stateDir: state, approvers: ['bob'], heartbeatSeconds: 6 });
    await odt(['node', 'init', '--dir', join(sites.work, 'node')]);
    // The export agent pins the node's certificate: it signs each transfer's recipient (#18).
    const nodeCert = await nodeCertificate(join(sites.work, 'agent-cloud'));
    const acme = (await cli('agent', 'enroll', '--site', 'acme')).trim();
    const cloud = (await cli('agent', 'enroll', '--site', 'cloud')).trim();
    agents.push(
      startAgentProcess(
        [
          ...['--server', plane.agentApi.url, '--role', 'export', '--dir', join(sites.work, 'agent-acme')],
          ...['--code', acme, '--nas', sites.nas, '--poll-max', '500ms', '--node-cert', nodeCert],
          ...['--vcenter', sites.customer.url, '--username', sites.customer.username],
        ],
        { ODT_VCENTER_PASSWORD: sites.customer.password },
      ),
      importAgent(cloud, false),
    );
  }, 180_000);

  afterAll(async () => {
    for (const a of agents) await a.stop();
    await plane?.close();
    await sites?.stop();
  });

  it('ends the item failed with the reason, says so at the claim, and a retry with vCD finishes it', async () => {
    const id = await requestUntilConnected(
      cli,
      await writeTransferRequest(join(sites.work, 'request.json'), {
        kind: 'vm',
        source: 'DC0_H0_VM1',
        target: { vdc: 'acme-vdc', network: 'acme-net', powerOn: true },
      }),
    );
    await phase(id, 'exported');
    await cli('transfer', 'event', id, 'shipped', '--carrier', 'DHL', '--tracking', id, '--as', 'alice');
    await cli('transfer', 'event', id, 'received', '--as', 'bob');
    await phase(id, 'failed', 'completed', 'completed-with-errors');

    const t = await show(id);
    expect(t.phase).toBe('failed');
    const result = t.items[0]!.result;
    expect(result).toMatchObject({
      state: 'failed',
      code: 'VCD_NOT_CONFIGURED',
      names: { vcenter: [`DC0_H0_VM1 (${id})`] },
    });
    expect(result.reason).toContain(`in the provider's vCenter as 'DC0_H0_VM1 (${id})'`);
    expect(result.reason).toContain('asked: org VDC acme-vdc, network acme-net, power-on');
    expect(result.reason).toContain('--vcd');
    expect(sites.vcd.state().vapps).toEqual([]);

    // The node said so when it claimed the task: a warning with the items and what they asked.
    const warning = agents[1]!
      .log()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => String(l.msg).includes('no vCloud Director settings'));
    expect(warning).toMatchObject({ level: 'warn', transferId: id });
    expect(JSON.stringify(warning!.items)).toContain('power-on');
    // And at its start, before any task.
    expect(agents[1]!.log()).toContain('started without vCloud Director settings (--vcd)');
    // Both agents logged the task's overall progress against a planned total: the export's checked
    // plan, the import's verified manifest (#19), and ended it whole.
    for (const agent of agents) {
      const last = agent
        .log()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg?: string; progress?: { bytesDone: number; bytesTotal: number } })
        .findLast((l) => l.msg === 'task progress');
      console.log(
        agents.indexOf(agent),
        JSON.stringify(
          agent
            .log()
            .split('\n')
            .filter((l) => l.includes('task progress'))
            .slice(-2),
        ),
      );
      expect(last?.progress).toMatchObject({ planned: true, bytesTotal: last!.progress!.bytesDone });
      expect(last!.progress!.bytesDone).toBeGreaterThan(0);
    }

    // The report (what Slack shows) carries the reason.
    const events = (await readFile(join(state, 'events.log'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; transfer: string; items?: { reason: string | null }[] });
    const report = events.findLast((e) => e.event === 'report' && e.transfer === id)!;
    expect(report.items![0]!.reason).toContain('was not placed in vCloud Director');

    // The node is restarted with its vCloud Director settings: one retry finishes the item.
    await agents[1]!.stop();
    agents[1] = importAgent(undefined, true);
    await cli('transfer', 'retry', id, '--as', 'alice');
    await phase(id, 'completed', 'completed-with-errors', 'wiped');
    const done = await show(id);
    expect(done.phase).toBe('completed');
    expect(done.items[0]!.result).toMatchObject({
      state: 'powered-on',
      names: { vcenter: [`DC0_H0_VM1 (${id})`], vcd: 'DC0_H0_VM1' },
    });
    const vapp = sites.vcd.state().vapps.find((a) => a.name === 'DC0_H0_VM1')!;
    expect(vapp).toMatchObject({ vdc: 'acme-vdc', deployed: true });
    expect(vapp.vms[0]).toMatchObject({ poweredOn: true });
  }, 300_000);
});
