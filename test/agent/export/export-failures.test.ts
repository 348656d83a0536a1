import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type RunningSimulator, startSimulator } from '../../peers/vsphere/simulator.ts';
import { exportArgs as exportArgsOf, initParties, odt, repoRoot, run } from '../../support/cli.ts';
import { expectDisksDecrypt } from '../../support/disks.ts';

const sh = promisify(execFile);

/** Every file under `dir`, relative, sorted. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string) => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(d, e.name), `${rel}${e.name}/`);
      else out.push(`${rel}${e.name}`);
    }
  };
  await walk(dir, '');
  return out.sort();
}

/** Nothing under `dir` may look like a complete package file: only `.partial` leftovers or journals. */
async function expectNothingLooksComplete(dir: string, item: string): Promise<void> {
  const files = (await tree(join(dir, item))).filter((f) => f.endsWith('.age'));
  expect(files, 'complete-looking files').toEqual([]);
  expect(await tree(dir)).not.toContain('transfer.json');
}

describe('export failures are clear and leave nothing that looks complete', () => {
  let sim: RunningSimulator;
  let work: string;
  let recipient: string;

  beforeAll(async () => {
    sim = await startSimulator({ binary: inject('vcsimBinary'), diskSize: '2MiB' });
    work = await mkdtemp(join(tmpdir(), 'odt-exfail-'));
    recipient = await initParties(work);
  });
  afterAll(async () => {
    await sim?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const exportArgs = (nas: string, items: string[], transfer = 'tr-fail-1') =>
    exportArgsOf(sim, work, recipient, items, nas, transfer);

  it('a powered-on VM with --cold-only: says to power it off (without the flag it is exported live, live-export.test.ts)', async () => {
    const nas = join(work, 'nas-on');
    const r = await odt([...exportArgs(nas, ['DC0_H0_VM0']), '--cold-only'], {
      ODT_VCENTER_PASSWORD: sim.password,
    });
    expect(r.code).not.toBe(0);
    expect(r.err).toContain('/DC0/vm/DC0_H0_VM0 is poweredOn');
    expect(r.err).toContain('power the VM off');
    await expectNothingLooksComplete(join(nas, 'tr-fail-1'), 'item-1');
  });

  it('an unknown item: names it and how to list the inventory', async () => {
    const r = await odt(exportArgs(join(work, 'nas-unknown'), ['no-such-vm']), {
      ODT_VCENTER_PASSWORD: sim.password,
    });
    expect(r.code).not.toBe(0);
    expect(r.err).toContain("No VM, template or vApp named 'no-such-vm'");
    expect(r.err).toContain('odt inventory');
  });

  it('wrong credentials: InvalidLogin, with what to check', async () => {
    const r = await odt(exportArgs(join(work, 'nas-cred'), ['DC0_H0_VM1']), {
      ODT_VCENTER_PASSWORD: 'wrong',
    });
    expect(r.code).not.toBe(0);
    expect(r.err).toContain('InvalidLogin');
    expect(r.err).toContain('Check --username and ODT_VCENTER_PASSWORD');
  });

  it('no password in the environment: names the variable', async () => {
    const saved = process.env.ODT_VCENTER_PASSWORD;
    delete process.env.ODT_VCENTER_PASSWORD;
    try {
      const r = await odt(exportArgs(join(work, 'nas-nopw'), ['DC0_H0_VM1']));
      expect(r.code).not.toBe(0);
      expect(r.err).toContain('ODT_VCENTER_PASSWORD: is not set');
    } finally {
      if (saved !== undefined) process.env.ODT_VCENTER_PASSWORD = saved;
    }
  });

  it('a NAS that is a file: says so and what to give', async () => {
    const blocker = join(work, 'not-a-dir');
    await import('node:fs/promises').then((fs) => fs.writeFile(blocker, 'x'));
    const r = await odt(exportArgs(blocker, ['DC0_H0_VM1']), { ODT_VCENTER_PASSWORD: sim.password });
    expect(r.code).toBe(2);
    expect(r.err).toContain('is a file, not a folder');
    expect(r.err).toContain("give the NAS's mount point");
    expect(r.err).toContain('[NAS_NOT_A_FOLDER]');
  });
});

describe('a NAS that fills up during the export (ENOSPC)', () => {
  it('fails the item, keeps no complete-looking file, and says to free space', async () => {
    // The check before the first byte passes; the test fills the NAS once the first item is
    // complete, while the second item's lease is getting ready (1.5 s).
    const sim = await startSimulator({
      binary: inject('vcsimBinary'),
      diskSize: '2MiB',
      apps: 0,
      leaseReadyDelayMs: 1500,
    });
    const work = await mkdtemp(join(tmpdir(), 'odt-enospc-'));
    const mnt = join(work, 'small');
    await mkdir(mnt);
    await sh('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt]);
    try {
      const recipient = await initParties(work);
      const root = join(mnt, 'tr-fail-1');
      let filled = false;
      const filler = setInterval(async () => {
        if (filled || !(await stat(join(root, 'item-1', 'DC0_H0_VM1.mf.age')).catch(() => undefined))) return;
        filled = true;
        const fill = await open(join(mnt, 'filler'), 'w');
        try {
          for (;;) await fill.write(Buffer.alloc(64 * 1024));
        } catch {
          // ENOSPC: full.
        } finally {
          await fill.close();
        }
      }, 5);
      const r = await odt(
        [
          ...exportArgsOf(sim, work, recipient, ['DC0_H0_VM1', 'DC0_C0_TPL0'], mnt, 'tr-fail-1'),
          '--parallel',
          '1',
        ],
        { ODT_VCENTER_PASSWORD: sim.password },
      ).finally(() => clearInterval(filler));
      expect(filled).toBe(true);
      expect(r.code).toBe(3);
      expect(r.err).toContain('item-2 (/DC0/vm/DC0_C0_TPL0) failed: ENOSPC');
      expect(r.err).toContain('free space or use a larger NAS');
      // The command that resumes it, as it was typed (with its --transfer).
      expect(r.err).toContain('fix the cause and resume with this command');
      expect(r.err).toContain(`--nas ${mnt} --nas-plain-folder`);
      const files = await tree(root);
      // The first item is complete and kept; the second leaves no trace that looks complete.
      expect(files).toContain('item-1/DC0_H0_VM1-disk-1.vmdk.age');
      expect(files.filter((f) => f.endsWith('.partial'))).toEqual([]);
      expect(files).not.toContain('transfer.json');
      expect(files.filter((f) => f.startsWith('item-2/') && f.endsWith('.age'))).toEqual([]);
    } finally {
      await sh('umount', ['-l', mnt]);
      await sim.stop();
      await rm(work, { recursive: true, force: true });
    }
  });
});

describe('the NFC lease', () => {
  it('is aborted by the server mid-transfer: the export fails with the lease error, nothing looks complete', async () => {
    const sim = await startSimulator({
      binary: inject('vcsimBinary'),
      diskSize: '4MiB',
      abortAfterBytes: 3 * 1024 * 1024,
    });
    const work = await mkdtemp(join(tmpdir(), 'odt-abort-'));
    try {
      const recipient = await initParties(work);
      const nas = join(work, 'nas');
      const r = await odt(
        [...exportArgsOf(sim, work, recipient, ['DC0_H0_VM1'], nas, 'tr-abort-1'), '--parallel', '1'],
        { ODT_VCENTER_PASSWORD: sim.password },
      );
      expect(r.code).not.toBe(0);
      expect(r.err).toMatch(/lease/i);
      const files = await tree(join(nas, 'tr-abort-1'));
      expect(files.filter((f) => f.endsWith('.partial'))).toEqual([]);
      expect(files).not.toContain('transfer.json');
      expect(files).not.toContain('item-1/DC0_H0_VM1-disk-0.vmdk.age');
    } finally {
      await sim.stop();
      await rm(work, { recursive: true, force: true });
    }
  });

  it('survives a transfer longer than its enforced timeout, kept alive by HttpNfcLeaseProgress', async () => {
    // 1.5 s: keep-alives every 0.5 s, so a loaded CI machine may stall the event loop for up to a second
    // without losing the lease; the transfer still outlives it more than twice.
    const leaseTimeoutMs = 1500;
    const sim = await startSimulator({
      binary: inject('vcsimBinary'),
      diskSize: '256MiB',
      disksPerVm: 4,
      diskContent: 'zero',
      apps: 0,
      templates: 0,
      leaseTimeoutMs,
      // 1 GiB at 256 MiB/s: four seconds, however fast the export gets.
      nfcBytesPerSecond: 256 * 2 ** 20,
    });
    const work = await mkdtemp(join(tmpdir(), 'odt-keepalive-'));
    try {
      const recipient = await initParties(work);
      const started = Date.now();
      const r = await odt(
        [
          ...exportArgsOf(sim, work, recipient, ['DC0_H0_VM1'], join(work, 'nas'), 'tr-ka-1'),
          '--parallel',
          '1',
        ],
        { ODT_VCENTER_PASSWORD: sim.password },
      );
      const elapsed = Date.now() - started;
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      // The test only means something if the transfer outlived the lease timeout several times.
      expect(elapsed).toBeGreaterThan(2 * leaseTimeoutMs);
    } finally {
      await sim.stop();
      await rm(work, { recursive: true, force: true });
    }
  });
});

describe('resume after SIGKILL', () => {
  it('keeps complete files, re-sends only the unfinished one, and ends identical to an uninterrupted export', async () => {
    const sim = await startSimulator({
      binary: inject('vcsimBinary'),
      diskSize: '160MiB',
      disksPerVm: 3,
      diskContent: 'sparse',
      apps: 0,
      templates: 0,
    });
    const work = await mkdtemp(join(tmpdir(), 'odt-resume-'));
    try {
      const recipient = await initParties(work);
      const nas = join(work, 'nas');
      const root = join(nas, 'tr-resume-1', 'item-1');
      const args = [
        join(repoRoot, 'bin', 'odt.mjs'),
        ...exportArgsOf(sim, work, recipient, ['DC0_H0_VM1'], nas, 'tr-resume-1'),
        '--parallel',
        '1',
        '--json',
      ];
      const env = { ...process.env, ODT_VCENTER_PASSWORD: sim.password };

      // First run: killed with SIGKILL while the second disk is being written.
      const first = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let firstOut = '';
      const killed = new Promise<void>((resolve, reject) => {
        first.stdout.on('data', (c) => {
          firstOut += String(c);
          if (
            firstOut.includes('"file":"DC0_H0_VM1-disk-0.vmdk"') &&
            /"file":"DC0_H0_VM1-disk-0.vmdk".*"done":true/.test(firstOut)
          ) {
            const poll = setInterval(async () => {
              const partial = await stat(join(root, 'DC0_H0_VM1-disk-1.vmdk.age.partial')).catch(
                () => undefined,
              );
              if (partial && partial.size > 1024 * 1024) {
                clearInterval(poll);
                first.kill('SIGKILL');
              }
            }, 5);
          }
        });
        first.on('exit', (_code, signal) =>
          signal === 'SIGKILL'
            ? resolve()
            : reject(new Error(`first run ended without the kill: ${firstOut}`)),
        );
      });
      await killed;
      const afterKill = await tree(root);
      expect(afterKill).toContain('DC0_H0_VM1-disk-0.vmdk.age');
      expect(afterKill).toContain('DC0_H0_VM1-disk-1.vmdk.age.partial');
      expect(afterKill).not.toContain('DC0_H0_VM1-disk-1.vmdk.age');
      const disk0 = await stat(join(root, 'DC0_H0_VM1-disk-0.vmdk.age'));

      // Second run: the same command completes.
      const second = await run(process.execPath, args, { env });
      expect(second.stderr).toBe('');
      expect(second.code).toBe(0);
      const events = second.stdout
        .toString()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { event: string; file?: string; done?: boolean; skipped?: boolean });
      const finals = events.filter((e) => e.event === 'progress' && e.done);
      expect(finals.find((e) => e.file === 'DC0_H0_VM1-disk-0.vmdk')?.skipped).toBe(true);
      expect(finals.find((e) => e.file === 'DC0_H0_VM1-disk-1.vmdk')?.skipped).toBe(false);
      expect(finals.find((e) => e.file === 'DC0_H0_VM1-disk-2.vmdk')?.skipped).toBe(false);
      // The complete file was not rewritten.
      const disk0After = await stat(join(root, 'DC0_H0_VM1-disk-0.vmdk.age'));
      expect(disk0After.ino).toBe(disk0.ino);
      expect(disk0After.mtimeMs).toBe(disk0.mtimeMs);
      expect((await tree(root)).filter((f) => f.endsWith('.partial'))).toEqual([]);

      // Identical in content to an uninterrupted export: every disk decrypts to the source bytes.
      await expectDisksDecrypt(sim, work, root, 'DC0_H0_VM1');
      const verify = await odt([
        'verify',
        '--nas',
        nas,
        '--transfer',
        'tr-resume-1',
        '--identity',
        join(work, 'node', 'identity.txt'),
        '--agent-cert',
        join(work, 'agent', 'agent.crt.pem'),
      ]);
      expect(verify.code).toBe(0);
    } finally {
      await sim.stop();
      await rm(work, { recursive: true, force: true });
    }
  });
});
