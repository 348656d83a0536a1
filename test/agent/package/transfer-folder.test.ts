// Issue 4: the first thing an ODT node checks of a returned NAS is that the transfer is there at
// all. A NAS not mounted, a mistyped transfer id or a folder without its transfer.json each get
// their own message, naming what the NAS folder does hold; `odt import` says so before it asks
// vCenter anything.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateIdentity } from '../../../agent/package/age/keys.ts';
import { transferFolderProblem, verifyTransfer } from '../../../agent/package/verify.ts';
import { main } from '../../../cli/main.ts';

let nas: string;
beforeAll(async () => {
  nas = await mkdtemp(join(tmpdir(), 'odt-nas-'));
  for (const id of ['tr-20261101-aaaaaa', 'tr-20261102-bbbbbb']) {
    await mkdir(join(nas, id));
    await writeFile(join(nas, id, 'transfer.json'), '{}');
  }
  await mkdir(join(nas, 'tr-20261103-cccccc'));
  await mkdir(join(nas, 'lost+found'));
  await writeFile(join(nas, 'notes.txt'), 'hello');
});
afterAll(() => rm(nas, { recursive: true, force: true }));

describe('transferFolderProblem', () => {
  it('is undefined for a transfer folder with its transfer.json', async () => {
    expect(await transferFolderProblem(join(nas, 'tr-20261101-aaaaaa'))).toBeUndefined();
  });

  it('names the transfers the NAS folder holds when the id is not one of them', async () => {
    expect(await transferFolderProblem(join(nas, 'tr-20261101-aaaaab'))).toBe(
      `No transfer tr-20261101-aaaaab in ${nas} (it holds tr-20261101-aaaaaa, tr-20261102-bbbbbb); check the NAS folder and the transfer id.`,
    );
  });

  it('asks whether the NAS is mounted when the folder holds no transfer', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'odt-mnt-'));
    try {
      expect(await transferFolderProblem(join(empty, 'tr-20261101-aaaaaa'))).toMatch(
        /it holds no transfer: is the NAS mounted there\?/,
      );
    } finally {
      await rm(empty, { recursive: true });
    }
  });

  it('says so when the NAS folder itself does not exist', async () => {
    expect(await transferFolderProblem(join(nas, 'not-here', 'tr-20261101-aaaaaa'))).toBe(
      `${join(nas, 'not-here')} does not exist: mount the NAS there, or name the folder it is mounted at.`,
    );
  });

  it('says an export did not finish when the folder has no transfer.json', async () => {
    expect(await transferFolderProblem(join(nas, 'tr-20261103-cccccc'))).toMatch(
      /transfer\.json is missing in .*tr-20261103-cccccc: the export did not finish; run it again\./,
    );
  });

  it('refuses a file where the transfer folder should be', async () => {
    expect(await transferFolderProblem(join(nas, 'notes.txt'))).toMatch(/notes\.txt is not a folder/);
  });

  it('is what verifyTransfer reports, as the MISSING problem of transfer.json', async () => {
    // No certificate is read before transfer.json is found.
    const report = await verifyTransfer({ root: join(nas, 'tr-20261101-aaaaab'), agentCertPem: '' });
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([
      expect.objectContaining({
        file: 'transfer.json',
        code: 'MISSING',
        message: expect.stringMatching(/^No transfer tr-20261101-aaaaab in /),
      }),
    ]);
  });
});

describe('odt import of a transfer that is not on the NAS', () => {
  it('says so before it connects to vCenter (an unreachable one here)', async () => {
    const identity = join(nas, 'identity.txt');
    await writeFile(identity, `${generateIdentity().identity}\n`);
    const out = new PassThrough();
    const err = new PassThrough();
    let text = '';
    err.on('data', (c) => (text += String(c)));
    const saved = process.env.ODT_VCENTER_PASSWORD;
    process.env.ODT_VCENTER_PASSWORD = 'secret';
    try {
      const code = await main(
        [
          'import',
          '--nas',
          nas,
          '--transfer',
          'tr-20261101-aaaaab',
          '--identity',
          identity,
          '--agent-cert',
          join(nas, 'agent.crt.pem'),
          '--vcenter',
          'https://127.0.0.1:1',
          '--username',
          'administrator@vsphere.local',
          '--insecure',
        ],
        { out, err },
      );
      expect(code).not.toBe(0);
    } finally {
      if (saved === undefined) delete process.env.ODT_VCENTER_PASSWORD;
      else process.env.ODT_VCENTER_PASSWORD = saved;
    }
    expect(text).toContain('No transfer tr-20261101-aaaaab in');
    expect(text).toContain('it holds tr-20261101-aaaaaa, tr-20261102-bbbbbb');
    expect(text).toContain('[NOT_FOUND]');
    expect(text).not.toMatch(/cannot reach|VIM_TRANSPORT/);
  });
});
