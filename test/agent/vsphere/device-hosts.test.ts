import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DeviceHosts } from '../../../agent/vsphere/device-hosts.ts';
import { SoapConnection } from '../../../agent/vsphere/wire/soap-connection.ts';
import {
  type RunningSimulator,
  type SimulatorOptions,
  startSimulator,
} from '../../peers/vsphere/simulator.ts';
import { exportArgs, importArgs, initParties, odt } from '../../support/cli.ts';
import { expectDisksDecrypt } from '../../support/disks.ts';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

// Issue 17, defect 1: through a vCenter, a device URL names the ESXi host holding the disk, with
// that host's own certificate and its SHA-1 in the lease's sslThumbprint. The export and import
// trust each host by that thumbprint, and send the vCenter session cookie to the vCenter only.
describe('NFC transfers to an ESXi host other than the vCenter', () => {
  const sims: RunningSimulator[] = [];
  let work: string;
  let recipient: string;
  const start = async (options: SimulatorOptions = {}) => {
    const sim = await startSimulator({
      binary: inject('vcsimBinary'),
      tls: true,
      nfcHost: 'separate',
      ...options,
    });
    sims.push(sim);
    return sim;
  };
  const exportWith = (sim: RunningSimulator, transfer: string, ...flags: string[]) =>
    odt([...exportArgs(sim, work, recipient, ['DC0_H0_VM1'], join(work, 'nas'), transfer), ...flags], {
      ODT_VCENTER_PASSWORD: sim.password,
    });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'odt-device-hosts-'));
    recipient = await initParties(work);
  });
  afterAll(async () => {
    await Promise.all(sims.map((s) => s.stop()));
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('exports and imports with --thumbprint: every byte arrives, no device request carries the session cookie', async () => {
    const customer = await start();
    const provider = await start({ apps: 0, templates: 0 });
    expect(customer.nfcUrl).toMatch(/^https:\/\/127\.0\.0\.2:\d+$/);
    expect(customer.nfcThumbprintSha1).not.toBe(customer.thumbprintSha1);

    const exported = await exportWith(customer, 'tr-hosts-1', '--thumbprint', customer.thumbprint!);
    expect(exported.err).toBe('');
    expect(exported.code).toBe(0);
    await expectDisksDecrypt(customer, work, join(work, 'nas', 'tr-hosts-1', 'item-1'), 'DC0_H0_VM1', 2);
    const gets = await customer.nfcRequests();
    expect(gets.filter((r) => r.method === 'GET')).toHaveLength(2);
    expect(gets.every((r) => r.listener === 'nfc' && !r.sessionCookie)).toBe(true);

    const imported = await odt(
      [
        ...importArgs(provider, work, join(work, 'nas'), 'tr-hosts-1', join(work, 'state-1')),
        '--thumbprint',
        provider.thumbprint!,
      ],
      { ODT_VCENTER_PASSWORD: provider.password },
    );
    expect(imported.err).toBe('');
    expect(imported.code).toBe(0);
    const puts = await provider.nfcRequests();
    expect(puts.filter((r) => r.method === 'POST' || r.method === 'PUT').length).toBeGreaterThanOrEqual(2);
    expect(puts.every((r) => r.listener === 'nfc' && !r.sessionCookie)).toBe(true);
    const source = (await customer.readInventory()).vms.find((v) => v.name === 'DC0_H0_VM1')!;
    const uploaded = new Set<string>();
    for (const lease of await readdir(provider.uploadsDir)) {
      for (const f of await readdir(join(provider.uploadsDir, lease))) {
        uploaded.add(sha256(await readFile(join(provider.uploadsDir, lease, f))));
      }
    }
    for (const disk of source.disks) expect(uploaded.has(disk.sha256)).toBe(true);
  });

  it("refuses a host whose certificate is not the lease's sslThumbprint, naming the host and both thumbprints", async () => {
    const sim = await start({ nfcThumbprint: 'wrong' });
    const r = await exportWith(sim, 'tr-hosts-2', '--thumbprint', sim.thumbprint!);
    expect(r.code).not.toBe(0);
    const host = new URL(sim.nfcUrl!).host;
    expect(r.err).toContain(`ESXi host ${host}`);
    expect(r.err).toContain(sim.nfcThumbprintSha1!);
    expect(r.err).toMatch(/the NFC lease says its thumbprint is ([0-9A-F]{2}:){19}[0-9A-F]{2}/);
    // Refused at the handshake: no request reached the host.
    expect(await sim.nfcRequests()).toEqual([]);
  });

  it('--insecure still skips every check', async () => {
    const sim = await start({ nfcThumbprint: 'wrong' });
    const r = await exportWith(sim, 'tr-hosts-3', '--insecure');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    await expectDisksDecrypt(sim, work, join(work, 'nas', 'tr-hosts-3', 'item-1'), 'DC0_H0_VM1', 2);
  });

  it('without an sslThumbprint, the host is held to the vCenter trust settings', async () => {
    const sim = await start({ nfcThumbprint: 'none' });
    const r = await exportWith(sim, 'tr-hosts-4', '--thumbprint', sim.thumbprint!);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain('the NFC lease gave none for it');
    expect(r.err).toContain(sim.nfcThumbprint!);
  });

  it('connected to an ESXi host directly (`*` device URLs), the host is the session host: its trust and its cookie', async () => {
    const sim = await start({ nfcHost: 'direct' });
    const r = await exportWith(sim, 'tr-hosts-5', '--thumbprint', sim.thumbprint!);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const gets = await sim.nfcRequests();
    expect(gets.length).toBeGreaterThan(0);
    expect(gets.every((g) => g.listener === 'sdk' && g.sessionCookie)).toBe(true);
  });

  it.each(['chunked', 'close'] as const)(
    'exports every byte when the host streams the disk %s, without Content-Length',
    async (nfcDownload) => {
      const sim = await start({ nfcDownload });
      const transfer = `tr-hosts-${nfcDownload}`;
      const r = await exportWith(sim, transfer, '--thumbprint', sim.thumbprint!);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      await expectDisksDecrypt(sim, work, join(work, 'nas', transfer, 'item-1'), 'DC0_H0_VM1', 2);
    },
  );

  it.each(['chunked', 'close'] as const)(
    'refuses a %s download that ends early, by the size the lease manifest gives, and keeps no file of it',
    async (nfcDownload) => {
      const sim = await start({ nfcDownload, nfcShortBody: 128 * 1024 });
      const transfer = `tr-hosts-short-${nfcDownload}`;
      const r = await exportWith(sim, transfer, '--thumbprint', sim.thumbprint!);
      expect(r.code).not.toBe(0);
      expect(r.err).toMatch(/ended after 131072 bytes, but the host sent 1048576 \(lease manifest\)/);
      const item = join(work, 'nas', transfer, 'item-1');
      const left = await readdir(item).catch(() => [] as string[]);
      expect(left.filter((f) => f.includes('disk'))).toEqual([]);
    },
  );
});

describe('DeviceHosts.route', () => {
  const connection = new SoapConnection({
    url: new URL('https://vcenter.example/sdk'),
    trust: { kind: 'thumbprint', thumbprint: 'AB'.repeat(32) },
  });
  const hosts = new DeviceHosts(connection);
  afterAll(() => {
    hosts.close();
    connection.close();
  });

  it("sends a URL on the vCenter's own origin through the vCenter's agent", () => {
    const route = hosts.route({ url: new URL('https://vcenter.example/nfc/t/disk-0.vmdk') });
    expect(route.agent).toBe(connection.agent);
  });

  it('gives each ESXi host one keep-alive agent of its own, and never the cookie', () => {
    const a = hosts.route({
      url: new URL('https://esx-07.example/nfc/t1/disk-0.vmdk'),
      sslThumbprint: 'CD'.repeat(20),
    });
    const b = hosts.route({
      url: new URL('https://esx-07.example/nfc/t1/disk-1.vmdk'),
      sslThumbprint: 'CD'.repeat(20),
    });
    const c = hosts.route({
      url: new URL('https://esx-08.example/nfc/t2/disk-0.vmdk'),
      sslThumbprint: 'EF'.repeat(20),
    });
    // Another port of the vCenter's host is another origin, as a device URL of an ESXi host would be.
    const d = hosts.route({ url: new URL('https://vcenter.example:902/nfc/t3/disk-0.vmdk') });
    expect(a.agent).toBe(b.agent);
    expect(a.agent).not.toBe(c.agent);
    expect(a.agent).not.toBe(connection.agent);
    expect(d.agent).not.toBe(connection.agent);
    for (const r of [a, b, c, d]) expect(r.cookie).toBeUndefined();
    expect((a.agent as unknown as { keepAlive: boolean }).keepAlive).toBe(true);
  });
});
