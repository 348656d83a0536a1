import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { verifyWipeStatement } from '../../agent/identity/transfer-key.ts';
import { recipientStatementSchema, statementOf } from '../../core/model/transfer-key.ts';
import { formatReport } from '../../local/sandbox/report.ts';
import { runSandbox } from '../../local/sandbox/run-sandbox.ts';
import { identityFiles } from '../support/age-identities.ts';
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
      // Before the wipe (as after `npm start -- --keep-key`): the transfer's own key opens its NAS,
      // by the steps of docs/package-format.md, literally.
      let byHand: Awaited<ReturnType<typeof run>> | undefined;
      let keyFile = '';
      const r = await runSandbox({
        dir: join(work, '.odt', 'sandbox'),
        diskSize: '4MiB',
        out,
        beforeWipe: async (t, dir) => {
          keyFile = join(dir, 'odt-node', 'transfer-keys', `${t.id}.txt`);
          expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
          const doc = await readFile(join(repoRoot, 'docs', 'package-format.md'), 'utf8');
          const at = doc.indexOf('## Opening a package from the sandbox by hand');
          expect(at).toBeGreaterThanOrEqual(0);
          const block = /```sh\n([\s\S]*?)```/.exec(doc.slice(at))?.[1];
          expect(block).toBeTruthy();
          // The steps as a reader runs them: not through the caller's BASH_ENV start-up file (one
          // that reads PS1 fails under -u, as /etc/bash.bashrc does).
          const { BASH_ENV: _, ...env } = process.env;
          byHand = await run('bash', ['-euo', 'pipefail', '-c', block!], { cwd: work, env });
        },
      });
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

      const steps = byHand!;
      expect(steps.stderr).toBe('');
      expect(steps.code).toBe(0);
      const text = steps.stdout.toString();
      expect(text).toMatch(/DC0_H0_VM1-disk-0\.vmdk: OK/);
      expect(text).toMatch(/DC0_H0_VM1-disk-1\.vmdk: OK/);
      expect(text).toMatch(/DC0_H0_VM1\.ovf: OK/);
      expect(text).toContain('DC0_H0_VM1.ovf');

      // The package was encrypted to the transfer's own key, signed by the ODT node (#18)...
      const t = r.transfer;
      const made = statementOf(recipientStatementSchema, t.key!, 'key');
      const manifest = JSON.parse(await readFile(join(r.dir, 'nas', t.id, 'transfer.json'), 'utf8'));
      expect(JSON.stringify(manifest)).toContain(made.recipient);
      // ...which the wipe destroyed, with a statement the node signed: checked with its certificate.
      await expect(stat(keyFile)).rejects.toMatchObject({ code: 'ENOENT' });
      const entry = t.history.at(-1)!;
      const [payload, signature] = entry.note!.split('signed statement ')[1]!.split('.');
      const nodeCert = await readFile(join(r.dir, 'odt-node-agent', 'agent.crt.pem'), 'utf8');
      const wipe = verifyWipeStatement({ payload: payload!, signature: signature! }, nodeCert);
      expect(wipe).toMatchObject({
        transferId: t.id,
        keyFingerprint: made.keyFingerprint,
        recipient: made.recipient,
        nasEraseConfirmedBy: 'bob',
        node: made.node,
      });
      expect(report).toContain(`wipe:           key destroyed: ${made.keyFingerprint}`);
      // After the wipe the `age` CLI opens nothing on the NAS with any identity the node (or anyone
      // on this machine's sandbox) still holds: its long-term identity included.
      const held = await identityFiles(r.dir, ['odt-node', 'odt-node-agent', 'export-agent', 'state']);
      expect(held.map((f) => f.slice(r.dir.length + 1))).toContain(join('odt-node', 'identity.txt'));
      const sealed = (await readdir(join(r.dir, 'nas', t.id, 'item-1'))).filter((f) =>
        f.endsWith('.ovf.age'),
      );
      expect(sealed).toHaveLength(1);
      for (const identity of held) {
        const opened = await run('age', [
          '-d',
          '-i',
          identity,
          join(r.dir, 'nas', t.id, 'item-1', sealed[0]!),
        ]);
        expect(opened.code, `age -d -i ${identity}`).not.toBe(0);
        expect(opened.stderr).toMatch(/no identity matched any of the recipients/);
      }
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
