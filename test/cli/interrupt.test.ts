import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ImportJournal } from '../../agent/import/import-journal.ts';
import { poll } from '../../core/wait.ts';
import { type RunningSimulator, startSimulator } from '../peers/vsphere/simulator.ts';
import { exportArgs, exportItems, importArgs, initParties, odt, repoRoot } from '../support/cli.ts';
import { type OnboardingSites, startOnboardingSites } from '../support/onboarding-sites.ts';

// Issue 23, point 3: Ctrl-C (SIGINT to a real odt process) ends a wait within a second, exits
// non-zero (130, as a shell reports SIGINT), and cleans up what the wait was for.

/** A real `odt <args>` process, with what it printed. */
function startOdt(args: readonly string[], env: Record<string, string>) {
  const child: ChildProcess = spawn(process.execPath, [join(repoRoot, 'bin', 'odt.mjs'), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c) => {
    out += String(c);
  });
  child.stderr!.on('data', (c) => {
    err += String(c);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    out: () => out,
    err: () => err,
    /** SIGINT, as Ctrl-C sends it; resolves with the exit code and how long the exit took. */
    async interrupt(): Promise<{ code: number | null | 'hung'; ms: number }> {
      const started = Date.now();
      child.kill('SIGINT');
      const code = await Promise.race([
        exited,
        new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000)),
      ]);
      const ms = Date.now() - started;
      if (code === 'hung') child.kill('SIGKILL');
      return { code, ms };
    },
    kill: () => child.exitCode === null && child.kill('SIGKILL'),
  };
}

/** Every file below `dir`, as paths relative to it. */
async function filesBelow(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

interface LeaseStatus {
  id: string;
  kind: 'export' | 'import';
  state: string;
}

describe('Ctrl-C during the NFC lease wait of odt export', () => {
  let sim: RunningSimulator;
  let work: string;
  beforeAll(async () => {
    // A lease that stays initializing for a minute: the export is certainly waiting when it is cut.
    sim = await startSimulator({
      binary: inject('vcsimBinary'),
      leaseReadyDelayMs: 60_000,
      disksPerVm: 1,
      diskSize: 4096,
    });
    work = await mkdtemp(join(tmpdir(), 'odt-interrupt-export-'));
  });
  afterAll(async () => {
    await sim?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('ends within a second, exits 130, aborts the lease and leaves no partial file', async () => {
    const recipient = await initParties(work);
    const nas = join(work, 'nas');
    const leases = async () =>
      (await (await fetch(`${new URL(sim.url).origin}/_test/leases`)).json()) as LeaseStatus[];
    const odtExport = startOdt(exportArgs(sim, work, recipient, ['DC0_H0_VM1'], nas, 'tr-int-1'), {
      ODT_VCENTER_PASSWORD: sim.password,
    });
    try {
      const lease = await poll({
        what: 'the export lease',
        until: async () => (await leases()).find((l) => l.kind === 'export' && l.state === 'initializing'),
        intervalMs: 50,
        timeoutMs: 30_000,
      });
      await new Promise((r) => setTimeout(r, 300)); // well inside the wait

      const { code, ms } = await odtExport.interrupt();

      expect(code, odtExport.err()).toBe(130);
      expect(ms).toBeLessThan(1_000);
      expect(odtExport.err()).toMatch(/interrupted \(SIGINT\).*\[INTERRUPTED\]/);
      const after = (await (
        await fetch(`${new URL(sim.url).origin}/_test/lease/${lease.id}`)
      ).json()) as LeaseStatus;
      expect(after.state).toBe('error'); // HttpNfcLeaseAbort
      const files = await filesBelow(nas);
      expect(files.filter((f) => f.endsWith('.partial') || f.endsWith('.age'))).toEqual([]);
      expect(files).not.toContain('tr-int-1/transfer.json');
    } finally {
      odtExport.kill();
    }
  });
});

describe('Ctrl-C during a vCloud Director task of odt import --vcd', () => {
  let sites: OnboardingSites;
  const transfer = 'tr-int-2';
  beforeAll(async () => {
    sites = await startOnboardingSites(inject('vcsimBinary'), 'odt-interrupt-import-', { apps: 0 });
    const recipient = await initParties(sites.work);
    await exportItems(sites.customer, sites.work, recipient, ['DC0_H0_VM1'], sites.nas, transfer);
  });
  afterAll(async () => {
    await sites?.stop();
  });

  // Clean: vCD was asked to cancel its import task (the fake then removes the vApp it had begun),
  // and the journal holds the item as imported into vCenter but not onboarded, so that the rerun
  // skips the vCenter import and onboards it.
  it('ends within a second, exits 130, cancels the task, and the rerun onboards the item', async () => {
    const { provider, vcd, work, nas } = sites;
    const state = join(work, 'state');
    const args = [...importArgs(provider, work, nas, transfer, state), ...sites.vcdArgs()];
    const env = sites.importEnv();
    vcd.setTaskRunningMs({ vdcImportVmAsVApp: Number.POSITIVE_INFINITY });
    const odtImport = startOdt(args, env);
    try {
      await poll({
        what: 'the vCD import task to run',
        until: async () =>
          vcd.state().tasks.find((t) => t.operationName === 'vdcImportVmAsVApp' && t.status === 'running'),
        intervalMs: 50,
        timeoutMs: 60_000,
      });
      await new Promise((r) => setTimeout(r, 300)); // the client polls it

      const { code, ms } = await odtImport.interrupt();

      expect(code, odtImport.err()).toBe(130);
      expect(ms).toBeLessThan(1_000);
      expect(odtImport.err()).toMatch(/interrupted \(SIGINT\)/);
      const held = vcd.state();
      expect(held.tasks.find((t) => t.operationName === 'vdcImportVmAsVApp')!.status).toBe('canceled');
      expect(held.vapps).toEqual([]);
      const journal = await ImportJournal.open(state, transfer);
      expect(journal.get('item-1')).toBeDefined();
      expect(journal.get('item-1')!.onboarded).toBeUndefined();
    } finally {
      odtImport.kill();
    }

    vcd.setTaskRunningMs({});
    const rerun = await odt(args, env);

    expect(rerun.code, rerun.err).toBe(0);
    expect(rerun.out).toContain('item-1 DC0_H0_VM1: already imported');
    expect(rerun.out).toContain("onboarded into vCloud Director as the vApp 'DC0_H0_VM1'");
    expect(vcd.state().vapps.map((a) => a.name)).toEqual(['DC0_H0_VM1']);
  });
});
