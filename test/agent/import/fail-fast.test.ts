// Issue 4: what odt import cannot do is said before it reads the NAS: checking a large NAS takes
// hours, and a mistyped datastore, a resource pool path that names a folder or a state folder that
// is a file must not wait for it. Placement paths are checked for what they name.
import { spawn } from 'node:child_process';
import { chmod, copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { VimClient } from '../../../agent/vsphere/client.ts';
import { PlacementError, resolvePlacement } from '../../../agent/vsphere/placement.ts';
import { type RunningSimulator, startSimulator } from '../../peers/vsphere/simulator.ts';
import { exportItems, importArgs, initParties, odt, repoRoot } from '../../support/cli.ts';
import { connectTo } from '../../support/vsphere.ts';

const transfer = 'tr-fail-fast-1';
let customer: RunningSimulator;
let provider: RunningSimulator;
let client: VimClient;
let work: string;
let nas: string;
beforeAll(async () => {
  customer = await startSimulator({ binary: inject('vcsimBinary'), diskSize: 1024 * 1024 });
  provider = await startSimulator({ binary: inject('vcsimBinary'), apps: 0, templates: 0 });
  client = await connectTo(provider);
  work = await mkdtemp(join(tmpdir(), 'odt-fail-fast-'));
  nas = join(work, 'nas');
  const recipient = await initParties(work);
  await exportItems(customer, work, recipient, ['DC0_H0_VM1'], nas, transfer);
});
afterAll(async () => {
  await client?.logout();
  await customer?.stop();
  await provider?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const importJson = (state: string, extra: string[]) =>
  odt([...importArgs(provider, work, nas, transfer, state), '--json', ...extra], {
    ODT_VCENTER_PASSWORD: provider.password,
  });

describe('odt import says what it cannot do before it checks the NAS', () => {
  it.each([
    [
      'a datastore that does not exist',
      ['--datastore', 'LocalDS_9'],
      "No datastore 'LocalDS_9'. Datastores: LocalDS_0.",
    ],
    [
      'a resource pool path that names a VM folder',
      ['--pool', '/DC0/vm'],
      "'/DC0/vm' is a Folder, not a resource pool; give a resource pool's path, e.g. /DC0/host/DC0_C0/Resources.",
    ],
  ])('%s', async (_name, extra, message) => {
    const r = await importJson(join(work, 'state'), extra);

    expect(r.code).not.toBe(0);
    expect(r.err).toContain(message);
    expect(r.out).not.toContain('"event":"verify"');
  });

  it('a state folder that is a file', async () => {
    const file = join(work, 'state-file');
    await writeFile(file, 'not a folder');

    const r = await importJson(file, []);

    expect(r.code).not.toBe(0);
    expect(r.err).toContain(`${file} is not a folder`);
    expect(r.err).toContain('(--state-dir); give a folder');
    expect(r.out).not.toContain('"event":"verify"');
  });
});

describe('resolvePlacement', () => {
  it.each([
    [
      'a pool that does not exist',
      { pool: '/DC0/host/DC0_C0/Resources/nope' },
      "No resource pool at '/DC0/host/DC0_C0/Resources/nope'; give its inventory path as vCenter shows it, e.g. /DC0/host/DC0_C0/Resources.",
    ],
    ['a VM folder given as the pool', { pool: '/DC0/vm' }, "'/DC0/vm' is a Folder, not a resource pool"],
    [
      'a resource pool given as the folder',
      { folder: '/DC0/host/DC0_C0/Resources' },
      "'/DC0/host/DC0_C0/Resources' is a ResourcePool, not a VM folder",
    ],
    [
      'the host folder given as the folder',
      { folder: '/DC0/host' },
      "'/DC0/host' is not a VM folder (it holds ComputeResource, Folder); give a VM folder's path, e.g. /DC0/vm.",
    ],
  ])('refuses %s, naming what the path is', async (_name, input, message) => {
    const placing = resolvePlacement(client, input);

    await expect(placing).rejects.toBeInstanceOf(PlacementError);
    await expect(placing).rejects.toThrow(message);
  });

  it('takes a resource pool and a VM folder by their paths', async () => {
    const p = await resolvePlacement(client, { pool: '/DC0/host/DC0_C0/Resources', folder: '/DC0/vm' });

    expect(p.pool.type).toBe('ResourcePool');
    expect(p.folder.type).toBe('Folder');
  });
});

// As root, the test runs odt as nobody, which needs to read this checkout (a clone under a
// private home folder cannot be): found out once, up front.
const asNobodyWorks =
  process.getuid?.() !== 0 ||
  (await new Promise<boolean>((resolve) => {
    const probe = spawn(
      process.execPath,
      ['-e', `require('fs').accessSync(${JSON.stringify(join(repoRoot, 'cli/entry.ts'))})`],
      {
        uid: 65534,
        gid: 65534,
        stdio: 'ignore',
      },
    );
    probe.on('error', () => resolve(false));
    probe.on('close', (code) => resolve(code === 0));
  }));

describe('odt verify of a NAS this user cannot read', () => {
  it.runIf(asNobodyWorks)(
    'says the file cannot be read by this user (UNREADABLE), not that it is missing or damaged',
    async () => {
      const root = join(nas, transfer);
      const disk = (await readdir(join(root, 'item-1'))).find((f) => f.endsWith('-disk-0.vmdk.age'))!;
      const path = join(root, 'item-1', disk);
      // As root (CI), run odt as nobody with the disk readable by root only; otherwise take the
      // read permission away from this user.
      const asRoot = process.getuid?.() === 0;
      await chmod(work, 0o755);
      // The agent's folder is its own (0700): the certificate goes where nobody can read it too.
      const cert = join(work, 'agent.crt.pem');
      await copyFile(join(work, 'agent', 'agent.crt.pem'), cert);
      await chmod(path, asRoot ? 0o600 : 0o000);
      try {
        const r = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
          const child = spawn(
            process.execPath,
            [
              '--import',
              'tsx',
              join(repoRoot, 'cli/entry.ts'),
              'verify',
              '--nas',
              nas,
              '--transfer',
              transfer,
              '--agent-cert',
              cert,
              '--json',
            ],
            {
              cwd: repoRoot,
              env: { ...process.env, HOME: tmpdir() },
              stdio: ['ignore', 'pipe', 'pipe'],
              ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
            },
          );
          let out = '';
          child.stdout.on('data', (c) => (out += String(c)));
          child.on('error', reject);
          child.on('close', (code) => resolve({ code, out }));
        });

        expect(r.code).not.toBe(0);
        const report = JSON.parse(r.out) as { problems: { file: string; code: string; message: string }[] };
        expect(report.problems).toEqual([
          {
            file: `item-1/${disk}`,
            code: 'UNREADABLE',
            message: expect.stringMatching(
              /cannot be read by this user \(EACCES\): run odt as a user who can read the NAS, or fix the files' permissions; this says nothing of the file itself\.$/,
            ),
          },
        ]);
      } finally {
        await chmod(path, 0o644);
      }
    },
    60_000,
  );
});
