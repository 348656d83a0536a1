// Issue #19: the overall progress line knows the whole export's size before its first byte: the
// checked plan's disks, at their estimated sizes, keyed as the progress events that follow.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportTransfer } from '../../../agent/export/export-transfer.ts';
import { TransferProgress } from '../../../agent/file-progress.ts';
import { loadAgentIdentity } from '../../../agent/identity/agent-identity.ts';
import type { VimClient } from '../../../agent/vsphere/client.ts';
import { initParties } from '../../support/cli.ts';
import { markNas } from '../../support/nas.ts';
import { connectToSimulator } from '../../support/vsphere.ts';

let work: string;
let recipient: string;
let client: VimClient;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'odt-export-overall-'));
  recipient = await initParties(work);
  client = await connectToSimulator();
});
afterAll(async () => {
  await client?.logout();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('exportTransfer: the plan of the overall progress', () => {
  it('gives every disk with its estimate before the first byte, under the keys of its progress events', async () => {
    const nas = join(work, 'nas');
    await markNas(nas);
    const order: string[] = [];
    let planned: readonly { key: string; bytes: number }[] = [];
    const overall = new TransferProgress();
    const diskKeys = new Set<string>();
    const r = await exportTransfer({
      client,
      nas,
      transferId: 'tr-overall-1',
      items: ['DC0_H0_VM0', 'DC0_H0_VM1'],
      recipient,
      site: 'acme',
      agent: await loadAgentIdentity(join(work, 'agent')),
      onPlan: (files) => {
        order.push('plan');
        planned = files;
        overall.planFiles(files);
      },
      onProgress: (p) => {
        if (order.at(-1) !== 'progress') order.push('progress');
        if (p.file.endsWith('.vmdk')) diskKeys.add(`${p.item}/${p.file}`);
        overall.note(p);
      },
    });
    expect(r.failures).toEqual([]);
    // Once, before any progress.
    expect(order).toEqual(['plan', 'progress']);
    // One entry per disk the export wrote, under the same key as its progress events.
    expect(planned.length).toBeGreaterThanOrEqual(2);
    expect(new Set(planned.map((f) => f.key))).toEqual(diskKeys);
    for (const f of planned) expect(f.bytes).toBeGreaterThan(0);
    // At the end, every planned file's own length replaced its estimate: the total is what moved.
    const end = overall.snapshot();
    expect(end).toMatchObject({ planned: true, filesDone: end.files });
    expect(end.estimated).toBeUndefined();
    expect(end.bytesTotal).toBe(end.bytesDone);
  });
});
