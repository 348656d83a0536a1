// Issue 4: "Already-imported items are skipped on a rerun (idempotent by item)", and a rerun
// removes what a failed import left. The ODT node's journal (--state-dir) is not the only record:
// each VM carries a custom attribute saying which import made it and whether it finished
// (agent/import/import-mark.ts). So a rerun from another state folder keeps a finished VM (it
// may be running, onboarded) instead of removing it as a leftover, removes what a killed import
// left, and refuses to touch a VM of the same name that no import of the item made.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readMark } from '../../../agent/import/import-mark.ts';
import type { VimClient } from '../../../agent/vsphere/client.ts';
import type { VimArgs, VimMethod } from '../../../agent/vsphere/wire/methods.ts';
import type { Moref } from '../../../agent/vsphere/wire/serialize.ts';
import { type RunningSimulator, startSimulator } from '../../peers/vsphere/simulator.ts';
import { exportItems, importArgs, initParties, odt, repoRoot } from '../../support/cli.ts';
import { connectTo } from '../../support/vsphere.ts';

const transfer = 'tr-rerun-1';
const vmName = `DC0_H0_VM1 (${transfer})`;

let customer: RunningSimulator;
let work: string;
let nas: string;
beforeAll(async () => {
  customer = await startSimulator({ binary: inject('vcsimBinary'), diskSize: 2 * 1024 * 1024 });
  work = await mkdtemp(join(tmpdir(), 'odt-rerun-'));
  nas = join(work, 'nas');
  const recipient = await initParties(work);
  await exportItems(customer, work, recipient, ['DC0_H0_VM1', 'DC0_C0_APP0'], nas, transfer);
});
afterAll(async () => {
  await customer?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const importInto = (sim: RunningSimulator, state: string) =>
  odt(importArgs(sim, work, nas, transfer, join(work, state)), { ODT_VCENTER_PASSWORD: sim.password });

async function vmsNamed(client: VimClient, name: string): Promise<Moref[]> {
  const vms = await client.listByType(['VirtualMachine'], ['name']);
  return vms.filter((v) => v.props.get('name')?.text === name).map((v) => v.obj);
}

async function powerState(client: VimClient, vm: Moref): Promise<string | undefined> {
  return (await client.properties(vm, 'VirtualMachine', ['runtime.powerState'])).get('runtime.powerState')
    ?.text;
}

async function run<M extends VimMethod>(client: VimClient, method: M, args: VimArgs<M>): Promise<void> {
  const task = (await client.invoke(method, args)).child('returnval')!.moref;
  await client.waitForTask(task);
}

describe('a rerun of odt import', () => {
  it('from another state folder keeps the imported VMs (one of them running) and records them as imported', async () => {
    const sim = await startSimulator({ binary: inject('vcsimBinary'), apps: 0, templates: 0 });
    const client = await connectTo(sim);
    try {
      const first = await importInto(sim, 'state-a');
      expect(first.code, first.err).toBe(0);
      const [vm] = await vmsNamed(client, vmName);
      expect(await readMark(client, vm!)).toEqual({
        state: 'imported',
        transferId: transfer,
        itemId: 'item-1',
      });
      await run(client, 'PowerOnVM_Task', { _this: vm! });

      const again = await importInto(sim, 'state-b');

      expect(again.code, again.err).toBe(0);
      expect(again.out).toContain(`item-1 DC0_H0_VM1: already imported as '${vmName}' (${vm!.value})`);
      expect(again.out).toContain(`item-2 DC0_C0_APP0: already imported`);
      expect(await vmsNamed(client, vmName)).toEqual([vm]);
      expect(await powerState(client, vm!)).toBe('poweredOn');
      // Recorded in the new state folder too: the next run there asks vCenter nothing new.
      const journal = JSON.parse(
        await readFile(join(work, 'state-b', 'imports', `${transfer}.json`), 'utf8'),
      );
      expect(journal.imported.map((r: { itemId: string }) => r.itemId).sort()).toEqual(['item-1', 'item-2']);
    } finally {
      await client.logout();
      await sim.stop();
    }
  });

  it('refuses an item whose name a VM holds that no import of it made, and keeps that VM', async () => {
    const sim = await startSimulator({ binary: inject('vcsimBinary'), apps: 0, templates: 0 });
    const client = await connectTo(sim);
    try {
      const [theirs] = await vmsNamed(client, 'DC0_H0_VM0');
      await run(client, 'Rename_Task', { _this: theirs!, newName: vmName });

      const r = await importInto(sim, 'state-c');

      expect(r.code).not.toBe(0);
      expect(r.err).toContain(`a VM named '${vmName}' (${theirs!.value}) is already in the target folder`);
      expect(r.err).toContain(
        "rerun with that import's --state-dir; otherwise rename or remove it in vCenter",
      );
      expect(await vmsNamed(client, vmName)).toEqual([theirs]);
      // The other item is imported all the same.
      expect(r.out).toContain(`item-2 DC0_C0_APP0: imported as`);
    } finally {
      await client.logout();
      await sim.stop();
    }
  });

  it('removes what a killed import left, from another state folder, and imports the item whole', async () => {
    // Device URLs at 4 MB/s: the 2 MiB disk takes half a second; the import is killed at its first
    // progress event, before a tenth of it went.
    const sim = await startSimulator({
      binary: inject('vcsimBinary'),
      apps: 0,
      templates: 0,
      nfcBytesPerSecond: 4_000_000,
    });
    const client = await connectTo(sim);
    try {
      const args = [...importArgs(sim, work, nas, transfer, join(work, 'state-killed')), '--json'];
      const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'cli/entry.ts'), ...args], {
        cwd: repoRoot,
        env: { ...process.env, ODT_VCENTER_PASSWORD: sim.password },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const exited = new Promise((resolve) => child.on('exit', resolve));
      for await (const line of createInterface({ input: child.stdout })) {
        if (line.includes('"event":"progress"')) {
          child.kill('SIGKILL');
          break;
        }
      }
      await exited;
      const [left] = await vmsNamed(client, vmName);
      expect(await readMark(client, left!)).toEqual({
        state: 'importing',
        transferId: transfer,
        itemId: 'item-1',
      });

      const r = await importInto(sim, 'state-d');

      expect(r.code, r.err).toBe(0);
      const now = await vmsNamed(client, vmName);
      expect(now).toHaveLength(1);
      expect(now[0]).not.toEqual(left);
      expect(await readMark(client, now[0]!)).toEqual({
        state: 'imported',
        transferId: transfer,
        itemId: 'item-1',
      });
    } finally {
      await client.logout();
      await sim.stop();
    }
  }, 60_000);

  it('removes an unmarked VM that its own state folder says it began to import (killed before the lease handed it over)', async () => {
    const { ImportJournal } = await import('../../../agent/import/import-journal.ts');
    const sim = await startSimulator({ binary: inject('vcsimBinary'), apps: 0, templates: 0 });
    const client = await connectTo(sim);
    try {
      // As left by a crash between ImportVApp and the lease being ready: a VM of the name, no mark.
      const [left] = await vmsNamed(client, 'DC0_H0_VM0');
      await run(client, 'Rename_Task', { _this: left!, newName: vmName });
      const journal = await ImportJournal.open(join(work, 'state-e'), transfer);
      await journal.begin('item-1', [vmName]);

      const r = await importInto(sim, 'state-e');

      expect(r.code, r.err).toBe(0);
      const now = await vmsNamed(client, vmName);
      expect(now).toHaveLength(1);
      expect(now[0]).not.toEqual(left);
      const saved = JSON.parse(await readFile(join(work, 'state-e', 'imports', `${transfer}.json`), 'utf8'));
      expect(saved.begun).toEqual({});
      expect(await readdir(join(work, 'state-e', 'imports'))).toEqual([`${transfer}.json`]);
    } finally {
      await client.logout();
      await sim.stop();
    }
  });
});
