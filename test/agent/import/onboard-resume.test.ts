import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { ImportJournal, type ImportRecord } from '../../../agent/import/import-journal.ts';
import { onboardItem } from '../../../agent/import/onboard.ts';
import type { ManifestItem } from '../../../agent/package/transfer-manifest.ts';
import { VcdClient } from '../../../agent/vcd/client.ts';
import type { ItemTarget } from '../../../core/index.ts';
import { type RunningFakeVcd, startFakeVcd } from '../../peers/vcd/fake-vcd.ts';
import { type RunningSimulator, startSimulator } from '../../peers/vsphere/simulator.ts';

// Issue 8: a catalog template asked to run is instantiated as a vApp exactly once, whatever step
// an earlier run stopped at: each step is journaled, and a vApp whose journal entry was lost is
// recognised by the description it was created with, never by its name alone.

const item: ManifestItem = {
  id: 'item-2',
  kind: 'template',
  source: 'DC0_C0_TPL0',
  name: 'DC0_C0_TPL0',
  descriptor: 'DC0_C0_TPL0.ovf',
  files: [
    {
      path: 'item-2/DC0_C0_TPL0.ovf.age',
      name: 'DC0_C0_TPL0.ovf',
      role: 'descriptor',
      size: 1,
      sha256: '0'.repeat(64),
      encryptedSize: 1,
      encryptedSegmentSha256: ['0'.repeat(64)],
    },
  ],
};
const target: ItemTarget = {
  vdc: 'acme-vdc',
  placement: 'catalog',
  catalog: 'acme-catalog',
  network: 'acme-net',
  deploy: true,
  powerOn: true,
};

let sim: RunningSimulator;
let tplMoRef: string;
let vcd: RunningFakeVcd;
let client: VcdClient;
let dir: string;

beforeAll(async () => {
  sim = await startSimulator({ binary: inject('vcsimBinary') });
  tplMoRef = (await sim.readInventory()).vms.find((v) => v.name === 'DC0_C0_TPL0')!.moref;
});
afterAll(async () => {
  await sim?.stop();
});

async function setUp(): Promise<{ journal: ImportJournal; record: ImportRecord }> {
  vcd = await startFakeVcd({
    username: 'admin@System',
    password: 'pw',
    vcenter: { url: sim.url, username: sim.username, password: sim.password },
    taskStepMs: 5,
  });
  client = await VcdClient.connect({
    url: vcd.url,
    username: 'admin@System',
    password: 'pw',
    trust: { kind: 'system' },
    taskPollMs: 5,
  });
  dir = await mkdtemp(join(tmpdir(), 'odt-onboard-resume-'));
  const journal = await ImportJournal.open(dir, 'tr-resume');
  const record: ImportRecord = {
    itemId: item.id,
    name: 'DC0_C0_TPL0 (tr-resume)',
    entity: { type: 'VirtualMachine', value: tplMoRef },
    importedAt: new Date().toISOString(),
  };
  await journal.record(record);
  return { journal, record };
}

afterEach(async () => {
  await client?.logout();
  await vcd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A client that stops (as a crash would) when asked to deploy. */
const crashingAtDeploy = (c: VcdClient): VcdClient =>
  Object.assign(Object.create(c) as VcdClient, {
    deploy: () => Promise.reject(new Error('node stopped before deploy')),
  });

const instantiations = () =>
  vcd.state().calls.filter((c) => c.method === 'POST' && c.path.endsWith('/action/instantiateVAppTemplate'));

describe('onboarding a template that runs, resumed', () => {
  it('leaves a template without deploy in the catalog only, as before', async () => {
    const { journal, record } = await setUp();
    const r = await onboardItem(client, item, record, { ...target, deploy: false, powerOn: false }, journal);
    expect(r).toMatchObject({ poweredOn: false, skipped: false });
    expect(r.vappHref).toBeUndefined();
    expect(vcd.state().templates.map((t) => t.name)).toEqual(['DC0_C0_TPL0']);
    expect(vcd.state().vapps).toEqual([]);
    expect(journal.get(item.id)!.onboarded).toEqual({
      name: 'DC0_C0_TPL0',
      templateHref: r.templateHref,
      poweredOn: false,
    });
  });

  it('deploys a template asked to run without power-on once, and a rerun asks vCloud Director nothing', async () => {
    const { journal, record } = await setUp();
    const deployOnly = { ...target, powerOn: false };
    const r = await onboardItem(client, item, record, deployOnly, journal);
    expect(r).toMatchObject({ poweredOn: false, skipped: false });
    expect(vcd.state().vapps).toMatchObject([{ name: 'DC0_C0_TPL0', deployed: true }]);
    expect(journal.get(item.id)!.onboarded).toMatchObject({ deployed: true, poweredOn: false });

    const calls = vcd.state().calls.length;
    const again = await onboardItem(client, item, journal.get(item.id)!, deployOnly, journal);
    expect(again).toMatchObject({ poweredOn: false, skipped: true, vappHref: r.vappHref });
    expect(vcd.state().calls.length).toBe(calls);
    expect(instantiations()).toHaveLength(1);
  });

  it('goes on from the journaled vApp after a stop between instantiation and deploy', async () => {
    const { journal, record } = await setUp();
    await expect(onboardItem(crashingAtDeploy(client), item, record, target, journal)).rejects.toThrow(
      'node stopped before deploy',
    );
    const half = journal.get(item.id)!;
    expect(half.onboarded).toMatchObject({ poweredOn: false });
    expect(half.onboarded!.vappHref).toBeDefined();
    expect(vcd.state().vapps[0]).toMatchObject({ name: 'DC0_C0_TPL0', deployed: false });

    const r = await onboardItem(client, item, half, target, journal);
    expect(r).toMatchObject({ poweredOn: true, skipped: false, vappHref: half.onboarded!.vappHref });
    expect(instantiations()).toHaveLength(1);
    expect(vcd.state().templates).toHaveLength(1);
    expect(vcd.state().vapps).toMatchObject([{ name: 'DC0_C0_TPL0', deployed: true, status: 4 }]);
    expect(journal.get(item.id)!.onboarded).toMatchObject({ poweredOn: true, vappHref: r.vappHref });

    // Done: a third run changes nothing in vCloud Director.
    const writes = vcd.state().calls.filter((c) => c.method !== 'GET').length;
    const again = await onboardItem(client, item, journal.get(item.id)!, target, journal);
    expect(again).toMatchObject({ poweredOn: true, skipped: true });
    expect(vcd.state().calls.filter((c) => c.method !== 'GET').length).toBe(writes);
  });

  it('adopts its own vApp when the journal entry for it was lost, and never instantiates twice', async () => {
    const { journal, record } = await setUp();
    await expect(onboardItem(crashingAtDeploy(client), item, record, target, journal)).rejects.toThrow();
    const { vappHref: _lost, vmHref: _lostVm, ...templateOnly } = journal.get(item.id)!.onboarded!;
    const r = await onboardItem(client, item, { ...record, onboarded: templateOnly }, target, journal);
    expect(r.poweredOn).toBe(true);
    expect(instantiations()).toHaveLength(1);
    expect(vcd.state().vapps).toMatchObject([{ name: 'DC0_C0_TPL0', deployed: true, status: 4 }]);
  });

  it('only journals a vApp that is already running when the last journal write was lost', async () => {
    const { journal, record } = await setUp();
    const first = await onboardItem(client, item, record, target, journal);
    const writes = vcd.state().calls.filter((c) => c.method !== 'GET').length;
    const lost = {
      ...journal.get(item.id)!,
      onboarded: { ...journal.get(item.id)!.onboarded!, poweredOn: false },
    };
    const r = await onboardItem(client, item, lost, target, journal);
    expect(r).toMatchObject({ poweredOn: true, skipped: true, vappHref: first.vappHref });
    expect(vcd.state().calls.filter((c) => c.method !== 'GET').length).toBe(writes);
    expect(journal.get(item.id)!.onboarded).toMatchObject({ poweredOn: true, vappHref: first.vappHref });
  });

  it('does not take over a vApp of the same name that it did not create', async () => {
    const { journal, record } = await setUp();
    const r1 = await onboardItem(client, item, record, { ...target, deploy: false, powerOn: false }, journal);
    // Someone else's vApp already carries the name.
    await client.instantiateVAppTemplate({
      templateHref: r1.templateHref!,
      vdc: 'acme-vdc',
      name: 'DC0_C0_TPL0',
    });
    const err = await onboardItem(client, item, journal.get(item.id)!, target, journal).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ minorErrorCode: 'DUPLICATE_NAME' });
    expect(vcd.state().vapps).toMatchObject([{ name: 'DC0_C0_TPL0', deployed: false }]);
  });
});
