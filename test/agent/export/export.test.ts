import { copyFile, mkdtemp, readdir, readFile, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type RunningSimulator, startSimulator } from '../../peers/vsphere/simulator.ts';
import { exportArgs, odt, run } from '../../support/cli.ts';
import { ageDecrypt, expectDisksDecrypt } from '../../support/disks.ts';

// Issue 3: export of a powered-off VM with two disks, a template and a vApp, checked with the
// standard tools (age, sha256sum) and `odt verify`; then every way a NAS can be damaged.
describe('odt export → age → odt verify', () => {
  let sim: RunningSimulator;
  let work: string;
  let recipient: string;
  let nas: string;
  const transfer = 'tr-export-1';
  const env = (): Record<string, string> => ({ ODT_VCENTER_PASSWORD: sim.password });

  beforeAll(async () => {
    // An odd disk size exercises a last age chunk shorter than 64 KiB.
    sim = await startSimulator({ binary: inject('vcsimBinary'), diskSize: 3 * 1024 * 1024 + 12345 });
    work = await mkdtemp(join(tmpdir(), 'odt-export-'));
    nas = join(work, 'nas');
    const node = await odt(['node', 'init', '--dir', join(work, 'node')]);
    expect(node.code).toBe(0);
    recipient = node.out.trim().split('\n').at(-1)!;
    expect((await odt(['agent', 'init', '--dir', join(work, 'agent')])).code).toBe(0);
    const res = await odt(
      exportArgs(sim, work, recipient, ['DC0_H0_VM1', 'DC0_C0_TPL0', 'DC0_C0_APP0'], nas, transfer),
      env(),
    );
    expect(res.err).toBe('');
    expect(res.code).toBe(0);
  });

  afterAll(async () => {
    await sim?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const decrypt = (file: string): Promise<Buffer> => ageDecrypt(work, file);

  it('writes disks that the age CLI decrypts to the exact bytes of the simulator disk files', async () => {
    await expectDisksDecrypt(sim, work, join(nas, transfer, 'item-1'), 'DC0_H0_VM1', 2);
  });

  it('packages the template and every disk of the vApp', async () => {
    const tpl = (await readdir(join(nas, transfer, 'item-2'))).filter((f) => f.endsWith('.age')).sort();
    expect(tpl).toEqual([
      'DC0_C0_TPL0-disk-0.vmdk.age',
      'DC0_C0_TPL0-disk-1.vmdk.age',
      'DC0_C0_TPL0.mf.age',
      'DC0_C0_TPL0.ovf.age',
    ]);
    const inventory = await sim.readInventory();
    const app = inventory.vApps.find((a) => a.name === 'DC0_C0_APP0')!;
    const members = inventory.vms.filter((v) => app.vms.includes(v.moref) || app.vms.includes(v.name));
    const diskCount = members.reduce((n, v) => n + v.disks.length, 0);
    expect(diskCount).toBeGreaterThan(0);
    const files = (await readdir(join(nas, transfer, 'item-3'))).filter((f) => f.endsWith('.vmdk.age'));
    expect(files).toHaveLength(diskCount);
    const expected = new Set(members.flatMap((v) => v.disks.map((d) => d.sha256)));
    for (const f of files) {
      const plain = await decrypt(join(nas, transfer, 'item-3', f));
      const sum = await run('sha256sum', [], { input: plain });
      expect(expected.has(sum.stdout.toString().split(' ')[0]!), f).toBe(true);
    }
  });

  it('writes an OVF manifest whose entries match sha256sum of the decrypted files', async () => {
    for (const [item, name] of [
      ['item-1', 'DC0_H0_VM1'],
      ['item-2', 'DC0_C0_TPL0'],
      ['item-3', 'DC0_C0_APP0'],
    ] as const) {
      const dir = join(work, 'plain', item);
      await rm(dir, { recursive: true, force: true });
      await run('mkdir', ['-p', dir]);
      for (const f of await readdir(join(nas, transfer, item))) {
        if (f.endsWith('.age'))
          await writeFile(join(dir, f.slice(0, -4)), await decrypt(join(nas, transfer, item, f)));
      }
      const mf = (await readFile(join(dir, `${name}.mf`), 'utf8')).trim().split('\n');
      expect(mf.length).toBeGreaterThanOrEqual(3);
      // `SHA256(file)= hex` is what ovftool writes; sha256sum checks the same pairs.
      const check = mf.map((l) => {
        const m = /^SHA256\((.+)\)= ([0-9a-f]{64})$/.exec(l)!;
        return `${m[2]}  ${m[1]}`;
      });
      const r = await run('sha256sum', ['-c', '-'], {
        input: Buffer.from(`${check.join('\n')}\n`),
        cwd: dir,
      });
      expect(r.stdout.toString()).not.toContain('FAILED');
      expect(r.code).toBe(0);
      const ovf = await readFile(join(dir, `${name}.ovf`), 'utf8');
      for (const f of await readdir(dir)) if (f.endsWith('.vmdk')) expect(ovf).toContain(`ovf:href="${f}"`);
    }
  });

  it('passes odt verify with and without the identity', async () => {
    const withKey = await odt([
      'verify',
      '--nas',
      nas,
      '--transfer',
      transfer,
      '--identity',
      join(work, 'node', 'identity.txt'),
      '--agent-cert',
      join(work, 'agent', 'agent.crt.pem'),
    ]);
    expect(withKey.err).toBe('');
    expect(withKey.code).toBe(0);
    expect(withKey.out).toContain('is intact (14 files, decrypted and checked, signer pinned)');
    const withoutKey = await odt([
      'verify',
      '--nas',
      nas,
      '--transfer',
      transfer,
      '--agent-cert',
      join(work, 'agent', 'agent.crt.pem'),
    ]);
    expect(withoutKey.err).toBe('');
    expect(withoutKey.code).toBe(0);
    expect(withoutKey.out).toContain('is intact (14 files, signer pinned)');
  });

  describe('odt verify fails, naming the file, when the NAS was damaged', () => {
    let n = 0;
    /** A fresh copy of the exported transfer to damage. */
    const copy = async (): Promise<{ nas: string; root: string }> => {
      const other = join(work, `damaged-${++n}`);
      await run('cp', ['-a', nas, other]);
      return { nas: other, root: join(other, transfer) };
    };
    const verify = (where: string, extra: string[] = []) =>
      odt([
        'verify',
        '--nas',
        where,
        '--transfer',
        transfer,
        '--identity',
        join(work, 'node', 'identity.txt'),
        '--agent-cert',
        join(work, 'agent', 'agent.crt.pem'),
        ...extra,
      ]);

    it('one flipped byte in an encrypted disk', async () => {
      const { nas: d, root } = await copy();
      const file = join(root, 'item-1', 'DC0_H0_VM1-disk-1.vmdk.age');
      const bytes = await readFile(file);
      bytes[bytes.length >> 1]! ^= 0x01;
      await writeFile(file, bytes);
      const r = await verify(d);
      expect(r.code).not.toBe(0);
      expect(r.err).toContain('item-1/DC0_H0_VM1-disk-1.vmdk.age');
      expect(r.err).toContain('DIGEST_MISMATCH');
      expect(r.out).toContain('FAIL item-1/DC0_H0_VM1-disk-1.vmdk.age');
    });

    it('a truncated file', async () => {
      const { nas: d, root } = await copy();
      await truncate(join(root, 'item-2', 'DC0_C0_TPL0-disk-0.vmdk.age'), 1000);
      const r = await verify(d);
      expect(r.code).not.toBe(0);
      expect(r.err).toMatch(/item-2\/DC0_C0_TPL0-disk-0\.vmdk\.age.*SIZE_MISMATCH/);
    });

    it('a file swapped between two items', async () => {
      const { nas: d, root } = await copy();
      const a = join(root, 'item-1', 'DC0_H0_VM1-disk-0.vmdk.age');
      const b = join(root, 'item-2', 'DC0_C0_TPL0-disk-0.vmdk.age');
      await rename(a, `${a}.x`);
      await copyFile(b, a);
      await rename(`${a}.x`, b);
      const r = await verify(d);
      expect(r.code).not.toBe(0);
      expect(r.err).toContain('item-1/DC0_H0_VM1-disk-0.vmdk.age');
      expect(r.err).toContain('item-2/DC0_C0_TPL0-disk-0.vmdk.age');
    });

    it('an edited transfer.json', async () => {
      const { nas: d, root } = await copy();
      const path = join(root, 'transfer.json');
      await writeFile(path, (await readFile(path, 'utf8')).replace('"DC0_H0_VM1"', '"DC0_H0_VMX"'));
      const r = await verify(d);
      expect(r.code).not.toBe(0);
      expect(r.err).toContain('transfer.json');
      expect(r.err).toContain('BAD_SIGNATURE');
    });

    it('a signature by another agent key', async () => {
      const { nas: d, root } = await copy();
      const other = join(work, 'other-agent');
      await odt(['agent', 'init', '--dir', other]);
      // The forger re-signs the manifest with its own key and leaves its certificate on the NAS.
      const { signManifest } = await import('../../../agent/package/transfer-manifest.ts');
      const key = await readFile(join(other, 'agent.key.pem'), 'utf8');
      await writeFile(
        join(root, 'transfer.json.sig'),
        signManifest(await readFile(join(root, 'transfer.json')), key),
      );
      await copyFile(join(other, 'agent.crt.pem'), join(root, 'agent.crt.pem'));
      const pinned = await verify(d);
      expect(pinned.code).not.toBe(0);
      expect(pinned.err).toContain('transfer.json');
      expect(pinned.err).toContain('BAD_SIGNATURE');
      // Nothing on the NAS is trusted without saying so (#18).
      const unpinned = await odt(['verify', '--nas', d, '--transfer', transfer]);
      expect(unpinned.code).not.toBe(0);
      expect(unpinned.err).toContain('[SIGNER_NOT_PINNED]');
      // Even trusting the certificate on the NAS (a lab), the manifest names the real agent's.
      const lab = await odt(['verify', '--nas', d, '--transfer', transfer, '--trust-nas-signer']);
      expect(lab.code).not.toBe(0);
      expect(lab.err).toContain('UNTRUSTED_SIGNER');
    });

    it('a missing file', async () => {
      const { nas: d, root } = await copy();
      await rm(join(root, 'item-3', 'DC0_C0_APP0.ovf.age'));
      const r = await verify(d);
      expect(r.code).not.toBe(0);
      expect(r.err).toMatch(/item-3\/DC0_C0_APP0\.ovf\.age.*MISSING/);
    });
  });
});
