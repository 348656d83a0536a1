// Issue #19: the export agent (odt agent run --role export) refuses a NAS that is not there, or
// not marked by `odt nas init`, before any byte: the task fails with the code, nothing is created.
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type AgentIdentity, initAgentIdentity } from '../../../agent/identity/agent-identity.ts';
import { nasMarkerFile } from '../../../agent/nas/nas-marker.ts';
import { exportRole } from '../../../agent/runtime/roles.ts';
import type { RoleWork } from '../../../agent/runtime/run-agent.ts';
import { silentLogger } from '../../../core/ports/logger.ts';
import { statementFor } from '../../support/fake-node.ts';
import { markNas } from '../../support/nas.ts';

let work: string;
let node: AgentIdentity;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'odt-export-role-nas-'));
  node = (await initAgentIdentity(join(work, 'node'), { commonName: 'cloud-odt-node' })).identity;
  await initAgentIdentity(join(work, 'agent'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** One export task of DC0_H0_VM1 for transfer `id`, its recipient signed by the pinned node. */
function work1(id: string): RoleWork {
  const t = { id, site: 'acme', providerSite: 'cloud', history: [] };
  const transfer = {
    ...t,
    phase: 'exporting',
    items: [{ id: 'item-1', kind: 'vm', source: 'DC0_H0_VM1', target: { vdc: 'vdc' }, state: 'exporting' }],
    key: statementFor('make-key', t, 'cloud-odt-node', node),
  };
  const task = { id: `${id}-export-1`, kind: 'export', transferId: id, site: 'acme', itemIds: ['item-1'] };
  return {
    task,
    transfer,
    signal: new AbortController().signal,
    onProgress: () => {},
    log: silentLogger,
  } as unknown as RoleWork;
}

const role = (nas: string, nasPlainFolder = false) =>
  exportRole({
    vcenter: {
      url: inject('vcsimUrl'),
      username: inject('vcsimUsername'),
      password: inject('vcsimPassword'),
      trust: { kind: 'system' },
    },
    nas,
    nodeCertPem: node.certPem,
    dir: join(work, 'agent'),
    ...(nasPlainFolder ? { nasPlainFolder } : {}),
  });

describe('the export agent and its NAS', () => {
  it('fails the task on a NAS that is not mounted (no folder), creating nothing', async () => {
    const nas = join(work, 'mnt', 'nas');
    await expect(role(nas).run(work1('tr-role-1'))).rejects.toMatchObject({ code: 'NAS_MISSING' });
    expect(await readdir(work)).not.toContain('mnt');
  });

  it('fails the task on a folder without the marker; --nas-plain-folder takes it; a marked NAS is written', async () => {
    const plain = join(work, 'plain');
    await mkdir(plain);
    await expect(role(plain).run(work1('tr-role-2'))).rejects.toMatchObject({ code: 'NAS_NOT_INITIALIZED' });
    expect(await readdir(plain)).toEqual([]);
    expect(await role(plain, true).run(work1('tr-role-2'))).toEqual([
      expect.objectContaining({ itemId: 'item-1', ok: true }),
    ]);
    const marked = join(work, 'marked');
    await markNas(marked, 'agent-box');
    expect(await role(marked).run(work1('tr-role-3'))).toEqual([
      expect.objectContaining({ itemId: 'item-1', ok: true }),
    ]);
    expect((await readdir(marked)).sort()).toEqual([nasMarkerFile, 'tr-role-3']);
  });
});
