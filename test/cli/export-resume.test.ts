// Issue #19, "resume that resumes": an export started without --transfer and killed with SIGKILL
// is finished by the command it printed before its first byte, which sends only what is missing.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { startSimulator } from '../peers/vsphere/simulator.ts';
import { exportSite, initParties, odt, repoRoot, run } from '../support/cli.ts';

/** The words of a command line as a POSIX shell reads them (bare words and '…' quoting, as odt prints). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  const re = /\s*((?:[^\s']+|'[^']*')+)/g;
  for (const m of line.matchAll(re)) words.push(m[1]!.replace(/'([^']*)'/g, '$1'));
  return words;
}

describe('resume after SIGKILL with the printed command', () => {
  it('prints the command with its --transfer before the first byte; rerun, it sends only the missing disks', async () => {
    const sim = await startSimulator({
      binary: inject('vcsimBinary'),
      diskSize: '160MiB',
      disksPerVm: 3,
      diskContent: 'sparse',
      apps: 0,
      templates: 0,
    });
    const work = await mkdtemp(join(tmpdir(), 'odt-resume-cmd-'));
    try {
      const recipient = await initParties(work);
      const nas = join(work, 'nas');
      await mkdir(nas);
      expect((await odt(['nas', 'init', nas, '--plain-folder', '--name', 'resume-box'])).code).toBe(0);
      // As a person types it: no --transfer.
      const args = [
        'export',
        ...['--vcenter', sim.url, '--username', sim.username, '--item', 'DC0_H0_VM1'],
        ...['--nas', nas, '--recipient', recipient, '--site', exportSite],
        ...['--agent-dir', join(work, 'agent'), '--parallel', '1'],
      ];
      const env = { ...process.env, ODT_VCENTER_PASSWORD: sim.password };
      const odtBin = join(repoRoot, 'bin', 'odt.mjs');

      const first = spawn(process.execPath, [odtBin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      first.stdout.on('data', (c) => {
        out += String(c);
      });
      const killed = new Promise<void>((resolve, reject) => {
        const poll = setInterval(async () => {
          const m = /^transfer (tr-\S+) /m.exec(out);
          if (!m) return;
          const item = join(nas, m[1]!, 'item-1');
          const done = await stat(join(item, 'DC0_H0_VM1-disk-0.vmdk.age')).catch(() => undefined);
          const partial = await stat(join(item, 'DC0_H0_VM1-disk-1.vmdk.age.partial')).catch(() => undefined);
          if (done && partial && partial.size > 1024 * 1024) {
            clearInterval(poll);
            first.kill('SIGKILL');
          }
        }, 5);
        first.on('exit', (_code, signal) => {
          clearInterval(poll);
          if (signal === 'SIGKILL') resolve();
          else reject(new Error(`the first run ended without the kill: ${out}`));
        });
      });
      await killed;

      // What the person saw before the kill: the transfer and the exact command that resumes it.
      const line = /^transfer (tr-\d{8}-[0-9a-f]{6}) \(if it stops, resume it with: (odt .*)\)$/m.exec(out);
      expect(line, out).not.toBeNull();
      const [, transfer, printed] = line!;
      const words = shellWords(printed!);
      expect(words.slice(0, 2)).toEqual(['odt', 'export']);
      expect(words.slice(-2)).toEqual(['--transfer', transfer]);
      expect(words.slice(1, -2)).toEqual(args);
      const item = join(nas, transfer!, 'item-1');
      const disk0 = await stat(join(item, 'DC0_H0_VM1-disk-0.vmdk.age'));

      // The printed command, run as printed: only the disks that were not complete are sent.
      await sim.clearNfcRequests();
      const second = await run(process.execPath, [odtBin, ...words.slice(1)], { env });
      expect(second.stderr).toBe('');
      expect(second.code).toBe(0);
      expect(second.stdout.toString()).toContain(
        `exported 1 items to ${join(nas, transfer!)} on NAS 'resume-box'`,
      );
      const sent = (await sim.nfcRequests()).map((r) => r.path).filter((p) => p.endsWith('.vmdk'));
      // The peer names a lease's disks disk-<n>.vmdk (test/peers/vsphere/vcsim/front.go).
      expect(sent.map((p) => p.split('/').pop()).sort()).toEqual(['disk-1.vmdk', 'disk-2.vmdk']);
      // The complete disk was kept as it was; nothing half-written is left.
      const disk0After = await stat(join(item, 'DC0_H0_VM1-disk-0.vmdk.age'));
      expect(disk0After.ino).toBe(disk0.ino);
      expect(disk0After.mtimeMs).toBe(disk0.mtimeMs);
      expect((await readdir(item)).filter((f) => f.endsWith('.partial'))).toEqual([]);
      const verify = await odt([
        ...['verify', '--nas', nas, '--transfer', transfer!],
        ...[
          '--identity',
          join(work, 'node', 'identity.txt'),
          '--agent-cert',
          join(work, 'agent', 'agent.crt.pem'),
        ],
      ]);
      expect(verify.code).toBe(0);
    } finally {
      await sim.stop();
      await rm(work, { recursive: true, force: true });
    }
  });
});
