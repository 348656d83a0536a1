import { createHash, randomBytes } from 'node:crypto';
import { truncateSync } from 'node:fs';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { canDropBehind } from '../../../agent/package/drop-behind.ts';
import { type RunningSimulator, startSimulator } from '../../peers/vsphere/simulator.ts';
import { exportItems, importArgs as importArgsOf, initParties, odt } from '../../support/cli.ts';
import { cachedBytes, dropsPages, inPages } from '../../support/page-cache.ts';
import { connectTo } from '../../support/vsphere.ts';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function uploadedFiles(sim: RunningSimulator): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const lease of await readdir(sim.uploadsDir).catch(() => [])) {
    for (const f of await readdir(join(sim.uploadsDir, lease))) {
      out.set(`${lease}/${f}`, sha256(await readFile(join(sim.uploadsDir, lease, f))));
    }
  }
  return out;
}

/** The disks of a transfer on the NAS (their .age files) and their sizes, from its transfer.json. */
async function diskFiles(root: string): Promise<{ path: string; size: number }[]> {
  const manifest = JSON.parse(await readFile(join(root, 'transfer.json'), 'utf8')) as {
    items: { files: { path: string; role: string; encryptedSize: number }[] }[];
  };
  return manifest.items.flatMap((i) =>
    i.files
      .filter((f) => f.role === 'disk')
      .map((f) => ({ path: join(root, f.path), size: f.encryptedSize })),
  );
}

// Issue 4: the ODT node verifies, decrypts and imports into the provider's vCenter.
describe('odt import into the provider vCenter', () => {
  let customer: RunningSimulator;
  let provider: RunningSimulator;
  let work: string;
  let nas: string;
  const transfer = 'tr-import-1';

  const importArgs = (sim: RunningSimulator, where = nas, state = join(work, 'state')) =>
    importArgsOf(sim, work, where, transfer, state);

  beforeAll(async () => {
    customer = await startSimulator({ binary: inject('vcsimBinary'), diskSize: 1024 * 1024 + 7 });
    provider = await startSimulator({ binary: inject('vcsimBinary'), apps: 0, templates: 0 });
    work = await mkdtemp(join(tmpdir(), 'odt-import-'));
    nas = join(work, 'nas');
    const recipient = await initParties(work);
    await exportItems(customer, work, recipient, ['DC0_H0_VM1', 'DC0_C0_TPL0', 'DC0_C0_APP0'], nas, transfer);
  });
  afterAll(async () => {
    await customer?.stop();
    await provider?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('imports the VM, the template and the vApp members: the exact disk bytes arrive, NICs on VM Network, the template stays a template, and no disk is left in the page cache', async () => {
    const disks = await diskFiles(join(nas, transfer));
    for (const d of disks) await readFile(d.path);
    expect(await Promise.all(disks.map((d) => cachedBytes(d.path)))).toEqual(
      disks.map((d) => inPages(d.size)),
    );
    const r = await odt(importArgs(provider), { ODT_VCENTER_PASSWORD: provider.password });
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain(`item-1 DC0_H0_VM1: imported as 'DC0_H0_VM1 (${transfer})'`);
    const source = await customer.readInventory();
    const expected = [
      ...source.vms
        .filter((v) => ['DC0_H0_VM1', 'DC0_C0_TPL0', 'DC0_C0_APP0_VM0', 'DC0_C0_APP0_VM1'].includes(v.name))
        .flatMap((v) => v.disks.map((d) => d.sha256)),
    ].sort();
    expect([...(await uploadedFiles(provider)).values()].sort()).toEqual(expected);

    const inv = await odt(
      ['inventory', '--vcenter', provider.url, '--username', provider.username, '--json'],
      { ODT_VCENTER_PASSWORD: provider.password },
    );
    const items = JSON.parse(inv.out) as {
      name: string;
      kind: string;
      networks: string[];
      powerState: string;
    }[];
    const vm = items.find((i) => i.name === `DC0_H0_VM1 (${transfer})`)!;
    const tpl = items.find((i) => i.name === `DC0_C0_TPL0 (${transfer})`)!;
    expect(vm).toMatchObject({ kind: 'vm', networks: ['VM Network'], powerState: 'poweredOff' });
    // A vApp arrives as its member VMs; vCloud Director puts them back into one vApp.
    expect(r.out).toContain(`item-3 DC0_C0_APP0: imported as 'DC0_C0_APP0 (${transfer})'`);
    for (const member of ['DC0_C0_APP0_VM0', 'DC0_C0_APP0_VM1']) {
      expect(
        items.find((i) => i.name === `${member} (${transfer})`),
        member,
      ).toMatchObject({ kind: 'vm', networks: ['VM Network'] });
    }
    expect(tpl).toMatchObject({ kind: 'template' });
    // Each disk was read for the last time as it uploaded: none of it is left in the page cache
    // (with the addon, and where the NAS folder is not tmpfs; without the addon Node.js cannot
    // tell the kernel).
    const drops = canDropBehind && (await dropsPages(nas));
    expect(await Promise.all(disks.map((d) => cachedBytes(d.path)))).toEqual(
      disks.map((d) => (drops ? 0 : inPages(d.size))),
    );
  });

  it('names a disk that shrinks while it is being decrypted a size change, not a decryption failure', async () => {
    const { verifyTransfer } = await import('../../../agent/package/verify.ts');
    const { parseIdentityFile } = await import('../../../agent/package/age/keys.ts');
    const copy = join(work, 'shrinking');
    await cp(nas, copy, { recursive: true });
    const root = join(copy, transfer);
    const [disk] = await diskFiles(root);
    const identities = parseIdentityFile(await readFile(join(work, 'node', 'identity.txt'), 'utf8'));
    let cut = false;
    const report = await verifyTransfer({
      root,
      identities,
      decrypt: 'all',
      agentCertPem: await readFile(join(work, 'agent', 'agent.crt.pem'), 'utf8'),
      onProgress: (p) => {
        // After the first 1 MiB read of the file, its second half goes (a NAS being written to).
        if (!cut && join(root, p.file) === disk!.path && p.bytes > 0 && !p.done) {
          cut = true;
          truncateSync(disk!.path, Math.floor(disk!.size / 2));
        }
      },
    });
    expect(cut).toBe(true);
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([
      {
        file: disk!.path.slice(root.length + 1),
        code: 'SIZE_MISMATCH',
        message: expect.stringMatching(/changed while it was being checked: it now has \d+ bytes/),
      },
    ]);
  });

  it('verification leaves the disks in the page cache for the upload, unless told not to or they are large against memory', async () => {
    const { keepsInCache, verifyTransfer } = await import('../../../agent/package/verify.ts');
    const root = join(nas, transfer);
    const disks = await diskFiles(root);
    const cached = () => Promise.all(disks.map((d) => cachedBytes(d.path)));
    const agentCertPem = await readFile(join(work, 'agent', 'agent.crt.pem'), 'utf8');
    for (const d of disks) await readFile(d.path);
    expect((await verifyTransfer({ root, agentCertPem })).ok).toBe(true);
    expect(await cached()).toEqual(disks.map((d) => inPages(d.size)));
    expect((await verifyTransfer({ root, agentCertPem, keepInCache: false })).ok).toBe(true);
    const drops = canDropBehind && (await dropsPages(nas));
    expect(await cached()).toEqual(disks.map((d) => (drops ? 0 : inPages(d.size))));
    // The default: kept up to a quarter of the machine's memory.
    expect(keepsInCache(4 * 2 ** 30, 16 * 2 ** 30)).toBe(true);
    expect(keepsInCache(4 * 2 ** 30 + 1, 16 * 2 ** 30)).toBe(false);
  });

  it('skips items already imported on a rerun', async () => {
    const before = await uploadedFiles(provider);
    const r = await odt(importArgs(provider), { ODT_VCENTER_PASSWORD: provider.password });
    expect(r.code).toBe(0);
    expect(r.out).toContain('item-1 DC0_H0_VM1: already imported');
    expect(r.out).toContain('item-2 DC0_C0_TPL0: already imported');
    expect(r.out).toContain('item-3 DC0_C0_APP0: already imported');
    expect(await uploadedFiles(provider)).toEqual(before);
  });

  it('reports the check of every file (--json verify events): the small files before the first upload, each disk before its last bytes go (#20)', async () => {
    const target = await startSimulator({ binary: inject('vcsimBinary'), apps: 0, templates: 0 });
    try {
      const r = await odt([...importArgs(target, nas, join(work, 'state-json')), '--json'], {
        ODT_VCENTER_PASSWORD: target.password,
      });
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      const events = r.out
        .trim()
        .split('\n')
        .map(
          (l) =>
            JSON.parse(l) as {
              event: string;
              item: string;
              file: string;
              bytes: number;
              total: number;
              done: boolean;
            },
        );
      const manifest = JSON.parse(await readFile(join(nas, transfer, 'transfer.json'), 'utf8')) as {
        items: { id: string; files: { path: string; name: string; role: string; encryptedSize: number }[] }[];
      };
      const files = manifest.items.flatMap((i) => i.files.map((f) => ({ ...f, item: i.id })));
      const checked = events.filter((e) => e.event === 'verify' && e.done);
      expect(
        checked
          .map((e) => ({ item: e.item, path: e.file, bytes: e.bytes }))
          .sort((a, b) => a.path.localeCompare(b.path)),
      ).toEqual(
        files
          .map((f) => ({ item: f.item, path: f.path, bytes: f.encryptedSize }))
          .sort((a, b) => a.path.localeCompare(b.path)),
      );
      const firstUpload = events.findIndex((e) => e.event === 'progress');
      expect(firstUpload).toBeGreaterThan(-1);
      const doneAt = (path: string) =>
        events.findIndex((e) => e.event === 'verify' && e.done && e.file === path);
      for (const f of files.filter((f) => f.role !== 'disk'))
        expect(doneAt(f.path)).toBeLessThan(firstUpload);
      // One pass: a disk's segments are checked as it uploads, all of them before its last bytes.
      for (const f of files.filter((f) => f.role === 'disk')) {
        const sent = events.findIndex(
          (e) => e.event === 'progress' && e.item === f.item && e.file === f.name && e.bytes === e.total,
        );
        expect(sent, f.path).toBeGreaterThan(-1);
        expect(doneAt(f.path), f.path).toBeLessThan(sent);
      }
    } finally {
      await target.stop();
    }
  });

  it('a tampered disk: no VM is left, nothing of it reaches vCenter, and its file and bytes are named (#20)', async () => {
    const damaged = join(work, 'damaged');
    await cp(nas, damaged, { recursive: true });
    const file = join(damaged, transfer, 'item-1', 'DC0_H0_VM1-disk-0.vmdk.age');
    const bytes = await readFile(file);
    bytes[100]! ^= 0xff;
    await writeFile(file, bytes);
    const manifest = JSON.parse(await readFile(join(nas, transfer, 'transfer.json'), 'utf8'));
    const disk0 = manifest.items[0].files.find((f: { name: string }) => f.name === 'DC0_H0_VM1-disk-0.vmdk');
    const source = (await customer.readInventory()).vms.flatMap((v) => v.disks);
    const plain = await readFile(source.find((d) => d.sha256 === disk0.sha256)!.path);
    const target = await startSimulator({ binary: inject('vcsimBinary'), apps: 0, templates: 0 });
    try {
      const r = await odt(importArgs(target, damaged, join(work, 'state-damaged')), {
        ODT_VCENTER_PASSWORD: target.password,
      });
      expect(r.code).toBe(3);
      expect(r.err).toMatch(
        new RegExp(
          `item-1 \\(DC0_H0_VM1\\) failed: item-1/DC0_H0_VM1-disk-0\\.vmdk\\.age: bytes 0-${disk0.encryptedSize - 1} \\(segment 1 of 1\\) do not hash to the signed manifest's SHA-256: .*Nothing of them was sent`,
        ),
      );
      // The other items checked out segment by segment and were imported.
      expect(r.out).toContain(`item-2 DC0_C0_TPL0: imported as`);
      const client = await connectTo(target);
      try {
        const vms = await client.listByType(['VirtualMachine'], ['name']);
        expect(vms.map((v) => v.props.get('name')?.text)).not.toContain(`DC0_H0_VM1 (${transfer})`);
      } finally {
        await client.logout();
      }
      // Not one byte of the tampered disk reached the simulator.
      for (const lease of await readdir(target.uploadsDir)) {
        for (const f of await readdir(join(target.uploadsDir, lease))) {
          const got = await readFile(join(target.uploadsDir, lease, f));
          expect(got.length > 0 && got.equals(plain.subarray(0, got.length)), `${lease}/${f}`).toBe(false);
        }
      }
    } finally {
      await target.stop();
    }
  });

  it('with --verify-first, imports nothing from a tampered NAS and names the problem', async () => {
    const damaged = join(work, 'damaged-first');
    await cp(nas, damaged, { recursive: true });
    const file = join(damaged, transfer, 'item-1', 'DC0_H0_VM1-disk-0.vmdk.age');
    const bytes = await readFile(file);
    bytes[100]! ^= 0xff;
    await writeFile(file, bytes);
    const target = await startSimulator({ binary: inject('vcsimBinary'), apps: 0, templates: 0 });
    try {
      const r = await odt(
        [...importArgs(target, damaged, join(work, 'state-damaged-first')), '--verify-first'],
        {
          ODT_VCENTER_PASSWORD: target.password,
        },
      );
      expect(r.code).toBe(4);
      expect(r.err).toContain('did not verify; nothing was imported');
      expect(r.err).toContain('item-1/DC0_H0_VM1-disk-0.vmdk.age');
      expect(await uploadedFiles(target)).toEqual(new Map());
    } finally {
      await target.stop();
    }
  });

  it('leaves no half-imported VM when the server breaks the upload', async () => {
    const flaky = await startSimulator({
      binary: inject('vcsimBinary'),
      apps: 0,
      templates: 0,
      abortAfterBytes: 1536 * 1024,
    });
    try {
      const state = join(work, 'state-flaky');
      const r = await odt(importArgs(flaky, nas, state), { ODT_VCENTER_PASSWORD: flaky.password });
      expect(r.code).not.toBe(0);
      expect(r.err).toMatch(/item-1 \(DC0_H0_VM1\) failed: .*(lease|upload)/i);
      const inv = await odt(['inventory', '--vcenter', flaky.url, '--username', flaky.username, '--json'], {
        ODT_VCENTER_PASSWORD: flaky.password,
      });
      const names = (JSON.parse(inv.out) as { name: string }[]).map((i) => i.name);
      expect(names).not.toContain(`DC0_H0_VM1 (${transfer})`);
    } finally {
      await flaky.stop();
    }
  });

  it('fails at once and keeps no VM when a file changes on the NAS after verification', async () => {
    const { importItem } = await import('../../../agent/import/import-item.ts');
    const { ImportJournal } = await import('../../../agent/import/import-journal.ts');
    const { verifyTransfer } = await import('../../../agent/package/verify.ts');
    const { resolvePlacement } = await import('../../../agent/vsphere/placement.ts');
    const { parseIdentityFile } = await import('../../../agent/package/age/keys.ts');
    const target = await startSimulator({ binary: inject('vcsimBinary'), apps: 0, templates: 0 });
    const changed = join(work, 'changed');
    await cp(nas, changed, { recursive: true });
    const client = await connectTo(target);
    try {
      const manifest = JSON.parse(await readFile(join(changed, transfer, 'transfer.json'), 'utf8'));
      const identities = parseIdentityFile(await readFile(join(work, 'node', 'identity.txt'), 'utf8'));
      // Verified first (the descriptor comes out of that), then a disk changes.
      const verified = await verifyTransfer({
        root: join(changed, transfer),
        identities,
        decrypt: 'small',
        agentCertPem: await readFile(join(work, 'agent', 'agent.crt.pem'), 'utf8'),
      });
      expect(verified.ok).toBe(true);
      const descriptorPath = manifest.items[0].files.find(
        (f: { role: string }) => f.role === 'descriptor',
      ).path;
      const file = join(changed, transfer, 'item-1', 'DC0_H0_VM1-disk-1.vmdk.age');
      const bytes = await readFile(file);
      bytes[bytes.length - 5000]! ^= 0x55; // inside the last payload chunk: decryption fails late
      await writeFile(file, bytes);
      await expect(
        importItem({
          client,
          placement: await resolvePlacement(client),
          root: join(changed, transfer),
          transferId: transfer,
          item: manifest.items[0],
          identities,
          journal: await ImportJournal.open(join(work, 'state-changed'), transfer),
          descriptor: verified.opened!.get(descriptorPath)!.toString('utf8'),
          parallel: 1,
        }),
      ).rejects.toThrow(/AGE_AUTH_FAILED|authenticat|changed on the NAS/i);
      const vms = await client.listByType(['VirtualMachine'], ['name']);
      expect(vms.map((v) => v.props.get('name')?.text)).not.toContain(`DC0_H0_VM1 (${transfer})`);
    } finally {
      await client.logout();
      await target.stop();
    }
  });

  it.each([
    ['caught by its verified head', true],
    ['without its head: caught by its plaintext SHA-256 before its last byte goes', false],
  ])(
    'refuses a disk replaced after verification by another valid encryption to the node (#4), keeping no VM: %s',
    async (_name, withHeads) => {
      const { importItem } = await import('../../../agent/import/import-item.ts');
      const { ImportJournal } = await import('../../../agent/import/import-journal.ts');
      const { verifyTransfer } = await import('../../../agent/package/verify.ts');
      const { createEncryptStream } = await import('../../../agent/package/age/encrypt.ts');
      const { parseIdentityFile, recipientFromIdentity } = await import('../../../agent/package/age/keys.ts');
      const { resolvePlacement } = await import('../../../agent/vsphere/placement.ts');
      const target = await startSimulator({ binary: inject('vcsimBinary'), apps: 0, templates: 0 });
      const replaced = join(work, `replaced-${withHeads}`);
      await cp(nas, replaced, { recursive: true });
      const root = join(replaced, transfer);
      const identities = parseIdentityFile(await readFile(join(work, 'node', 'identity.txt'), 'utf8'));
      const report = await verifyTransfer({
        root,
        identities,
        decrypt: 'small',
        agentCertPem: await readFile(join(work, 'agent', 'agent.crt.pem'), 'utf8'),
      });
      expect(report.ok).toBe(true);
      const item = report.manifest!.items[0]!;
      const disk = item.files.find((f) => f.role === 'disk')!;
      expect(report.heads?.get(disk.path)).toBeDefined();
      // Anyone with the node's public key can write a valid age file of the same size.
      const other = randomBytes(disk.size);
      const sealed: Buffer[] = [];
      const enc = createEncryptStream([recipientFromIdentity(identities[0]!)]);
      enc.on('data', (c: Buffer) => sealed.push(c));
      enc.end(other);
      await new Promise((resolve) => enc.on('end', resolve));
      await writeFile(join(root, disk.path), Buffer.concat(sealed));
      const client = await connectTo(target);
      try {
        await expect(
          importItem({
            client,
            placement: await resolvePlacement(client),
            root,
            transferId: transfer,
            item,
            identities,
            journal: await ImportJournal.open(join(work, `state-replaced-${withHeads}`), transfer),
            descriptor: report
              .opened!.get(item.files.find((f) => f.role === 'descriptor')!.path)!
              .toString('utf8'),
            ...(withHeads ? { heads: report.heads! } : {}),
            parallel: 1,
          }),
        ).rejects.toThrow(/changed on the NAS after verification/);
        const vms = await client.listByType(['VirtualMachine'], ['name']);
        expect(vms.map((v) => v.props.get('name')?.text)).not.toContain(`${item.name} (${transfer})`);
        // Not one whole copy of it reached the simulator, not even into the aborted lease.
        expect([...(await uploadedFiles(target)).values()]).not.toContain(sha256(other));
      } finally {
        await client.logout();
        await target.stop();
      }
    },
  );
});
