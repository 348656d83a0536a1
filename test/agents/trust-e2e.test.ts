import { cp, mkdtemp, readFile, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { initAgentIdentity } from '../../agent/identity/agent-identity.ts';
import type { Transfer } from '../../core/index.ts';
import { type ControlPlane, startControlPlane } from '../../local/control-plane.ts';
import { type RunningFakeVcd, startFakeVcd } from '../peers/vcd/fake-vcd.ts';
import { type RunningSimulator, startSimulator } from '../peers/vsphere/simulator.ts';
import { type AgentProcess, startAgentProcess } from '../support/agent-process.ts';
import { odt } from '../support/cli.ts';
import { statementFor } from '../support/fake-node.ts';
import { forgeTransfer, vcenterTrace, vmNames } from '../support/forge.ts';
import { markNas } from '../support/nas.ts';
import { nodeCertificate } from '../support/node-cert.ts';
import { requestUntilConnected, transferCli, writeTransferRequest } from '../support/transfer-request.ts';
import { until } from '../support/until.ts';

// Issue #18, acceptance, through the workflow with real agents: the ODT node pins the signer it
// gets from the control plane with the task (the enrolled export agent), never the NAS; a forged
// NAS and another transfer's genuine package are refused with nothing sent to vCenter; the failed
// import fails every item with the reason, and "retry" finishes the transfer once the genuine NAS
// is back.
describe('the workflow refuses a forged or misplaced NAS, and a retry finishes once it is back (#18)', () => {
  let customer: RunningSimulator;
  let provider: RunningSimulator;
  let vcd: RunningFakeVcd;
  let plane: ControlPlane;
  let work: string;
  let state: string;
  let nas: string;
  let nodeCert: string;
  const agents: AgentProcess[] = [];

  const cli = (...args: string[]) => transferCli(state)(...args);
  const show = async (id: string) => JSON.parse(await cli('transfer', 'show', id, '--json')) as Transfer;
  const phase = (id: string, p: string) =>
    until(async () => (await show(id)).phase === p, `phase ${p} of ${id}`, 120_000);
  const request = async (name: string): Promise<string> =>
    requestUntilConnected(
      cli,
      await writeTransferRequest(join(work, `${name}.json`), {
        kind: 'vm',
        source: 'DC0_H0_VM1',
        target: { vdc: `vdc-${name}` },
      }),
    );
  const shipAndReceive = async (id: string) => {
    await cli('transfer', 'event', id, 'shipped', '--carrier', 'DHL', '--tracking', id, '--as', 'alice');
    await cli('transfer', 'event', id, 'received', '--as', 'bob');
  };

  beforeAll(async () => {
    customer = await startSimulator({ binary: inject('vcsimBinary'), diskSize: '4MiB' });
    provider = await startSimulator({ binary: inject('vcsimBinary'), apps: 0, templates: 0 });
    // The items ask for a VDC: the node needs vCloud Director to finish them (issue #19).
    vcd = await startFakeVcd({
      username: 'admin@System',
      password: 'vcd-pass',
      vcenter: { url: provider.url, username: provider.username, password: provider.password },
      // One VDC per transfer: both move the same VM, and one VDC holds one vApp of a name.
      seed: { orgs: [{ name: 'acme', vdcs: [{ name: 'vdc-forged' }, { name: 'vdc-stale' }] }] },
    });
    work = await mkdtemp(join(tmpdir(), 'odt-trust-e2e-'));
    state = join(work, 'serve');
    nas = join(work, 'nas');
    await markNas(nas);
    plane = await startControlPlane({ stateDir: state, approvers: ['bob'], heartbeatSeconds: 6 });
    const node = await odt(['node', 'init', '--dir', join(work, 'node')]);
    expect(node.code).toBe(0);
    // The export agent pins the node's certificate: it signs each transfer's recipient (#18).
    nodeCert = await nodeCertificate(join(work, 'agent-cloud'));
    const acme = (await cli('agent', 'enroll', '--site', 'acme')).trim();
    const cloud = (await cli('agent', 'enroll', '--site', 'cloud')).trim();
    const common = ['--server', plane.agentApi.url, '--nas', nas, '--poll-max', '500ms'];
    agents.push(
      startAgentProcess(
        [
          ...['--role', 'export', '--dir', join(work, 'agent-acme'), '--code', acme, ...common],
          ...['--vcenter', customer.url, '--username', customer.username, '--node-cert', nodeCert],
        ],
        { ODT_VCENTER_PASSWORD: customer.password },
      ),
      startAgentProcess(
        [
          ...['--role', 'import', '--dir', join(work, 'agent-cloud'), '--code', cloud, ...common],
          ...['--vcenter', provider.url, '--username', provider.username],
          ...['--identity', join(work, 'node', 'identity.txt'), '--node-dir', join(work, 'node')],
          ...['--vcd', vcd.url, '--vcd-username', 'admin@System'],
        ],
        { ODT_VCENTER_PASSWORD: provider.password, ODT_VCD_PASSWORD: 'vcd-pass' },
      ),
    );
  }, 180_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await plane?.close();
    await customer?.stop();
    await provider?.stop();
    await vcd?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('refuses both by name with nothing sent to vCenter; retry with the genuine NAS completes both', async () => {
    const forged = await request('forged');
    const stale = await request('stale');
    await phase(forged, 'exported');
    await phase(stale, 'exported');
    const genuine = join(work, 'genuine');
    await cp(nas, genuine, { recursive: true });
    // Someone who can write the NAS forges the first transfer (re-encrypted to its public
    // recipient, which transfer.json names, re-signed by a key nobody enrolled), and puts the first
    // transfer's genuine package, signed by the enrolled agent, in place of the second's.
    const { recipient } = JSON.parse(await readFile(join(nas, forged, 'transfer.json'), 'utf8')) as {
      recipient: string;
    };
    await forgeTransfer(join(nas, forged), recipient, join(work, 'forger'));
    await rm(join(nas, stale), { recursive: true });
    await cp(join(genuine, forged), join(nas, stale), { recursive: true });

    const before = await vcenterTrace(provider);
    await shipAndReceive(forged);
    await shipAndReceive(stale);
    await phase(forged, 'failed');
    await phase(stale, 'failed');
    expect(await vcenterTrace(provider)).toEqual(before);

    // Every item the import did not finish failed, with the node's reason: "retry" has work.
    const forgedItem = (await show(forged)).items[0]!.result;
    expect(forgedItem).toMatchObject({ state: 'failed', code: 'TRANSFER_NOT_TRUSTED' });
    expect(forgedItem.reason).toMatch(/nothing was imported.*\[UNTRUSTED_SIGNER\]/s);
    const staleItem = (await show(stale)).items[0]!.result;
    expect(staleItem).toMatchObject({ state: 'failed', code: 'TRANSFER_NOT_TRUSTED' });
    expect(staleItem.reason).toContain(`is signed for transfer ${forged}, not ${stale}`);
    expect(staleItem.reason).toContain('[TRANSFER_MISMATCH]');

    // The genuine NAS is back: one retry each finishes both transfers.
    for (const id of [forged, stale]) {
      await rename(join(nas, id), join(work, `refused-${id}`));
      await cp(join(genuine, id), join(nas, id), { recursive: true });
      await cli('transfer', 'retry', id, '--as', 'alice');
    }
    await phase(forged, 'completed');
    await phase(stale, 'completed');
    for (const id of [forged, stale]) {
      const t = await show(id);
      expect(t.items[0]!.result).toMatchObject({
        state: 'onboarded',
        names: { vcenter: [`DC0_H0_VM1 (${id})`] },
      });
      expect(t.history.filter((h) => h.phase === 'importing')).toHaveLength(2);
    }
    const vms = await vmNames(provider);
    expect(vms).toEqual(expect.arrayContaining([`DC0_H0_VM1 (${forged})`, `DC0_H0_VM1 (${stale})`]));
  }, 300_000);

  it('the export agent refuses a key the control plane hands out that the pinned node did not sign: nothing reaches the NAS', async () => {
    // A compromised control plane answers the key task itself (no node serves this provider site),
    // once with a recipient signed by a key of its own, once unsigned.
    const rogue = (await initAgentIdentity(join(work, 'rogue'), { commonName: 'rogue' })).identity;
    for (const signer of [rogue, undefined]) {
      const t = await plane.service.request({
        site: 'acme',
        providerSite: 'nobody-here',
        requester: 'alice',
        items: [{ kind: 'vm', source: 'DC0_H0_VM1', target: { vdc: 'vdc-rogue' } }],
      });
      await plane.service.approve(t.id, 'bob');
      const task = await until(
        async () => (await plane.service.openTasks('nobody-here')).find((x) => x.transferId === t.id),
        'the make-key task',
        10_000,
      );
      await plane.service.claimTask(task.id, 'nobody-here', 'rogue');
      await plane.service.taskComplete(task.id, 'rogue', [], statementFor('make-key', t, 'rogue', signer));
      await plane.service.event(t.id, 'appliance-sent', 'bob');
      await plane.service.event(t.id, 'appliance-connected', 'alice');
      await phase(t.id, 'failed');
      const item = (await show(t.id)).items[0]!.result;
      expect(item).toMatchObject({ state: 'failed', code: 'RECIPIENT_UNTRUSTED' });
      expect(item.reason).toContain('is not signed by the pinned ODT node');
      await expect(stat(join(nas, t.id))).rejects.toMatchObject({ code: 'ENOENT' });
    }
  }, 120_000);
});
