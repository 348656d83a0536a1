// TLS mode, credentials, and the launcher's start/stop contract.

import { access, readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { exportVm, faultOf, peerCertificate } from './peer-session.ts';
import { deviceHref, httpRequest, leaseCall, RawSoapClient, text, waitLease } from './raw-soap.ts';
import { type RunningSimulator, startSimulator } from './simulator.ts';

describe('TLS with a self-signed certificate and enforced credentials', () => {
  // Characters that need escaping in XML and in a URL, to check both paths.
  const username = 'odt-admin@vsphere.local';
  const password = 'pa$$ w<r>d&"1';
  let sim: RunningSimulator;

  beforeAll(async () => {
    sim = await startSimulator({ binary: inject('vcsimBinary'), tls: true, username, password });
  });
  afterAll(async () => {
    await sim?.stop();
  });

  it('prints an https URL with the credentials and both thumbprints', () => {
    expect(sim.url).toBe(`https://127.0.0.1:${sim.port}/sdk`);
    expect(sim.username).toBe(username);
    expect(sim.password).toBe(password);
    expect(sim.thumbprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(sim.thumbprintSha1).toMatch(/^([0-9A-F]{2}:){19}[0-9A-F]{2}$/);
  });

  it('presents the certificate whose fingerprints it reports', async () => {
    const cert = await peerCertificate(sim.host, sim.port);
    expect(cert.fingerprint256).toBe(sim.thumbprint);
    expect(cert.fingerprint).toBe(sim.thumbprintSha1);
  });

  it('refuses bad credentials with InvalidLogin and accepts the configured ones', async () => {
    const client = new RawSoapClient(sim.url, { pinSha256: sim.thumbprint });
    for (const [user, pass] of [
      [username, 'pass'],
      ['user', password],
      ['', ''],
    ] as const) {
      expect((await faultOf(client.login(user, pass))).faultType).toBe('InvalidLogin');
    }
    const ok = await client.login(username, password);
    expect(text(ok, 'userName')).toBe(username);
  });

  it('fails a client that pins another certificate', async () => {
    const client = new RawSoapClient(sim.url, { pinSha256: 'AA'.repeat(32).replace(/(..)(?!$)/g, '$1:') });
    await expect(client.login(username, password)).rejects.toThrow(/not the pinned/);
  });

  it("exports over https with the NFC host's SHA-1 thumbprint in each device URL", async () => {
    const client = new RawSoapClient(sim.url, { pinSha256: sim.thumbprint });
    await client.login(username, password);
    const inventory = await sim.readInventory();
    const vm = inventory.vms.find((v) => v.name === 'DC0_H0_VM1');
    if (!vm) throw new Error('no VM');
    const lease = await exportVm(client, vm.moref);
    const snap = await waitLease(client, lease);
    expect(snap.deviceUrls).toHaveLength(2);
    for (const [i, device] of snap.deviceUrls.entries()) {
      // The separate NFC listener's certificate, or the SDK's when NFC is served directly.
      expect(device.sslThumbprint).toBe(sim.nfcThumbprintSha1 ?? sim.thumbprintSha1);
      const res = await httpRequest(deviceHref(sim.url, device.url), {
        pinSha256: sim.nfcThumbprint ?? sim.thumbprint,
      });
      expect(res.status).toBe(200);
      expect(res.body.equals(await readFile(vm.disks[i]?.path ?? ''))).toBe(true);
    }
    await client.call(leaseCall('HttpNfcLeaseComplete', lease));
  });
});

describe('launcher', () => {
  it('stops the simulator with SIGTERM: clean exit, data dir removed, port closed', async () => {
    const sim = await startSimulator({
      binary: inject('vcsimBinary'),
      vms: 1,
      apps: 0,
      templates: 0,
      disksPerVm: 1,
    });
    const inventory = await sim.readInventory();
    expect(inventory.vApps).toEqual([]);
    expect(inventory.vms.every((v) => v.disks.length === 1 && !v.template)).toBe(true);
    expect((await httpRequest(new URL('/about', sim.url).toString())).status).toBe(200);

    await sim.stop();
    expect(sim.exitStatus()).toEqual({ code: 0, signal: null });
    await expect(access(sim.dataDir)).rejects.toThrow();
    await expect(httpRequest(sim.url)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('passes disk size, content and power flags through', async () => {
    const sim = await startSimulator({
      binary: inject('vcsimBinary'),
      diskSize: '96KiB',
      diskContent: 'pattern',
      poweredOn: '*',
      templates: 0,
      apps: 0,
    });
    try {
      const inventory = await sim.readInventory();
      expect(inventory.vms.every((v) => v.powerState === 'poweredOn')).toBe(true);
      const disk = inventory.vms[0]?.disks[1];
      expect(disk?.size).toBe(96 * 1024);
      expect(disk?.capacityInKB).toBe(96);
      const bytes = await readFile(disk?.path ?? '');
      expect(bytes.subarray(0, 512).toString()).toMatch(
        new RegExp(`^${inventory.vms[0]?.name} disk2 sector 0\\n`),
      );
    } finally {
      await sim.stop();
    }
  });
});
