// The peer checked from the other side: govmomi 0.24.2's own client (govmomi-client/main.go)
// exports a VM and imports it again through the peer, trusting the vCenter by thumbprint and
// each NFC host by the thumbprint its lease gives (nfc/lease.go newLeaseInfo → SetThumbprint,
// checked by vim25/soap/client.go dialTLS). If govmomi cannot use the peer, the peer is wrong.

import { spawn, spawnSync } from 'node:child_process';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { vmStatuses } from './guest.ts';
import {
  buildGovmomiClient,
  type RunningSimulator,
  type SimulatorOptions,
  startSimulator,
} from './simulator.ts';

const goAvailable = spawnSync('go', ['version']).status === 0;
if (!goAvailable) {
  console.error(
    '\n!!! govmomi-client.test.ts SKIPPED: the Go toolchain (go) is not on PATH, so the peer is NOT ' +
      "checked against govmomi's own client. Install golang-go (scripts/install-system-deps.sh).\n",
  );
}

interface FileReport {
  url: string;
  sslThumbprint: string;
  trusted: string;
  bytes: number;
  sha256: string;
  stored?: string;
}

interface Report {
  ok: boolean;
  step?: string;
  error?: string;
  fault?: string;
  exportLease?: string;
  exported?: FileReport[];
  importLease?: string;
  imported?: FileReport[];
  live?: { changedAreas: { Start: number; Length: number }[]; clone: string; cloneSha256: string[] };
}

interface Run {
  code: number | null;
  report: Report;
  stderr: string;
}

let clientBinary: string;

function runClient(sim: RunningSimulator, args: string[] = []): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      clientBinary,
      [
        '-url',
        sim.urlWithCredentials,
        '-thumbprint',
        sim.thumbprintSha1 ?? '',
        '-inventory',
        sim.inventoryPath,
        '-uploads',
        sim.uploadsDir,
        '-timeout',
        '60s',
        ...args,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve({ code, report: JSON.parse(last) as Report, stderr });
      } catch {
        reject(new Error(`govmomi-client printed no JSON (exit ${code}):\n${stdout}\n${stderr}`));
      }
    });
  });
}

function usePeer(opts: SimulatorOptions): () => RunningSimulator {
  let sim: RunningSimulator | undefined;
  beforeAll(async () => {
    // One disk per VM: the import takes a one-disk descriptor from CreateDescriptor.
    sim = await startSimulator({ binary: inject('vcsimBinary'), disksPerVm: 1, ...opts });
  });
  afterAll(async () => {
    await sim?.stop();
  });
  return () => {
    if (!sim) throw new Error('the simulator did not start');
    return sim;
  };
}

async function diskSha256(sim: RunningSimulator): Promise<string> {
  const vm = (await sim.readInventory()).vms.find((v) => v.name === 'DC0_H0_VM1');
  const sha = vm?.disks[0]?.sha256;
  if (!sha) throw new Error('no DC0_H0_VM1 disk in the inventory');
  return sha;
}

describe.skipIf(!goAvailable)("govmomi's own client against the peer", () => {
  beforeAll(async () => {
    clientBinary = await buildGovmomiClient();
  }, 180_000);

  describe('-nfc-host separate with TLS (lease timeout 3 s, transfers of about 4 s)', () => {
    // Slow enough that each transfer outlives the lease timeout: the lease survives only if
    // govmomi's LeaseUpdater (HttpNfcLeaseProgress every 2 s) keeps it alive.
    const peer = usePeer({
      tls: true,
      nfcHost: 'separate',
      leaseTimeoutMs: 3000,
      nfcBytesPerSecond: 256 * 1024,
    });

    it('exports and imports, trusting the NFC host by the lease thumbprint, without the vCenter cookie', async () => {
      const sim = peer();
      await sim.clearNfcRequests();
      const run = await runClient(sim);
      expect(run.report, run.stderr).toMatchObject({ ok: true });
      expect(run.code).toBe(0);

      const [exported] = run.report.exported ?? [];
      expect(exported?.url).toBe(`${sim.nfcUrl}/nfc/${run.report.exportLease}/disk-0.vmdk`);
      expect(exported?.sslThumbprint).toBe(sim.nfcThumbprintSha1);
      // govmomi recorded the lease's thumbprint for the NFC host:port and dialled with it.
      expect(exported?.trusted).toBe(sim.nfcThumbprintSha1);
      expect(exported?.sha256).toBe(await diskSha256(sim));

      const [imported] = run.report.imported ?? [];
      expect(imported?.url).toBe(`${sim.nfcUrl}/nfc/${run.report.importLease}/disk-0.vmdk`);
      expect(imported?.trusted).toBe(sim.nfcThumbprintSha1);
      expect(imported?.stored).toBe(join(sim.uploadsDir, run.report.importLease ?? '', 'disk-0.vmdk'));
      await access(imported?.stored ?? '');
      expect(imported?.sha256).toBe(exported?.sha256);

      // Every transfer went to the NFC host, and govmomi's cookie jar (per host) kept the
      // vCenter's session cookie to the vCenter.
      const requests = await sim.nfcRequests();
      expect(requests.map((r) => `${r.listener} ${r.method} ${r.path} ${r.sessionCookie}`)).toEqual([
        `nfc GET /nfc/${run.report.exportLease}/disk-0.vmdk false`,
        `nfc POST /nfc/${run.report.importLease}/disk-0.vmdk false`,
      ]);
    });
  });

  for (const nfcDownload of ['chunked', 'close'] as const) {
    describe(`-nfc-host separate with TLS, -nfc-download ${nfcDownload}`, () => {
      const peer = usePeer({ tls: true, nfcHost: 'separate', nfcDownload });

      it('downloads the exact bytes', async () => {
        const sim = peer();
        const run = await runClient(sim, ['-import=false']);
        expect(run.report, run.stderr).toMatchObject({ ok: true });
        expect(run.report.exported?.[0]?.sha256).toBe(await diskSha256(sim));
      });
    });
  }

  for (const nfcDownload of ['chunked', 'close'] as const) {
    describe(`-nfc-download ${nfcDownload} with -abort-after-bytes`, () => {
      const peer = usePeer({ tls: true, nfcHost: 'separate', nfcDownload, abortAfterBytes: 300_000 });

      // Go's http client sees the cut as a read error: a missing last chunk is an unexpected
      // EOF, and a close-delimited body ends in a reset, not the FIN that would pass for its
      // end (then the download would "succeed" short and fail the SHA-256 comparison instead).
      it('makes the download fail, not come out short', async () => {
        const run = await runClient(peer(), ['-import=false']);
        expect(run.code).toBe(1);
        expect(run.report.step).toMatch(/^download /);
        expect(run.report.error).toMatch(
          nfcDownload === 'chunked' ? /unexpected EOF/ : /connection reset by peer/,
        );
      });
    });
  }

  describe('-nfc-host direct with TLS', () => {
    const peer = usePeer({ tls: true, nfcHost: 'direct' });

    it('replaces "*" by the SDK host and trusts it by the SDK thumbprint', async () => {
      const sim = peer();
      await sim.clearNfcRequests();
      const run = await runClient(sim);
      expect(run.report, run.stderr).toMatchObject({ ok: true });
      const [exported] = run.report.exported ?? [];
      expect(exported?.url).toBe(`https://${sim.host}:${sim.port}/nfc/${run.report.exportLease}/disk-0.vmdk`);
      expect(exported?.trusted).toBe(sim.thumbprintSha1);
      expect(exported?.sha256).toBe(await diskSha256(sim));
      // Same host as the vCenter: here the session cookie does go along.
      const requests = await sim.nfcRequests();
      expect(requests.map((r) => [r.listener, r.sessionCookie])).toEqual([
        ['sdk', true],
        ['sdk', true],
      ]);
    });
  });

  describe('-nfc-thumbprint wrong', () => {
    const peer = usePeer({ tls: true, nfcHost: 'separate', nfcThumbprint: 'wrong' });

    it('makes govmomi refuse the NFC host: the thumbprint it checks is the lease one', async () => {
      const run = await runClient(peer(), ['-import=false']);
      expect(run.code).toBe(1);
      expect(run.report.ok).toBe(false);
      expect(run.report.step).toMatch(/^download /);
      expect(run.report.error).toMatch(/thumbprint does not match/);
    });
  });

  describe('-nfc-thumbprint none', () => {
    const peer = usePeer({ tls: true, nfcHost: 'separate', nfcThumbprint: 'none' });

    it('leaves govmomi nothing to trust the NFC host by', async () => {
      const run = await runClient(peer(), ['-import=false']);
      expect(run.code).toBe(1);
      expect(run.report.step).toMatch(/^download /);
      expect(run.report.error).toMatch(/certificate signed by unknown authority/);
    });
  });

  describe('-live: snapshots, change tracking and a linked clone (TLS, separate NFC host)', () => {
    const peer = usePeer({ tls: true, nfcHost: 'separate', disksPerVm: 2, poweredOn: ['DC0_H0_VM0'] });

    it("answers govmomi's QueryChangedDiskAreas with the write between two snapshots, and its linked clone reads the first", async () => {
      const sim = peer();
      const run = await runClient(sim, ['-vm', '/DC0/vm/DC0_H0_VM0', '-live']);
      expect(run.report.error ?? '').toBe('');
      expect(run.code).toBe(0);
      expect(run.report.live?.changedAreas).toEqual([{ Start: 4096, Length: 512 }]);
      const source = (await sim.readInventory()).vms.find((v) => v.name === 'DC0_H0_VM0')!;
      expect(run.report.live?.cloneSha256).toEqual(source.disks.map((d) => d.sha256));
      const left = await vmStatuses(sim);
      expect(left.map((v) => v.name)).not.toContain('govmomi-linked-clone');
      expect(left.find((v) => v.name === 'DC0_H0_VM0')?.snapshots).toEqual([]);
    });
  });

  describe('-no-wait-for-updates', () => {
    const peer = usePeer({ tls: true, nfcHost: 'separate', waitForUpdates: false });

    it("fails govmomi's lease.Wait with the fault type MethodNotFound", async () => {
      const run = await runClient(peer(), ['-import=false']);
      expect(run.code).toBe(1);
      expect(run.report.step).toBe('export lease wait');
      expect(run.report.fault).toBe('types.MethodNotFound');
    });
  });
});
