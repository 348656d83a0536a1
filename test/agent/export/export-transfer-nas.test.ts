// Issue #19: exportTransfer, which both `odt export` and the export agent (agent/runtime/roles.ts)
// call, checks the NAS before it asks vCenter for a byte, and creates nothing when it refuses.
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportTransfer } from '../../../agent/export/export-transfer.ts';
import { loadAgentIdentity } from '../../../agent/identity/agent-identity.ts';
import { nasMarkerFile } from '../../../agent/nas/nas-marker.ts';
import type { VimClient } from '../../../agent/vsphere/client.ts';
import { initParties } from '../../support/cli.ts';
import { markNas } from '../../support/nas.ts';
import { connectToSimulator } from '../../support/vsphere.ts';

let work: string;
let recipient: string;
let client: VimClient;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'odt-export-transfer-nas-'));
  recipient = await initParties(work);
  client = await connectToSimulator();
});
afterAll(async () => {
  await client?.logout();
  if (work) await rm(work, { recursive: true, force: true });
});

const run = async (nas: string, items: string[], extra: { nasPlainFolder?: boolean } = {}) =>
  exportTransfer({
    client,
    nas,
    transferId: 'tr-agent-nas-1',
    items,
    recipient,
    site: 'acme',
    agent: await loadAgentIdentity(join(work, 'agent')),
    ...extra,
  });

describe('exportTransfer (the CLI and the export agent)', () => {
  it('refuses a NAS that is not there, creating nothing', async () => {
    const nas = join(work, 'unmounted', 'nas');
    await expect(run(nas, ['DC0_H0_VM1'])).rejects.toMatchObject({ code: 'NAS_MISSING' });
    await expect(run(nas, ['DC0_H0_VM1'], { nasPlainFolder: true })).rejects.toMatchObject({
      code: 'NAS_MISSING',
    });
    expect(await readdir(work)).not.toContain('unmounted');
  });

  it('refuses an unmarked folder unless nasPlainFolder; writes to a marked one', async () => {
    const plain = join(work, 'plain');
    await mkdir(plain);
    await expect(run(plain, ['DC0_H0_VM1'])).rejects.toMatchObject({ code: 'NAS_NOT_INITIALIZED' });
    expect(await readdir(plain)).toEqual([]);
    const marked = join(work, 'marked');
    const marker = await markNas(marked, 'agent-box');
    const r = await run(marked, ['DC0_H0_VM1']);
    expect(r.failures).toEqual([]);
    expect(r.nas.marker).toEqual(marker);
    expect((await readdir(marked)).sort()).toEqual([nasMarkerFile, 'tr-agent-nas-1']);
  });

  it('refuses no items, before anything', async () => {
    const marked = join(work, 'marked-empty');
    await markNas(marked);
    await expect(run(marked, [])).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(await readdir(marked)).toEqual([nasMarkerFile]);
  });
});
