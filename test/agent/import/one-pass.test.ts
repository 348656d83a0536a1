import { truncateSync } from 'node:fs';
import { cp, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { importTransfer } from '../../../agent/import/import-transfer.ts';
import { findHeaderEnd } from '../../../agent/package/age/header.ts';
import { parseIdentityFile } from '../../../agent/package/age/keys.ts';
import { type RunningSimulator, startSimulator } from '../../peers/vsphere/simulator.ts';
import { exportItems, initParties } from '../../support/cli.ts';
import { resignWithSegments } from '../../support/digests.ts';
import { connectTo } from '../../support/vsphere.ts';

/** The segment size the package is re-signed with: 4 MiB, so each disk has four segments. */
const seg = 4 << 20;
/** age's payload chunks: 64 KiB of plaintext sealed with a 16-byte tag. */
const chunk = 64 * 1024;
const sealed = chunk + 16;

interface Disk {
  /** Path in the transfer folder. */
  path: string;
  encryptedSize: number;
  /** The decrypted disk, as the customer's vCenter served it. */
  plain: Buffer;
}

/** Bytes received by the device URLs of the leases that are not in `before`, per file. */
async function receivedSince(sim: RunningSimulator, before: ReadonlySet<string>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const lease of await readdir(sim.uploadsDir).catch(() => [])) {
    if (before.has(lease)) continue;
    for (const f of await readdir(join(sim.uploadsDir, lease)))
      out.push(await readFile(join(sim.uploadsDir, lease, f)));
  }
  return out;
}

// Issue 20: one pass over the NAS. Each 64 MiB (here 4 MiB) segment of a disk is checked against
// the signed manifest just before it is decrypted and sent; a segment that does not check out
// stops the upload before any byte of it goes, the lease is aborted and the VM removed.
describe('odt import in one pass: a tampered disk never reaches vCenter (#20)', () => {
  let customer: RunningSimulator;
  let provider: RunningSimulator;
  let work: string;
  let disks: Disk[];
  let n = 0;
  const transfer = 'tr-one-pass';

  beforeAll(async () => {
    // Two disks of 3 1/4 segments each: a first, two middle and a short last segment.
    const diskSize = Math.floor(3.25 * seg);
    customer = await startSimulator({ binary: inject('vcsimBinary'), apps: 0, templates: 0, diskSize });
    provider = await startSimulator({ binary: inject('vcsimBinary'), apps: 0, templates: 0 });
    work = await mkdtemp(join(tmpdir(), 'odt-one-pass-'));
    const recipient = await initParties(work);
    await exportItems(customer, work, recipient, ['DC0_H0_VM1'], join(work, 'nas'), transfer);
    // Re-signed by the agent with 4 MiB segments (the export writes 64 MiB ones).
    const root = join(work, 'nas', transfer);
    const m = await resignWithSegments(root, join(work, 'agent', 'agent.key.pem'), seg);
    const source = (await customer.readInventory()).vms.find((v) => v.name === 'DC0_H0_VM1')!;
    const files = m.items[0]!.files.filter((f) => f.role === 'disk').sort((a, b) =>
      a.path.localeCompare(b.path),
    );
    disks = await Promise.all(
      files.map(async (f) => ({
        path: f.path,
        encryptedSize: f.encryptedSize,
        plain: await readFile(source.disks.find((d) => d.sha256 === f.sha256)!.path),
      })),
    );
    expect(disks).toHaveLength(2);
    expect(disks.map((d) => Math.ceil(d.encryptedSize / seg))).toEqual([4, 4]);
  });
  afterAll(async () => {
    await customer?.stop();
    await provider?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /**
   * Plaintext bytes that come before segment `index` of `disk` whole: the chunks that end before
   * the segment starts. Anything past them at the peer would be a byte of the segment.
   */
  async function plainBefore(root: string, disk: Disk, index: number): Promise<number> {
    const head = (await readFile(join(root, disk.path))).subarray(0, 64 * 1024);
    const payloadStart = findHeaderEnd(head).end! + 16;
    return Math.max(0, Math.floor((index * seg - payloadStart) / sealed)) * chunk;
  }

  /** Imports a damaged copy of the NAS (one file at a time, disk 0 first); returns what happened. */
  async function importDamaged(damage: (root: string) => Promise<void>, during?: (root: string) => void) {
    const nas = join(work, `case-${++n}`);
    await cp(join(work, 'nas'), nas, { recursive: true });
    const root = join(nas, transfer);
    await damage(root);
    const before = new Set(await readdir(provider.uploadsDir).catch(() => []));
    const client = await connectTo(provider);
    try {
      const checked: string[] = [];
      const results = await importTransfer({
        client,
        nas,
        transferId: transfer,
        identities: parseIdentityFile(await readFile(join(work, 'node', 'identity.txt'), 'utf8')),
        agentCertPem: await readFile(join(work, 'agent', 'agent.crt.pem'), 'utf8'),
        stateDir: join(nas, 'state'),
        parallel: 1,
        onVerified: () => checked.push('before the import'),
        ...(during ? { onVerified: () => during(root) } : {}),
      });
      if (!during) expect(checked).toEqual(['before the import']);
      const vms = await client.listByType(['VirtualMachine', 'VirtualApp'], ['name']);
      return {
        root,
        result: results[0]!,
        vms: vms.map((v) => v.props.get('name')?.text),
        received: await receivedSince(provider, before),
      };
    } finally {
      await client.logout();
    }
  }

  /**
   * What every tamper case ends with: the item failed naming the file and the segment's bytes, no
   * VM is left, and the peer got the whole disks before the bad one and of the bad one at most the
   * plaintext before its bad segment, byte for byte.
   */
  function expectStopped(
    r: Awaited<ReturnType<typeof importDamaged>>,
    bad: number,
    segments: readonly number[],
    limit: number,
  ) {
    expect(r.result.ok).toBe(false);
    expect(r.result.error).toMatchObject({ code: 'CONTENT_MISMATCH' });
    const named = segments.map(
      (i) =>
        `bytes ${i * seg}-${Math.min(disks[bad]!.encryptedSize, (i + 1) * seg) - 1} \\(segment ${i + 1} of 4\\)`,
    );
    expect(r.result.error!.message).toMatch(
      new RegExp(
        `^${disks[bad]!.path.replace(/\./g, '\\.')}: (${named.join('|')}) do not hash to the signed manifest's SHA-256.*Nothing of them was sent`,
      ),
    );
    expect(r.vms).not.toContain(`DC0_H0_VM1 (${transfer})`);
    const got = r.received.filter((b) => b.length > 0);
    // Disks go one at a time in order: the good ones before the bad one arrive whole.
    for (const d of disks.slice(0, bad)) expect(got.some((b) => b.equals(d.plain))).toBe(true);
    const ofBad = got.filter((b) => !disks.slice(0, bad).some((d) => b.equals(d.plain)));
    expect(ofBad.length).toBeLessThanOrEqual(1);
    for (const b of ofBad) {
      expect(b.length).toBeLessThanOrEqual(limit);
      expect(b.equals(disks[bad]!.plain.subarray(0, b.length))).toBe(true);
    }
    expect(got.reduce((s, b) => s + b.length, 0)).toBeLessThanOrEqual(
      disks.slice(0, bad).reduce((s, d) => s + d.plain.length, 0) + limit,
    );
  }

  /** Flips a byte near the end of segment `index` of disk `bad`: a reader without the check would send the chunks before it. */
  const flipLate = (bad: number, index: number) => async (root: string) => {
    const f = join(root, disks[bad]!.path);
    const b = await readFile(f);
    const at = Math.min(b.length, (index + 1) * seg) - 1000;
    b[at]! ^= 0x01;
    await writeFile(f, b);
  };

  it('a flipped byte in the first segment: nothing of the disk is sent', async () => {
    const r = await importDamaged(flipLate(0, 0));
    expectStopped(r, 0, [0], 0);
    expect(r.received.every((b) => b.length === 0)).toBe(true);
  });

  it('a flipped byte in a middle segment: the disk stops before it', async () => {
    const r = await importDamaged(flipLate(1, 2));
    const limit = await plainBefore(r.root, disks[1]!, 2);
    expect(limit).toBeGreaterThan(0);
    expectStopped(r, 1, [2], limit);
  });

  it('a flipped byte in the last segment: the disk stops before it, its last bytes never go', async () => {
    const r = await importDamaged(flipLate(1, 3));
    expectStopped(r, 1, [3], await plainBefore(r.root, disks[1]!, 3));
  });

  it('a disk truncated after the check before the import: it stops before the segment cut short', async () => {
    // The size is checked before anything reaches vCenter (refusals.test.ts); here the file is
    // cut once that check passed, while its VM is being created.
    const r = await importDamaged(
      async () => {},
      (root) => truncateSync(join(root, disks[1]!.path), Math.floor(2.5 * seg)),
    );
    expect((await stat(join(r.root, disks[1]!.path))).size).toBe(Math.floor(2.5 * seg));
    // Segment 3 is cut short and segment 4 gone: whichever is found first is named.
    expectStopped(r, 1, [2, 3], await plainBefore(r.root, disks[1]!, 2));
  });

  it('swapped disks (each a valid encryption to this node): nothing of either is sent', async () => {
    const r = await importDamaged(async (root) => {
      const [a, b] = disks.map((d) => join(root, d.path));
      await rename(a!, `${a}.tmp`);
      await rename(b!, a!);
      await rename(`${a}.tmp`, b!);
    });
    expectStopped(r, 0, [0], 0);
    expect(r.received.every((b) => b.length === 0)).toBe(true);
  });

  it('the untampered package imports with the exact bytes (the cases above are the only difference)', async () => {
    const r = await importDamaged(async () => {});
    expect(r.result.error).toBeUndefined();
    expect(r.result.ok).toBe(true);
    for (const d of disks) expect(r.received.some((b) => b.equals(d.plain))).toBe(true);
  });
});
