// Where NFC is served (issue #17): a vCenter's device URLs name the ESXi host that holds the
// disk, served with that host's own certificate, whose SHA-1 is the device URL's sslThumbprint;
// only an ESXi connected to directly answers with the "*" host. -nfc-host separate is the first,
// -nfc-host direct the second. Also -nfc-thumbprint and the /_test/nfc-requests log.

import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { peerCertificate, readyExport, usePeer } from './peer-session.ts';
import { deviceHref, envelope, httpRequest, leaseCall, moRef } from './raw-soap.ts';

const sha1Pattern = /^([0-9A-F]{2}:){19}[0-9A-F]{2}$/;

describe('-nfc-host separate with TLS: NFC on another host with its own certificate', () => {
  const peer = usePeer({ tls: true, nfcHost: 'separate' });

  it('reports the NFC listener on 127.0.0.2 with thumbprints of its own', () => {
    const { sim } = peer();
    expect(sim.nfcUrl).toMatch(/^https:\/\/127\.0\.0\.2:\d+$/);
    expect(new URL(sim.nfcUrl ?? '').host).not.toBe(new URL(sim.url).host);
    expect(sim.nfcThumbprintSha1).toMatch(sha1Pattern);
    expect(sim.nfcThumbprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(sim.nfcThumbprintSha1).not.toBe(sim.thumbprintSha1);
    expect(sim.nfcThumbprint).not.toBe(sim.thumbprint);
  });

  it('device URLs name the NFC host, whose certificate has the SHA-1 in sslThumbprint', async () => {
    const p = peer();
    const { sim } = p;
    const { lease, snap } = await readyExport(p, 0);
    expect(snap.deviceUrls).toHaveLength(2);
    const nfc = new URL(sim.nfcUrl ?? '');
    const cert = await peerCertificate(nfc.hostname, Number(nfc.port));
    for (const [i, device] of snap.deviceUrls.entries()) {
      expect(device.url).toBe(`${sim.nfcUrl}/nfc/${lease}/disk-${i}.vmdk`);
      expect(device.sslThumbprint).toBe(cert.fingerprint);
      expect(device.sslThumbprint).toBe(sim.nfcThumbprintSha1);
      expect(device.sslThumbprint).not.toBe(sim.thumbprintSha1);
    }
    expect(cert.fingerprint256).toBe(sim.nfcThumbprint);
    // Valid for the address it is reached at, and for the usual loopback names.
    expect(cert.subjectaltname).toContain('IP Address:127.0.0.2');
    expect(cert.subjectaltname).toContain('IP Address:127.0.0.1');
    expect(cert.subjectaltname).toContain('DNS:localhost');
    await p.client.call(leaseCall('HttpNfcLeaseComplete', lease));
  });

  it('serves a download without the session cookie, and logs where it arrived', async () => {
    const p = peer();
    const { sim } = p;
    const { vm, lease, snap } = await readyExport(p, 1);
    await sim.clearNfcRequests();
    const device = snap.deviceUrls[0];
    if (!device) throw new Error('no device URL');
    const res = await httpRequest(device.url, { pinSha256: sim.nfcThumbprint });
    expect(res.status).toBe(200);
    expect(res.body.equals(await readFile(vm.disks[0]?.path ?? ''))).toBe(true);

    // A client that wrongly sends the vCenter's cookie along is served too, but it shows.
    const withCookie = await httpRequest(device.url, {
      pinSha256: sim.nfcThumbprint,
      headers: { Cookie: 'vmware_soap_session="52c2b1e0-0000-0000-0000-000000000000"' },
    });
    expect(withCookie.status).toBe(200);

    const path = `/nfc/${lease}/disk-0.vmdk`;
    expect(await sim.nfcRequests()).toEqual([
      { listener: 'nfc', method: 'GET', path, sessionCookie: false },
      { listener: 'nfc', method: 'GET', path, sessionCookie: true },
    ]);
    await p.client.call(leaseCall('HttpNfcLeaseComplete', lease));
  });

  it('the SDK listener does not serve /nfc, and logs the attempt', async () => {
    const p = peer();
    const { sim } = p;
    const { lease } = await readyExport(p, 2);
    await sim.clearNfcRequests();
    const onSdk = new URL(`/nfc/${lease}/disk-0.vmdk`, sim.url).toString();
    expect((await httpRequest(onSdk, { pinSha256: sim.thumbprint })).status).toBe(404);
    expect(await sim.nfcRequests()).toEqual([
      { listener: 'sdk', method: 'GET', path: `/nfc/${lease}/disk-0.vmdk`, sessionCookie: false },
    ]);
    await sim.clearNfcRequests();
    expect(await sim.nfcRequests()).toEqual([]);
    await p.client.call(leaseCall('HttpNfcLeaseComplete', lease));
  });

  it('the NFC listener serves nothing but /nfc: no SOAP, no test endpoint', async () => {
    const { sim } = peer();
    const login =
      `<Login xmlns="urn:vim25">${moRef('_this', 'SessionManager', 'SessionManager')}` +
      `<userName>${sim.username}</userName><password>${sim.password}</password></Login>`;
    const pin = { pinSha256: sim.nfcThumbprint };
    const soap = await httpRequest(`${sim.nfcUrl}/sdk`, {
      ...pin,
      method: 'POST',
      headers: { 'Content-Type': 'text/xml' },
      body: envelope(login),
    });
    expect(soap.status).toBe(404);
    expect((await httpRequest(`${sim.nfcUrl}/_test/leases`, pin)).status).toBe(404);
    expect((await httpRequest(`${sim.nfcUrl}/about`, pin)).status).toBe(404);
    expect((await httpRequest(`${sim.nfcUrl}/nfc/lease-999/disk-0.vmdk`, pin)).status).toBe(404);
  });
});

describe('-nfc-host separate without TLS', () => {
  const peer = usePeer({ nfcHost: 'separate' });

  it('device URLs are plain http on the NFC host, with no thumbprint', async () => {
    const p = peer();
    const { sim } = p;
    expect(sim.nfcUrl).toMatch(/^http:\/\/127\.0\.0\.2:\d+$/);
    expect(sim.nfcThumbprintSha1).toBeUndefined();
    const { vm, lease, snap } = await readyExport(p, 0);
    const device = snap.deviceUrls[1];
    if (!device) throw new Error('no second device URL');
    expect(device.url).toBe(`${sim.nfcUrl}/nfc/${lease}/disk-1.vmdk`);
    expect(device.sslThumbprint).toBe('');
    const res = await httpRequest(device.url);
    expect(res.status).toBe(200);
    expect(res.body.equals(await readFile(vm.disks[1]?.path ?? ''))).toBe(true);
    await p.client.call(leaseCall('HttpNfcLeaseComplete', lease));
  });
});

describe('-nfc-thumbprint', () => {
  describe('wrong', () => {
    const peer = usePeer({ tls: true, nfcHost: 'separate', nfcThumbprint: 'wrong' });

    it('advertises a well-formed SHA-1 that is not the NFC certificate (nor the SDK one)', async () => {
      const p = peer();
      const { lease, snap } = await readyExport(p, 0);
      for (const device of snap.deviceUrls) {
        expect(device.sslThumbprint).toMatch(sha1Pattern);
        expect(device.sslThumbprint).not.toBe(p.sim.nfcThumbprintSha1);
        expect(device.sslThumbprint).not.toBe(p.sim.thumbprintSha1);
      }
      // The NFC host still presents its own certificate, the one stdout reports.
      const nfc = new URL(p.sim.nfcUrl ?? '');
      expect((await peerCertificate(nfc.hostname, Number(nfc.port))).fingerprint).toBe(
        p.sim.nfcThumbprintSha1,
      );
      await p.client.call(leaseCall('HttpNfcLeaseAbort', lease));
    });
  });

  describe('none', () => {
    const peer = usePeer({ tls: true, nfcHost: 'separate', nfcThumbprint: 'none' });

    it('leaves sslThumbprint empty', async () => {
      const p = peer();
      const { lease, snap } = await readyExport(p, 0);
      expect(snap.deviceUrls.map((d) => d.sslThumbprint)).toEqual(['', '']);
      await p.client.call(leaseCall('HttpNfcLeaseAbort', lease));
    });
  });
});

describe('-nfc-host direct with TLS (an ESXi host connected to directly)', () => {
  const peer = usePeer({ tls: true, nfcHost: 'direct' });

  it('has "*" device URLs served by the SDK listener with its thumbprint, and logs them as sdk', async () => {
    const p = peer();
    const { sim } = p;
    expect(sim.nfcUrl).toBeUndefined();
    expect(sim.nfcThumbprintSha1).toBeUndefined();
    const { vm, lease, snap } = await readyExport(p, 0);
    const device = snap.deviceUrls[0];
    if (!device) throw new Error('no device URL');
    expect(device.url).toBe(`https://*/nfc/${lease}/disk-0.vmdk`);
    expect(device.sslThumbprint).toBe(sim.thumbprintSha1);

    await sim.clearNfcRequests();
    const href = deviceHref(sim.url, device.url);
    expect(new URL(href).host).toBe(new URL(sim.url).host);
    const res = await httpRequest(href, {
      pinSha256: sim.thumbprint,
      headers: { Cookie: 'vmware_soap_session="x"' },
    });
    expect(res.status).toBe(200);
    expect(res.body.equals(await readFile(vm.disks[0]?.path ?? ''))).toBe(true);
    expect(await sim.nfcRequests()).toEqual([
      { listener: 'sdk', method: 'GET', path: `/nfc/${lease}/disk-0.vmdk`, sessionCookie: true },
    ]);
    await p.client.call(leaseCall('HttpNfcLeaseComplete', lease));
  });
});
