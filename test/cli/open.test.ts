import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type RunningSimulator, startSimulator } from '../peers/vsphere/simulator.ts';
import { exportItems, initParties, odt, run } from '../support/cli.ts';

// Issue #19: `odt open` verifies and decrypts one item of a transfer and streams it into a
// standard OVA: descriptor first, then the .mf, then the disks in the descriptor's References
// order. Checked with the tools a person has: tar and sha256sum.
describe('odt open: one item as a standard OVA', () => {
  let customer: RunningSimulator;
  let work: string;
  let nas: string;
  const transfer = 'tr-open-1';

  beforeAll(async () => {
    customer = await startSimulator({ binary: inject('vcsimBinary'), disksPerVm: 2, diskSize: '3MiB' });
    work = await mkdtemp(join(tmpdir(), 'odt-open-'));
    nas = join(work, 'nas');
    const recipient = await initParties(work);
    await exportItems(customer, work, recipient, ['DC0_H0_VM1'], nas, transfer);
  });
  afterAll(async () => {
    await customer?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const openArgs = (out: string, root = nas) => [
    'open',
    ...['--nas', root, '--transfer', transfer, '--item', 'item-1'],
    ...[
      '--identity',
      join(work, 'node', 'identity.txt'),
      '--agent-cert',
      join(work, 'agent', 'agent.crt.pem'),
    ],
    ...['--out', out],
  ];

  it('writes the OVA in OVA order, and the .mf inside checks out with sha256sum -c', async () => {
    const out = join(work, 'vm1.ova');
    const r = await odt(openArgs(out));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);

    const listing = await run('tar', ['-tvf', out]);
    expect(listing.code).toBe(0);
    const names = listing.stdout
      .toString()
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/).at(-1));
    // The descriptor's References order of the disks, as the descriptor gives it.
    const extract = join(work, 'extract');
    await mkdir(extract);
    expect((await run('tar', ['-xf', out, '-C', extract])).code).toBe(0);
    const descriptor = await readFile(join(extract, 'DC0_H0_VM1.ovf'), 'utf8');
    const referenced = [...descriptor.matchAll(/ovf:href="([^"]+)"/g)].map((m) => m[1]);
    expect(referenced).toHaveLength(2);
    expect(names).toEqual(['DC0_H0_VM1.ovf', 'DC0_H0_VM1.mf', ...referenced]);
    expect(r.out).toContain(`${out}: item-1 (DC0_H0_VM1) as an OVA, 4 files`);

    // The .mf is OpenSSL's `SHA256(name)= hex`, one of the forms GNU sha256sum -c reads as it is.
    const mf = await readFile(join(extract, 'DC0_H0_VM1.mf'), 'utf8');
    expect(mf).toMatch(/^SHA256\(DC0_H0_VM1\.ovf\)= [0-9a-f]{64}$/m);
    const check = await run('sha256sum', ['-c', 'DC0_H0_VM1.mf'], { cwd: extract });
    expect(check.stderr).toBe('');
    expect(check.code).toBe(0);
    expect(check.stdout.toString().trim().split('\n')).toEqual(
      ['DC0_H0_VM1.ovf', ...referenced].map((n) => `${n}: OK`),
    );
  });

  it('never overwrites an existing --out', async () => {
    const out = join(work, 'taken.ova');
    await writeFile(out, 'mine');
    const r = await odt(openArgs(out));
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${out} exists; odt open never overwrites a file`);
    expect(await readFile(out, 'utf8')).toBe('mine');
  });

  it('needs the enrolled agent’s certificate, as odt verify does', async () => {
    const args = openArgs(join(work, 'unpinned.ova')).filter(
      (a, i, all) => a !== '--agent-cert' && all[i - 1] !== '--agent-cert',
    );
    const r = await odt(args);
    expect(r.code).toBe(2);
    expect(r.err).toContain('[SIGNER_NOT_PINNED]');
  });

  it('a tampered disk fails, and no OVA (nor a partial one) is left', async () => {
    const copy = join(work, 'tampered-nas');
    await run('cp', ['-r', nas, copy]);
    const manifest = JSON.parse(await readFile(join(copy, transfer, 'transfer.json'), 'utf8')) as {
      items: { files: { path: string; role: string; encryptedSize: number }[] }[];
    };
    const disk = manifest.items[0]!.files.filter((f) => f.role === 'disk').at(-1)!;
    // One byte in the middle of the last disk's ciphertext: its chunk no longer authenticates.
    const handle = await open(join(copy, transfer, disk.path), 'r+');
    const at = Math.floor(disk.encryptedSize / 2);
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, at);
    byte[0] = byte[0]! ^ 0xff;
    await handle.write(byte, 0, 1, at);
    await handle.close();

    const outDir = join(work, 'tampered-out');
    await mkdir(outDir);
    const out = join(outDir, 'vm1.ova');
    const r = await odt(openArgs(out, copy));
    expect(r.code).not.toBe(0);
    expect(r.err).toContain(disk.path);
    expect(await readdir(outDir)).toEqual([]);
  });
});
