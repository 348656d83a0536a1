import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { formatReport } from '../../local/sandbox/report.ts';
import { runSandbox } from '../../local/sandbox/run-sandbox.ts';
import { repoRoot, run } from '../support/cli.ts';

// Issue 8: the sandbox runs a whole transfer, every item ends powered on in the fake vCD and the
// printed report says so; a newcomer can open its package by hand following the steps in docs/package-format.md
// literally.
describe('odt sandbox', () => {
  it('moves a VM with two disks, a template and a vApp from request to wipe, and the steps of docs/package-format.md open the package', async () => {
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
        ['template', 'powered-on'],
        ['vapp', 'powered-on'],
      ]);
      // Every item ends powered on in the fake vCD itself: the VM and the vApp as vApps, the
      // template in its catalog and as a vApp instantiated from it; each connected to acme-net.
      expect(r.vcd.templates).toEqual([{ name: 'DC0_C0_TPL0', catalog: 'acme-catalog' }]);
      expect([...r.vcd.vapps].sort((a, b) => a.name.localeCompare(b.name))).toEqual(
        ['DC0_C0_APP0', 'DC0_C0_TPL0', 'DC0_H0_VM1'].map((name) => ({
          name,
          deployed: true,
          poweredOn: true,
          connected: true,
        })),
      );
      // The printed report says so, item by item.
      const report = formatReport(r);
      const row = (id: string) => report.split('\n').find((l) => l.trimStart().startsWith(`${id} `)) ?? '';
      expect(row('item-1')).toMatch(/DC0_H0_VM1\s+vApp in acme-vdc\s+powered on\s/);
      expect(row('item-2')).toMatch(
        /DC0_C0_TPL0\s+catalog acme-catalog, and a vApp in acme-vdc\s+powered on\s/,
      );
      expect(row('item-3')).toMatch(/DC0_C0_APP0\s+vApp in acme-vdc\s+powered on\s/);
      // And what each is called in vCenter and in vCloud Director (#17), as the ODT node reported.
      const id = r.transfer.id;
      expect(row('item-1')).toContain(`vCenter 'DC0_H0_VM1 (${id})'; vCD 'DC0_H0_VM1'`);
      expect(row('item-2')).toContain(`vCenter 'DC0_C0_TPL0 (${id})'; vCD 'DC0_C0_TPL0'`);
      expect(row('item-3')).toContain(
        `vCenter 'DC0_C0_APP0_VM0 (${id})', 'DC0_C0_APP0_VM1 (${id})'; vCD 'DC0_C0_APP0'`,
      );
      expect(report).toContain(`Report for ${r.transfer.id} (wiped)`);
      // Measured, not constants: bytes are what the agents reported for the disks they moved.
      const disks = (2 + 2 + 4) * 4 * 1024 * 1024;
      expect(r.bytes).toBeGreaterThanOrEqual(disks);
      expect(r.bytes).toBeLessThan(disks + 200_000); // plus descriptors and manifests
      expect(r.exportSeconds).toBeGreaterThan(0);
      expect(printed).toContain('transfer → completed');

      const doc = await readFile(join(repoRoot, 'docs', 'package-format.md'), 'utf8');
      const at = doc.indexOf('## Opening a package from the sandbox by hand');
      expect(at).toBeGreaterThanOrEqual(0);
      const section = doc.slice(at);
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
