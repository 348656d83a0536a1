import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { importTransfer } from '../../../agent/import/import-transfer.ts';
import { parseIdentityFile } from '../../../agent/package/age/keys.ts';
import { type RunningSimulator, startSimulator } from '../../peers/vsphere/simulator.ts';
import { exportItems, importArgs, initParties, odt } from '../../support/cli.ts';
import { connectTo } from '../../support/vsphere.ts';

interface LeaseStatus {
  id: string;
  kind: 'export' | 'import';
  state: string;
  error?: string;
  transferred: number;
  files: string[];
}

const sha256File = (path: string) =>
  new Promise<string>((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });

const control = (sim: RunningSimulator, path: string, init?: RequestInit) =>
  fetch(`http://${sim.host}:${sim.port}/_test/${path}`, init);

async function leases(sim: RunningSimulator): Promise<LeaseStatus[]> {
  return (await (await control(sim, 'leases')).json()) as LeaseStatus[];
}

async function vmNames(sim: RunningSimulator): Promise<string[]> {
  const client = await connectTo(sim);
  try {
    const vms = await client.listByType(['VirtualMachine', 'VirtualApp'], ['name']);
    return vms.map((v) => v.props.get('name')?.text ?? '');
  } finally {
    await client.logout();
  }
}

/** Exports DC0_H0_VM1 of `customer` into `<work>/nas` and returns the import CLI arguments builder. */
async function exportOne(customer: RunningSimulator, work: string, transfer: string) {
  const recipient = await initParties(work);
  await exportItems(customer, work, recipient, ['DC0_H0_VM1'], join(work, 'nas'), transfer);
  return (sim: RunningSimulator, state: string, extra: string[] = []) => [
    ...importArgs(sim, work, join(work, 'nas'), transfer, state),
    ...extra,
  ];
}

// Issue 4, acceptance: "An upload that fails half-way leaves no VM behind; the rerun completes."
describe('import: the server drops the upload half-way', () => {
  const transfer = 'tr-import-drop';
  let customer: RunningSimulator;
  let provider: RunningSimulator;
  let work: string;
  let importArgs: Awaited<ReturnType<typeof exportOne>>;

  beforeAll(async () => {
    // Disks large enough that the abort surely lands while the upload is still running.
    customer = await startSimulator({
      binary: inject('vcsimBinary'),
      diskSize: '96MiB',
      diskContent: 'random',
      disksPerVm: 2,
      apps: 0,
      templates: 0,
    });
    provider = await startSimulator({ binary: inject('vcsimBinary'), apps: 0, templates: 0 });
    work = await mkdtemp(join(tmpdir(), 'odt-import-drop-'));
    importArgs = await exportOne(customer, work, transfer);
  }, 120_000);
  afterAll(async () => {
    await customer?.stop();
    await provider?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('leaves no VM behind when the lease is aborted mid-upload, and the rerun completes with the exact bytes', async () => {
    const state = join(work, 'state');
    const vcName = `DC0_H0_VM1 (${transfer})`;
    let abort: Promise<{ status: number; lease: LeaseStatus | undefined }> | undefined;
    const client = await connectTo(provider);
    let results: Awaited<ReturnType<typeof importTransfer>>;
    try {
      results = await importTransfer({
        client,
        nas: join(work, 'nas'),
        transferId: transfer,
        identities: parseIdentityFile(await readFile(join(work, 'node', 'identity.txt'), 'utf8')),
        agentCertPem: await readFile(join(work, 'agent', 'agent.crt.pem'), 'utf8'),
        stateDir: state,
        onProgress: (p) => {
          if (abort || p.done || p.bytes < 8 * 2 ** 20) return;
          // Some bytes are through: the "host" drops the lease (its transfers are cut).
          abort = (async () => {
            const lease = (await leases(provider)).find((l) => l.kind === 'import' && l.state === 'ready');
            if (!lease) return { status: 0, lease };
            const r = await control(provider, `lease/${lease.id}/abort`, { method: 'POST' });
            return { status: r.status, lease: (await r.json()) as LeaseStatus };
          })();
        },
      });
    } finally {
      await client.logout();
    }
    expect(abort, 'the upload never reached 8 MiB').toBeDefined();
    const aborted = await abort!;
    expect(aborted.status).toBe(200);
    expect(aborted.lease?.state).toBe('error');
    // Aborted half-way: fewer bytes than the two disks went through.
    expect(aborted.lease!.transferred).toBeLessThan(2 * 96 * 2 ** 20);
    expect(results).toHaveLength(1);
    expect(results[0]!.ok).toBe(false);
    expect(results[0]!.failedAt).toBe('import');
    expect(await vmNames(provider)).not.toContain(vcName);

    // The rerun, from the command line, same simulator and state folder.
    const r = await odt(importArgs(provider, state), { ODT_VCENTER_PASSWORD: provider.password });
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain(`item-1 DC0_H0_VM1: imported as '${vcName}'`);
    expect((await vmNames(provider)).filter((n) => n === vcName)).toHaveLength(1);
    const done = (await leases(provider)).filter((l) => l.kind === 'import' && l.state === 'done');
    expect(done).toHaveLength(1);
    const dir = join(provider.uploadsDir, done[0]!.id);
    const got = await Promise.all((await readdir(dir)).map((f) => sha256File(join(dir, f))));
    const source = (await customer.readInventory()).vms.find((v) => v.name === 'DC0_H0_VM1')!;
    expect(got.sort()).toEqual(source.disks.map((d) => d.sha256).sort());
  }, 180_000);
});

// Issue 4, acceptance: "Leases survive transfers longer than the simulator's enforced lease timeout."
describe('import: lease keep-alive', () => {
  it('survives an upload longer than the enforced lease timeout, kept alive by HttpNfcLeaseProgress', async () => {
    const leaseTimeoutMs = 1000;
    const transfer = 'tr-import-ka';
    const customer = await startSimulator({
      binary: inject('vcsimBinary'),
      diskSize: '512MiB',
      disksPerVm: 4,
      diskContent: 'zero',
      apps: 0,
      templates: 0,
    });
    const provider = await startSimulator({
      binary: inject('vcsimBinary'),
      apps: 0,
      templates: 0,
      leaseTimeoutMs,
    });
    const work = await mkdtemp(join(tmpdir(), 'odt-import-ka-'));
    try {
      const importArgs = await exportOne(customer, work, transfer);
      const started = Date.now();
      const r = await odt(importArgs(provider, join(work, 'state'), ['--parallel', '1']), {
        ODT_VCENTER_PASSWORD: provider.password,
      });
      const elapsed = Date.now() - started;
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).toContain(`item-1 DC0_H0_VM1: imported as 'DC0_H0_VM1 (${transfer})'`);
      const all = await leases(provider);
      expect(all.filter((l) => l.kind === 'import').map((l) => l.state)).toEqual(['done']);
      expect(all.some((l) => /Timedout/i.test(l.error ?? ''))).toBe(false);
      // The test only means something if the upload outlived the lease timeout several times.
      expect(elapsed).toBeGreaterThan(2 * leaseTimeoutMs);
    } finally {
      await customer.stop();
      await provider.stop();
      await rm(work, { recursive: true, force: true });
    }
  }, 240_000);
});
