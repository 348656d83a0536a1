// Issue #19: the overall line's total is the whole transfer from the start, not the files seen so
// far. `odt export --json` writes it once its checks passed (the disks at their estimated sizes),
// `odt import --json` once the signed manifest is verified (the files' signed sizes); an item that
// an earlier import brought in counts as kept, so a rerun still ends at its total.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { TransferManifest } from '../../agent/package/transfer-manifest.ts';
import { type RunningSimulator, startSimulator } from '../peers/vsphere/simulator.ts';
import { exportArgs, importArgs, initParties, odt } from '../support/cli.ts';

const transfer = 'tr-overall-plan-1';
let customer: RunningSimulator;
let provider: RunningSimulator;
let work: string;
let nas: string;
let recipient: string;
beforeAll(async () => {
  customer = await startSimulator({ binary: inject('vcsimBinary'), diskSize: 1024 * 1024, apps: 0 });
  provider = await startSimulator({ binary: inject('vcsimBinary'), apps: 0, templates: 0 });
  work = await mkdtemp(join(tmpdir(), 'odt-overall-plan-'));
  nas = join(work, 'nas');
  recipient = await initParties(work);
});
afterAll(async () => {
  await customer?.stop();
  await provider?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

interface Overall {
  event: string;
  bytes: number;
  total: number | null;
  planned: boolean;
  estimated: boolean;
  files: number;
  filesDone: number;
}
const overallEvents = (out: string): Overall[] =>
  out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Overall)
    .filter((e) => e.event === 'overall');

describe('the overall progress total is planned', () => {
  it('odt export --json: the whole size before the first byte, what moved at the end', async () => {
    const r = await odt(
      [...exportArgs(customer, work, recipient, ['DC0_H0_VM0', 'DC0_H0_VM1'], nas, transfer), '--json'],
      { ODT_VCENTER_PASSWORD: customer.password },
    );
    expect(r.code, r.err).toBe(0);
    const overall = overallEvents(r.out);
    // The first comes before any progress event: the plan of both items' disks, estimated.
    const lines = r.out.trim().split('\n');
    const first = lines.findIndex((l) => l.includes('"event":"overall"'));
    expect(first).toBeLessThan(lines.findIndex((l) => l.includes('"event":"progress"')));
    expect(overall[0]).toMatchObject({ bytes: 0, planned: true, estimated: true, filesDone: 0 });
    expect(overall[0]!.files).toBeGreaterThanOrEqual(2);
    expect(overall[0]!.total).toBeGreaterThan(0);
    expect(overall.at(-1)).toMatchObject({ planned: true, estimated: false });
    expect(overall.at(-1)!.total).toBe(overall.at(-1)!.bytes);
  });

  it('odt import --json: the signed sizes once verified; a rerun counts the imported items as kept', async () => {
    const manifest = JSON.parse(
      await readFile(join(nas, transfer, 'transfer.json'), 'utf8'),
    ) as TransferManifest;
    const uploaded = manifest.items
      .flatMap((i) => i.files)
      .filter((f) => f.role === 'disk' || f.role === 'file');
    const size = uploaded.reduce((n, f) => n + f.size, 0);
    const state = join(work, 'state');
    const importJson = () =>
      odt([...importArgs(provider, work, nas, transfer, state), '--json'], {
        ODT_VCENTER_PASSWORD: provider.password,
      });
    const r = await importJson();
    expect(r.code, r.err).toBe(0);
    const overall = overallEvents(r.out);
    expect(overall[0]).toMatchObject({ bytes: 0, total: size, planned: true, files: uploaded.length });
    expect(overall.at(-1)).toMatchObject({ bytes: size, total: size, filesDone: uploaded.length });
    // Again: everything is imported already; nothing moves, and the line still ends whole.
    const again = await importJson();
    expect(again.code, again.err).toBe(0);
    expect(again.out).toContain('"skipped":true');
    expect(overallEvents(again.out).at(-1)).toMatchObject({
      bytes: size,
      total: size,
      filesDone: uploaded.length,
      bytesPerSecond: 0,
    });
  });
});
