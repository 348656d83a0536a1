import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runSandbox } from '../../local/sandbox/run-sandbox.ts';
import { repoRoot, run } from '../support/cli.ts';

// Issue 8: the sandbox runs a whole transfer; a newcomer can open its package by hand following
// the README's steps literally.
describe('odt sandbox', () => {
  it('moves a VM with two disks, a template and a vApp from request to wipe, and the README steps open the package', async () => {
    const work = await mkdtemp(join(tmpdir(), 'odt-sandbox-'));
    let printed = '';
    const out = new Writable({
      write(chunk, _enc, done) {
        printed += String(chunk);
        done();
      },
    });
    try {
      const r = await runSandbox({ dir: join(work, '.odt', 'sandbox'), diskSize: '4MiB', out });
      expect(r.transfer.phase).toBe('wiped');
      expect(r.transfer.items.map((i) => [i.kind, i.result.state])).toEqual([
        ['vm', 'powered-on'],
        ['template', 'onboarded'],
        ['vapp', 'powered-on'],
      ]);
      // Measured, not constants: bytes are what the agents reported for the disks they moved.
      const disks = (2 + 2 + 4) * 4 * 1024 * 1024;
      expect(r.bytes).toBeGreaterThanOrEqual(disks);
      expect(r.bytes).toBeLessThan(disks + 200_000); // plus descriptors and manifests
      expect(r.exportSeconds).toBeGreaterThan(0);
      expect(printed).toContain('transfer → completed');

      const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
      const section = readme.slice(readme.indexOf('### Open a package from the sandbox by hand'));
      const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
      expect(block).toBeTruthy();
      const steps = await run('bash', ['-euo', 'pipefail', '-c', block!], { cwd: work });
      expect(steps.stderr).toBe('');
      expect(steps.code).toBe(0);
      const text = steps.stdout.toString();
      expect(text).toMatch(/DC0_H0_VM1-disk-0\.vmdk: OK/);
      expect(text).toMatch(/DC0_H0_VM1-disk-1\.vmdk: OK/);
      expect(text).toMatch(/DC0_H0_VM1\.ovf: OK/);
      expect(text).toContain('DC0_H0_VM1.ovf');
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
