// Issue 17, defect 3: a transfer holding two items of one name (two vCenter folders each with a
// `web-01`) imported the first and refused the second as NAME_TAKEN, since both were to be called
// `web-01 (<transfer>)`. Each VM now gets a name of its own, the original first, the item id added
// where names clash or must be shortened to vCenter's 80 characters; the output shows them, and
// vCloud Director gets two vApps told apart the same way.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { vcenterLength, vcenterNameLimit } from '../../../agent/import/import-names.ts';
import type { VimClient } from '../../../agent/vsphere/client.ts';
import type { Moref } from '../../../agent/vsphere/wire/serialize.ts';
import { moRef, RawSoapClient, text } from '../../peers/vsphere/raw-soap.ts';
import type { RunningSimulator } from '../../peers/vsphere/simulator.ts';
import { exportItems, importArgs, initParties, odt } from '../../support/cli.ts';
import { type OnboardingSites, startOnboardingSites } from '../../support/onboarding-sites.ts';
import { connectTo } from '../../support/vsphere.ts';

const transfer = 'tr-same-name';
// 80 characters: the longest name vCenter allows, so that it cannot take a suffix whole.
const long = `${'a-vm-name-as-long-as-vcenter-allows-'.repeat(2)}${'z'.repeat(8)}`;

async function vmNames(sim: RunningSimulator): Promise<string[]> {
  const client = await connectTo(sim);
  try {
    return (await client.listByType(['VirtualMachine'], ['name'])).map(
      (v) => v.props.get('name')?.text ?? '',
    );
  } finally {
    await client.logout();
  }
}

async function runTask(client: VimClient, task: Moref): Promise<void> {
  await client.waitForTask(task);
}

/**
 * On the customer's simulator: folders `a` and `b` under the datacenter's VM folder, DC0_H0_VM0 in
 * `a` and DC0_H0_VM1 in `b`, both renamed `web-01`; the template DC0_C0_TPL0 in `a` and
 * DC0_C0_RP0_VM1, made a template, in `b`, both renamed `tpl-base`; DC0_C0_RP0_VM0 renamed `long`.
 */
async function twoOfOneName(sim: RunningSimulator): Promise<void> {
  const client = await connectTo(sim);
  // CreateFolder and MoveIntoFolder_Task are not calls the agent makes: sent by hand.
  const raw = new RawSoapClient(sim.url);
  await raw.login(sim.username, sim.password);
  try {
    const [dc] = await client.listByType(['Datacenter'], ['vmFolder']);
    const vmFolder = dc!.props.get('vmFolder')!.moref;
    const vms = await client.listByType(['VirtualMachine'], ['name']);
    const vm = (name: string) => vms.find((v) => v.props.get('name')?.text === name)!.obj;
    await client.invoke('MarkAsTemplate', { _this: vm('DC0_C0_RP0_VM1') });
    for (const [folder, names] of [
      ['a', ['DC0_H0_VM0', 'DC0_C0_TPL0']],
      ['b', ['DC0_H0_VM1', 'DC0_C0_RP0_VM1']],
    ] as const) {
      const created = await raw.call(
        `<CreateFolder xmlns="urn:vim25">${moRef('_this', 'Folder', vmFolder.value)}<name>${folder}</name></CreateFolder>`,
      );
      const moved = await raw.call(
        `<MoveIntoFolder_Task xmlns="urn:vim25">${moRef('_this', 'Folder', text(created, 'returnval')!)}` +
          `${names.map((name) => moRef('list', 'VirtualMachine', vm(name).value)).join('')}</MoveIntoFolder_Task>`,
      );
      await runTask(client, { type: 'Task', value: text(moved, 'returnval')! });
    }
    for (const [name, newName] of [
      ['DC0_H0_VM0', 'web-01'],
      ['DC0_H0_VM1', 'web-01'],
      ['DC0_C0_TPL0', 'tpl-base'],
      ['DC0_C0_RP0_VM1', 'tpl-base'],
      ['DC0_C0_RP0_VM0', long],
    ]) {
      const task = await client.invoke('Rename_Task', { _this: vm(name!), newName });
      await runTask(client, task.child('returnval')!.moref);
    }
  } finally {
    await client.logout();
  }
}

describe('odt import of a transfer with two items of one name (#17)', () => {
  let sites: OnboardingSites;
  let provider: RunningSimulator;
  let work: string;
  let nas: string;

  beforeAll(async () => {
    sites = await startOnboardingSites(inject('vcsimBinary'), 'odt-same-name-', {
      apps: 0,
      poweredOn: [],
      disksPerVm: 1,
      diskSize: 256 * 1024,
    });
    ({ provider, work, nas } = sites);
    expect(long).toHaveLength(80);
    await twoOfOneName(sites.customer);
    const recipient = await initParties(work);
    await exportItems(
      sites.customer,
      work,
      recipient,
      ['/DC0/vm/a/web-01', '/DC0/vm/b/web-01', long, '/DC0/vm/a/tpl-base', '/DC0/vm/b/tpl-base'],
      nas,
      transfer,
    );
  });
  afterAll(async () => {
    await sites?.stop();
  });

  const withVcd = (state: string) => [
    ...importArgs(provider, work, nas, transfer, join(work, state)),
    ...sites.vcdArgs({ placeAndPowerOn: true }),
  ];

  it('imports both VMs and both templates of one name, each under a name with its item id, shortens an 80-character name keeping the suffix, and says so', async () => {
    const r = await odt(withVcd('state'), sites.importEnv());

    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(
      new RegExp(
        `item-1 web-01: imported as 'web-01 \\(${transfer} item-1\\)' \\(vm-\\d+\\); onboarded into vCloud Director as the vApp 'web-01 \\(item-1\\)', powered on`,
      ),
    );
    expect(r.out).toMatch(
      new RegExp(
        `item-2 web-01: imported as 'web-01 \\(${transfer} item-2\\)' \\(vm-\\d+\\); onboarded into vCloud Director as the vApp 'web-01 \\(item-2\\)', powered on`,
      ),
    );
    const names = await vmNames(provider);
    expect(names).toEqual(
      expect.arrayContaining([`web-01 (${transfer} item-1)`, `web-01 (${transfer} item-2)`]),
    );
    // The long name: cut at the end of the original name, the suffix whole, within vCenter's limit.
    const shortened = names.find((n) => n.startsWith('a-vm-name-as-long'))!;
    expect(shortened).toMatch(
      new RegExp(`^a-vm-name-as-long-as-vcenter-allows-a-vm-name.*… \\(${transfer} item-3\\)$`),
    );
    for (const n of names) expect(vcenterLength(n), n).toBeLessThanOrEqual(vcenterNameLimit);
    expect(r.out).toContain(`item-3 ${long}: imported as '${shortened}'`);
    // vCloud Director: two vApps of the VDC told apart; the long name fits its 128 characters whole.
    // Two templates of one name: two catalog items, and two vApps instantiated from them.
    const vapps = sites.vcd.state().vapps;
    expect(vapps.map((a) => a.name).sort()).toEqual(
      [long, 'web-01 (item-1)', 'web-01 (item-2)', 'tpl-base (item-4)', 'tpl-base (item-5)'].sort(),
    );
    expect(sites.vcd.state().templates.map((t) => [t.name, t.catalog])).toEqual([
      ['tpl-base (item-4)', 'acme-catalog'],
      ['tpl-base (item-5)', 'acme-catalog'],
    ]);
    expect(r.out).toMatch(
      new RegExp(
        `item-5 tpl-base: imported as 'tpl-base \\(${transfer} item-5\\)' \\(vm-\\d+\\); onboarded into vCloud Director as the catalog template 'tpl-base \\(item-5\\)', powered on`,
      ),
    );
    expect(vapps.find((a) => a.name === 'web-01 (item-2)')!.vms[0]).toMatchObject({
      name: 'web-01 (item-2)',
      poweredOn: true,
    });
    expect(vapps.find((a) => a.name === long)!.vms[0]!.name).toBe(`${long} (item-3)`);
  });

  it('a rerun keeps both and skips them: no NAME_TAKEN', async () => {
    const before = await vmNames(provider);

    const r = await odt(withVcd('state'), sites.importEnv());

    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain(`item-1 web-01: already imported as 'web-01 (${transfer} item-1)'`);
    expect(r.out).toContain(`item-2 web-01: already imported as 'web-01 (${transfer} item-2)'`);
    expect(r.out).toContain("as the vApp 'web-01 (item-2)', powered on (earlier)");
    expect((await vmNames(provider)).sort()).toEqual(before.sort());
  });

  it('a rerun from another state folder finds both by their names and marks, and lists each VM', async () => {
    const r = await odt([...importArgs(provider, work, nas, transfer, join(work, 'state-b')), '--json'], {
      ODT_VCENTER_PASSWORD: provider.password,
    });

    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const items = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; item?: string; skipped?: boolean; vcenterVms?: unknown })
      .filter((e) => e.event === 'item');
    const vm = expect.stringMatching(/^vm-/);
    expect(items.map((i) => [i.item, i.skipped, i.vcenterVms])).toEqual([
      ['item-1', true, [{ name: `web-01 (${transfer} item-1)`, vm }]],
      ['item-2', true, [{ name: `web-01 (${transfer} item-2)`, vm }]],
      ['item-3', true, [{ name: expect.stringMatching(/… \(tr-same-name item-3\)$/), vm }]],
      ['item-4', true, [{ name: `tpl-base (${transfer} item-4)`, vm }]],
      ['item-5', true, [{ name: `tpl-base (${transfer} item-5)`, vm }]],
    ]);
  });
});
