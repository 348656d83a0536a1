// Issue #19, safe by default on the customer's side: the NAS must be the NAS, checks before any
// byte, no empty or orphan transfers, and dry runs that touch nothing. Each test names the "What
// was seen" bullet it answers; each failed on the code before the change.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { nasMarkerFile } from '../../agent/nas/nas-marker.ts';
import { VimClient } from '../../agent/vsphere/client.ts';
import { type RunningSimulator, startSimulator } from '../peers/vsphere/simulator.ts';
import { exportSite, importArgs, initParties, odt } from '../support/cli.ts';

const sh = promisify(execFile);

let sim: RunningSimulator;
let work: string;
let recipient: string;
let n = 0;

beforeAll(async () => {
  sim = await startSimulator({ binary: inject('vcsimBinary'), diskSize: '1MiB', apps: 0 });
  work = await mkdtemp(join(tmpdir(), 'odt-export-nas-'));
  recipient = await initParties(work);
});
afterAll(async () => {
  await sim?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const env = () => ({ ODT_VCENTER_PASSWORD: sim.password });

/** `odt export` of `items` into `nas` as it would be typed, without the tests' --nas-plain-folder. */
const exportCmd = (nas: string, items: readonly string[], extra: readonly string[] = []): string[] => [
  'export',
  ...['--vcenter', sim.url, '--username', sim.username],
  ...items.flatMap((i) => ['--item', i]),
  ...['--nas', nas, '--recipient', recipient, '--site', exportSite, '--agent-dir', join(work, 'agent')],
  ...extra,
];

/** The names of the simulator's VMs, as its vCenter lists them now. */
async function vmNames(): Promise<string[]> {
  const client = await VimClient.connect({
    url: sim.url,
    username: sim.username,
    password: sim.password,
    trust: { kind: 'system' },
  });
  try {
    const vms = await client.listByType(['VirtualMachine'], ['name']);
    return vms.map((v) => v.props.get('name')?.text ?? '').sort();
  } finally {
    await client.logout();
  }
}

/** Every entry under `dir`, relative, sorted (folders end with `/`). */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) {
        out.push(`${rel}${e.name}/`);
        await walk(join(d, e.name), `${rel}${e.name}/`);
      } else out.push(`${rel}${e.name}`);
    }
  };
  await walk(dir, '');
  return out.sort();
}

/** A fresh plain folder under `work`. */
async function folder(): Promise<string> {
  const dir = join(work, `nas-${++n}`);
  await mkdir(dir);
  return dir;
}

/** A fresh folder marked with `odt nas init --plain-folder`; returns it and the marker's id. */
async function markedFolder(name: string): Promise<{ dir: string; id: string }> {
  const dir = await folder();
  const r = await odt(['nas', 'init', dir, '--plain-folder', '--name', name]);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  const marker = JSON.parse(await readFile(join(dir, nasMarkerFile), 'utf8')) as { id: string };
  return { dir, id: marker.id };
}

describe('the NAS must be the NAS', () => {
  it('a --nas that does not exist is refused, and nothing is created (was: created and filled, exit 0)', async () => {
    const missing = join(work, 'mnt', 'no-such-nas');
    const r = await odt(exportCmd(missing, ['DC0_H0_VM1'], ['--transfer', 'tr-missing-1']), env());
    expect(r.code).toBe(2);
    expect(r.err).toContain(`--nas ${missing} does not exist: mount the NAS there`);
    expect(r.err).toContain('[NAS_MISSING]');
    await expect(stat(join(work, 'mnt'))).rejects.toThrow(/ENOENT/);
    // The lab flag does not make a missing folder acceptable either.
    const lab = await odt(exportCmd(missing, ['DC0_H0_VM1'], ['--nas-plain-folder']), env());
    expect(lab.code).toBe(2);
    await expect(stat(join(work, 'mnt'))).rejects.toThrow(/ENOENT/);
  });

  it('a plain folder is refused by default, saying it is not a mount point and what to do; the lab flag takes it', async () => {
    const dir = await folder();
    const r = await odt(exportCmd(dir, ['DC0_H0_VM1'], ['--transfer', 'tr-plain-1']), env());
    expect(r.code).toBe(2);
    expect(r.err).toContain('is not a mount point');
    expect(r.err).toContain(`odt nas init ${dir} --name <label>`);
    expect(r.err).toContain('--nas-plain-folder');
    expect(await tree(dir)).toEqual([]);
    const lab = await odt(
      exportCmd(dir, ['DC0_H0_VM1'], ['--transfer', 'tr-plain-1', '--nas-plain-folder']),
      env(),
    );
    expect(lab.err).toBe('');
    expect(lab.code).toBe(0);
    expect(lab.out).toContain(`on the plain folder ${dir} (no NAS marker)`);
    expect(await tree(dir)).toContain('tr-plain-1/transfer.json');
  });

  it('odt nas init marks a NAS (a plain folder only with --plain-folder); export then works, and verify names the NAS', async () => {
    const dir = await folder();
    const refused = await odt(['nas', 'init', dir, '--name', 'acme-box-1']);
    expect(refused.code).toBe(2);
    expect(refused.err).toContain('is not a mount point');
    expect(refused.err).toContain('[NAS_NOT_MOUNTED]');
    expect(await tree(dir)).toEqual([]);

    const init = await odt(['nas', 'init', dir, '--name', 'acme-box-1', '--plain-folder', '--json']);
    expect(init.code).toBe(0);
    const shown = JSON.parse(init.out) as { marker: { name: string; id: string; createdAt: string } };
    expect(shown.marker).toMatchObject({ name: 'acme-box-1', id: expect.stringMatching(/^nas-/) });
    expect(await tree(dir)).toEqual([nasMarkerFile]);
    // Again: the marker is kept, not replaced (a NAS keeps its id).
    const again = await odt(['nas', 'init', dir, '--name', 'other', '--plain-folder']);
    expect(again.code).toBe(0);
    expect(again.err).toContain(`kept the existing marker: NAS 'acme-box-1' (${shown.marker.id})`);

    const r = await odt(exportCmd(dir, ['DC0_H0_VM1'], ['--transfer', 'tr-init-1']), env());
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain(`on NAS 'acme-box-1' (${shown.marker.id})`);
    const v = await odt([
      ...['verify', '--nas', dir, '--transfer', 'tr-init-1'],
      ...['--agent-cert', join(work, 'agent', 'agent.crt.pem')],
    ]);
    expect(v.code).toBe(0);
    expect(v.out).toContain(`on NAS 'acme-box-1' (${shown.marker.id}) at ${dir}`);
    const show = await odt(['nas', 'show', dir]);
    expect(show.out).toContain(`NAS 'acme-box-1' (${shown.marker.id})`);
    expect(show.out).toContain('transfers: tr-init-1');
  });

  it('odt nas init of a mount point needs no flag; export to it works without one', async () => {
    const dir = await folder();
    await sh('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', dir]);
    try {
      const init = await odt(['nas', 'init', dir, '--name', 'mounted-box']);
      expect(init.code).toBe(0);
      expect(init.out).toContain('tmpfs');
      expect(init.out).toContain('a mount point');
      const marker = JSON.parse(await readFile(join(dir, nasMarkerFile), 'utf8')) as Record<string, unknown>;
      expect(marker.plainFolder).toBeUndefined();
      const r = await odt(exportCmd(dir, ['DC0_H0_VM1'], ['--transfer', 'tr-mnt-1']), env());
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
    } finally {
      await sh('umount', ['-l', dir]);
    }
  });
});

describe('before any byte', () => {
  it('a read-only NAS is named as such (was: ENOENT … check the path)', async () => {
    const dir = await folder();
    await sh('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', dir]);
    try {
      expect((await odt(['nas', 'init', dir, '--name', 'ro-box'])).code).toBe(0);
      await sh('mount', ['-o', 'remount,ro', dir]);
      const r = await odt(exportCmd(dir, ['DC0_H0_VM1'], ['--transfer', 'tr-ro-1']), env());
      expect(r.code).toBe(5);
      expect(r.err).toContain('is on a read-only file system (EROFS): remount the NAS read-write');
      expect(r.err).toContain('[NAS_READ_ONLY]');
      expect(r.err).not.toContain('ENOENT');
    } finally {
      await sh('umount', ['-l', dir]);
    }
  });

  it('a NAS too small for the items is refused with both sizes and the free space; nothing is written', async () => {
    const dir = await folder();
    // Two disks of 1 MiB; 1 MiB free.
    await sh('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
    try {
      expect((await odt(['nas', 'init', dir, '--name', 'small-box'])).code).toBe(0);
      const r = await odt(exportCmd(dir, ['DC0_H0_VM1'], ['--transfer', 'tr-small-1']), env());
      expect(r.code).toBe(5);
      expect(r.err).toMatch(
        /NAS 'small-box' \(nas-[^)]+\) at .* has 1020 KiB free, and the items need about 3\.0 MiB more: estimated 2\.0 MiB \(what the disks hold\), provisioned 2\.0 MiB \(their capacity\)/,
      );
      expect(r.err).toContain('nothing was written. [NAS_TOO_SMALL]');
      expect(await tree(dir)).toEqual([nasMarkerFile]);
    } finally {
      await sh('umount', ['-l', dir]);
    }
  });
});

describe('space that is tight', () => {
  it('is said before the first byte, and the export goes on', async () => {
    const dir = await folder();
    // About 3.1 MiB needed (two 1 MiB disks in age, and 1 MiB for the small files): 3.2 MiB free
    // is enough, with less than the 10 % margin.
    await sh('mount', ['-t', 'tmpfs', '-o', 'size=3300k', 'tmpfs', dir]);
    try {
      expect((await odt(['nas', 'init', dir, '--name', 'tight-box'])).code).toBe(0);
      const r = await odt(exportCmd(dir, ['DC0_H0_VM1'], ['--transfer', 'tr-tight-1']), env());
      expect(r.err).toMatch(
        /^odt: warning: space is tight: NAS 'tight-box' .* has 3\.2 MiB free for about 3\.0 MiB \(estimated 2\.0 MiB .*provisioned 2\.0 MiB/m,
      );
      expect(r.code).toBe(0);
      expect(await tree(dir)).toContain('tr-tight-1/transfer.json');
    } finally {
      await sh('umount', ['-l', dir]);
    }
  });
});

describe('no empty or orphan transfers', () => {
  it('no --item is a usage error, and nothing is written (was: an empty signed transfer, exit 0)', async () => {
    const { dir } = await markedFolder('empty-box');
    const r = await odt(exportCmd(dir, [], ['--transfer', 'tr-empty-1']), env());
    expect(r.code).toBe(2);
    expect(r.err).toContain('--item: names no VM, template or vApp: give at least one');
    expect(await tree(dir)).toEqual([nasMarkerFile]);
  });

  it('an item that is not found leaves no transfer folder (was: an empty tr-… folder)', async () => {
    const { dir } = await markedFolder('notfound-box');
    const r = await odt(exportCmd(dir, ['no-such-vm'], ['--transfer', 'tr-nf-1']), env());
    expect(r.code).toBe(2);
    expect(r.err).toContain("No VM, template or vApp named 'no-such-vm'");
    expect(await tree(dir)).toEqual([nasMarkerFile]);
  });

  it('a refused VM (running, with --cold-only) leaves no transfer folder, and the rerun command is printed', async () => {
    const { dir } = await markedFolder('refused-box');
    const r = await odt(exportCmd(dir, ['DC0_H0_VM0'], ['--cold-only']), env());
    expect(r.code).toBe(3);
    expect(r.err).toContain('/DC0/vm/DC0_H0_VM0 is poweredOn');
    expect(r.err).toMatch(
      /nothing was kept; fix the cause and run: odt export .* --cold-only --transfer tr-\d{8}-[0-9a-f]{6}\n/,
    );
    expect(await tree(dir)).toEqual([nasMarkerFile]);
  });

  it('a transfer folder that was there before (a rerun) is kept, even when this run writes nothing', async () => {
    const { dir } = await markedFolder('kept-box');
    await mkdir(join(dir, 'tr-kept-1'));
    await writeFile(join(dir, 'tr-kept-1', 'note'), 'x');
    const r = await odt(exportCmd(dir, ['DC0_H0_VM0'], ['--cold-only', '--transfer', 'tr-kept-1']), env());
    expect(r.code).toBe(3);
    expect(await tree(dir)).toEqual([nasMarkerFile, 'tr-kept-1/', 'tr-kept-1/note']);
  });
});

describe('--dry-run touches nothing', () => {
  it('export: checks the NAS, the items, their power state and the space, and prints what it would do', async () => {
    const { dir, id } = await markedFolder('dry-box');
    await sim.clearNfcRequests();
    const r = await odt(exportCmd(dir, ['DC0_H0_VM1', 'DC0_H0_VM0'], ['--cold-only', '--dry-run']), env());
    expect(r.code).toBe(3);
    expect(r.out).toContain('dry run: nothing was written or created');
    expect(r.out).toContain(`NAS 'dry-box' (${id}) at ${dir}`);
    expect(r.out).toMatch(
      /item-1 {2}vm {2}\/DC0\/vm\/DC0_H0_VM1 {2}poweredOff {2}2 disk\(s\), estimated 2\.0 MiB, provisioned 2\.0 MiB: would be exported/,
    );
    expect(r.out).toMatch(/item-2 {2}vm {2}\/DC0\/vm\/DC0_H0_VM0 {2}poweredOn .*would be REFUSED/);
    expect(r.out).toMatch(/space: estimated 2\.0 MiB, provisioned 2\.0 MiB; needs about 3\.0 MiB of .* free/);
    // Where it would go; no resume line: a dry run has nothing to resume.
    expect(r.out).toMatch(
      new RegExp(`^transfer tr-\\d{8}-[0-9a-f]{6} -> ${dir}/tr-\\d{8}-[0-9a-f]{6} \\(new\\)$`, 'm'),
    );
    expect(r.out).not.toContain('resume');
    // Nothing on the NAS, nothing at the vCenter's hosts (no lease was taken, no disk read).
    expect(await tree(dir)).toEqual([nasMarkerFile]);
    expect(await sim.nfcRequests()).toEqual([]);

    const json = await odt(
      exportCmd(dir, ['DC0_H0_VM1'], ['--dry-run', '--json', '--transfer', 'tr-dry-1']),
      env(),
    );
    expect(json.code).toBe(0);
    const plan = JSON.parse(json.out) as {
      dryRun: boolean;
      items: { id: string; files: unknown[] }[];
      root: string;
    };
    expect(plan).toMatchObject({ dryRun: true, root: join(dir, 'tr-dry-1') });
    expect(plan.items[0]!.files).toHaveLength(2);
    expect(await tree(dir)).toEqual([nasMarkerFile]);
  });

  it('export: a NAS problem is found by the dry run too', async () => {
    const r = await odt(exportCmd(join(work, 'absent'), ['DC0_H0_VM1'], ['--dry-run']), env());
    expect(r.code).toBe(2);
    expect(r.err).toContain('[NAS_MISSING]');
  });

  it('import: checks NAS, signature, binding, hashes, placement and room, and imports nothing', async () => {
    const { dir, id } = await markedFolder('import-box');
    const exported = await odt(exportCmd(dir, ['DC0_H0_VM1'], ['--transfer', 'tr-imp-1']), env());
    expect(exported.code).toBe(0);
    const before = await tree(dir);
    const state = join(work, 'import-state');
    await sim.clearNfcRequests();
    const vmsBefore = await vmNames();
    const r = await odt([...importArgs(sim, work, dir, 'tr-imp-1', state), '--dry-run'], env());
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain(`from NAS 'import-box' (${id}) at ${dir}`);
    expect(r.out).toContain('dry run: nothing was imported, created or journaled');
    expect(r.out).toMatch(
      /^ok {3}package {5}signed by the pinned agent, bound to tr-imp-1; \d+ files decrypted and checked$/m,
    );
    expect(r.out).toMatch(/^ok {3}placement /m);
    expect(r.out).toMatch(/^ok {3}datastore {3}.* free for /m);
    expect(r.out).toMatch(/^item-1 {2}vm {2}DC0_H0_VM1 .*would be imported$/m);
    // Nothing imported, no journal, no upload, the NAS as it was.
    await expect(stat(state)).rejects.toThrow(/ENOENT/);
    expect(await sim.nfcRequests()).toEqual([]);
    expect(await vmNames()).toEqual(vmsBefore);
    expect(await tree(dir)).toEqual(before);

    // A damaged package: the dry run says so (exit 4), as the import would.
    const disk = join(dir, 'tr-imp-1', 'item-1', 'DC0_H0_VM1-disk-0.vmdk.age');
    const bytes = await readFile(disk);
    bytes[bytes.length - 100]! ^= 1;
    await writeFile(disk, bytes);
    const bad = await odt([...importArgs(sim, work, dir, 'tr-imp-1', state), '--dry-run'], env());
    expect(bad.code).toBe(4);
    expect(bad.out).toMatch(/^FAIL package {5}item-1\/DC0_H0_VM1-disk-0\.vmdk\.age: /m);
  });
});
