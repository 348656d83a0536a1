// Issue 21: `odt export` of a running VM killed with SIGKILL leaves its snapshot and clone on the
// vCenter (nothing can run at a kill -9); the same command run again reuses that snapshot, so the
// disk file the first run completed is kept and stays consistent with the rest, and it ends
// with no clone and no snapshot of ours.

import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, inject, it } from 'vitest';
import { liveMarker } from '../../../agent/vsphere/live-capture.ts';
import { guestWrite, vmStatuses } from '../../peers/vsphere/guest.ts';
import { startSimulator } from '../../peers/vsphere/simulator.ts';
import { exportArgs, initParties, repoRoot, run } from '../../support/cli.ts';
import { ageDecrypt } from '../../support/disks.ts';

const mark = (s: string) => Buffer.from(s.padEnd(512, '#'));

it('kill -9 then the same command: resumes from the same snapshot and leaves nothing of ours', async () => {
  const sim = await startSimulator({
    binary: inject('vcsimBinary'),
    diskSize: '8MiB',
    poweredOn: ['DC0_H0_VM0'],
    apps: 0,
    templates: 0,
    // 4 MiB/s: about two seconds a disk, so the kill lands while the second one moves.
    nfcBytesPerSecond: 4 << 20,
  });
  const work = await mkdtemp(join(tmpdir(), 'odt-live-resume-'));
  try {
    const recipient = await initParties(work);
    const nas = join(work, 'nas');
    const transfer = 'tr-live-kill';
    const dir = join(nas, transfer, 'item-1');
    const args = [
      join(repoRoot, 'bin', 'odt.mjs'),
      ...exportArgs(sim, work, recipient, ['DC0_H0_VM0'], nas, transfer),
      '--parallel',
      '1',
      '--json',
    ];
    const env = { ...process.env, ODT_VCENTER_PASSWORD: sim.password };
    const before = mark('BEFORE-THE-SNAPSHOT');
    await guestWrite(sim, 'DC0_H0_VM0', 1, 4096, before);

    const first = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      first.stdout.on('data', (c) => {
        out += String(c);
        if (/"file":"DC0_H0_VM0-disk-0.vmdk".*"done":true/.test(out)) {
          const poll = setInterval(async () => {
            const partial = await stat(join(dir, 'DC0_H0_VM0-disk-1.vmdk.age.partial')).catch(
              () => undefined,
            );
            if (partial && partial.size > 1 << 20) {
              clearInterval(poll);
              first.kill('SIGKILL');
            }
          }, 5);
        }
      });
      first.on('exit', (_code, signal) =>
        signal === 'SIGKILL' ? resolve() : reject(new Error(`the first run ended without the kill: ${out}`)),
      );
    });

    // What a kill -9 leaves: the clone and the snapshot, both named as ours.
    const left = await vmStatuses(sim);
    expect(left.map((v) => v.name)).toContain(`${liveMarker}-${transfer}-item-1`);
    expect(left.find((v) => v.name === 'DC0_H0_VM0')!.snapshots.map((s) => s.name)).toEqual([
      `${liveMarker} ${transfer} item-1`,
    ]);
    const disk0 = await stat(join(dir, 'DC0_H0_VM0-disk-0.vmdk.age'));
    // The guest goes on writing between the runs: the package must not show it.
    const between = mark('BETWEEN-THE-RUNS');
    await guestWrite(sim, 'DC0_H0_VM0', 1, 8192, between);
    await guestWrite(sim, 'DC0_H0_VM0', 0, 8192, between);

    const second = await run(process.execPath, args, { env });
    expect(second.stderr.toString()).toBe('');
    expect(second.code).toBe(0);
    const capture = second.stdout
      .toString()
      .split('\n')
      .filter((l) => l.includes('"event":"capture"'))
      .map((l) => JSON.parse(l) as { read: string; deltaSync: boolean });
    expect(capture).toHaveLength(1);
    expect(capture[0]!.read).toMatch(/^live, from snapshot at \S+Z, crash-consistent$/);

    // Nothing of ours is left, the completed disk was kept as it was, and the package is the VM
    // at the one snapshot both runs read.
    const after = await vmStatuses(sim);
    expect(after.filter((v) => v.name.startsWith(liveMarker))).toEqual([]);
    expect(after.find((v) => v.name === 'DC0_H0_VM0')!.snapshots).toEqual([]);
    const kept = await stat(join(dir, 'DC0_H0_VM0-disk-0.vmdk.age'));
    expect([kept.ino, kept.mtimeMs]).toEqual([disk0.ino, disk0.mtimeMs]);
    const plain1 = await ageDecrypt(work, join(dir, 'DC0_H0_VM0-disk-1.vmdk.age'));
    const plain0 = await ageDecrypt(work, join(dir, 'DC0_H0_VM0-disk-0.vmdk.age'));
    expect(plain1.subarray(4096, 4608)).toEqual(before);
    expect(plain1.includes(between)).toBe(false);
    expect(plain0.includes(between)).toBe(false);
    const manifest = JSON.parse(await readFile(join(nas, transfer, 'transfer.json'), 'utf8')) as {
      items: { capture?: { mode: string; snapshotAt: string } }[];
    };
    expect(manifest.items[0]!.capture?.mode).toBe('live');
  } finally {
    await sim.stop();
    await rm(work, { recursive: true, force: true });
  }
}, 120_000);

it('Ctrl-C (SIGINT) mid-disk: odt export removes its clone and snapshot before it exits 130', async () => {
  const sim = await startSimulator({
    binary: inject('vcsimBinary'),
    diskSize: '8MiB',
    poweredOn: ['DC0_H0_VM0'],
    apps: 0,
    templates: 0,
    nfcBytesPerSecond: 4 << 20,
  });
  const work = await mkdtemp(join(tmpdir(), 'odt-live-int-'));
  try {
    const recipient = await initParties(work);
    const nas = join(work, 'nas');
    const args = [
      join(repoRoot, 'bin', 'odt.mjs'),
      ...exportArgs(sim, work, recipient, ['DC0_H0_VM0'], nas, 'tr-live-int'),
      '--parallel',
      '1',
      '--json',
    ];
    const child = spawn(process.execPath, args, {
      env: { ...process.env, ODT_VCENTER_PASSWORD: sim.password },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let sent = false;
    const code = await new Promise<number | null>((resolve) => {
      child.stdout.on('data', (c) => {
        out += String(c);
        // The first bytes of a disk moved: the snapshot and the clone exist.
        if (!sent && /"bytes":[1-9]/.test(out)) {
          sent = true;
          child.kill('SIGINT');
        }
      });
      child.on('exit', (c) => resolve(c));
    });
    expect(sent).toBe(true);
    expect(code).toBe(130);
    const vms = await vmStatuses(sim);
    expect(vms.filter((v) => v.name.startsWith(liveMarker))).toEqual([]);
    expect(vms.find((v) => v.name === 'DC0_H0_VM0')!.snapshots).toEqual([]);
  } finally {
    await sim.stop();
    await rm(work, { recursive: true, force: true });
  }
}, 120_000);
