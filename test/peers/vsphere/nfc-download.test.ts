// The framing of export downloads (-nfc-download): chunked, as an ESXi host streams a
// streamOptimized VMDK whose size it does not know in advance, and close-delimited
// (HTTP/1.0 style). The bytes must be exactly the disk file's either way, ranges still work, and
// a transfer the server stops is cut: chunked without its last chunk, close-delimited with a TCP
// reset. Node reports neither a FIN nor (most of the time: libuv often reads a reset as an
// ordinary end of stream) a reset as an error on a close-delimited body, so there a cut shows
// only as a short body, and a client must check what it got against the lease manifest. That
// the peer does reset is checked with Go's client in govmomi-client.test.ts, which sees it.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { drain, readyExport, usePeer } from './peer-session.ts';
import { deviceHref, httpRequest, httpRequestStream, leaseCall, leaseSnapshot } from './raw-soap.ts';
import type { NfcDownload } from './simulator.ts';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * GETs a URL over a bare TCP socket and reports how the connection ended: 'end' (FIN) or the
 * error code (ECONNRESET for a reset), how many bytes (headers included) arrived, and the last
 * few of them.
 */
function rawGet(href: string): Promise<{ ending: string; bytes: number; tail: string }> {
  const u = new URL(href);
  return new Promise((resolve) => {
    let bytes = 0;
    let tail = Buffer.alloc(0);
    const socket = connect({ host: u.hostname, port: Number(u.port) }, () => {
      socket.write(`GET ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`);
    });
    socket.on('data', (d: Buffer) => {
      bytes += d.length;
      tail = Buffer.concat([tail, d]).subarray(-16);
    });
    const done = (ending: string) => resolve({ ending, bytes, tail: tail.toString('latin1') });
    socket.on('end', () => done('end'));
    socket.on('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
  });
}

/** The framing headers each mode must (not) send. */
function expectFraming(mode: NfcDownload, res: { headers: IncomingMessage['headers'] }) {
  expect(res.headers['content-length']).toBeUndefined();
  if (mode === 'chunked') {
    expect(res.headers['transfer-encoding']).toBe('chunked');
  } else {
    expect(res.headers['transfer-encoding']).toBeUndefined();
    expect(res.headers.connection).toBe('close');
  }
}

for (const mode of ['chunked', 'close'] as const) {
  describe(`-nfc-download ${mode}`, () => {
    const peer = usePeer({ tls: true, nfcHost: 'separate', nfcDownload: mode });

    it('delivers the exact bytes of every disk, with no Content-Length', async () => {
      const p = peer();
      const { vm, lease, snap } = await readyExport(p, 0);
      for (const device of snap.deviceUrls) {
        const disk = vm.disks.find((d) => d.deviceKey === device.key);
        if (!disk) throw new Error(`no disk for ${device.key}`);
        const res = await httpRequest(device.url, { pinSha256: p.sim.nfcThumbprint });
        expect(res.status).toBe(200);
        expectFraming(mode, res);
        expect(res.body.length).toBe(disk.size);
        expect(sha256(res.body)).toBe(disk.sha256);
      }
      await p.client.call(leaseCall('HttpNfcLeaseComplete', lease));
    });

    it('answers a range with 206 and Content-Range (assumed: see README), 416 beyond the end', async () => {
      const p = peer();
      const { vm, lease, snap } = await readyExport(p, 1);
      const device = snap.deviceUrls[0];
      const disk = vm.disks[0];
      if (!device || !disk) throw new Error('no device URL');
      const bytes = await readFile(disk.path);
      const pin = { pinSha256: p.sim.nfcThumbprint };

      const from = await httpRequest(device.url, { ...pin, headers: { Range: 'bytes=1000-' } });
      expect(from.status).toBe(206);
      expect(from.headers['content-range']).toBe(`bytes 1000-${disk.size - 1}/${disk.size}`);
      expectFraming(mode, from);
      expect(from.body.equals(bytes.subarray(1000))).toBe(true);

      const mid = await httpRequest(device.url, { ...pin, headers: { Range: 'bytes=100-199' } });
      expect(mid.status).toBe(206);
      expect(mid.body.equals(bytes.subarray(100, 200))).toBe(true);

      const suffix = await httpRequest(device.url, { ...pin, headers: { Range: 'bytes=-10' } });
      expect(suffix.status).toBe(206);
      expect(suffix.body.equals(bytes.subarray(disk.size - 10))).toBe(true);

      const beyond = await httpRequest(device.url, { ...pin, headers: { Range: `bytes=${disk.size}-` } });
      expect(beyond.status).toBe(416);

      // Several ranges are not supported: the whole file, as the standard allows.
      const multi = await httpRequest(device.url, { ...pin, headers: { Range: 'bytes=0-1,5-6' } });
      expect(multi.status).toBe(200);
      expect(multi.body.equals(bytes)).toBe(true);

      const head = await httpRequest(device.url, { ...pin, method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers['content-length']).toBeUndefined();
      await p.client.call(leaseCall('HttpNfcLeaseComplete', lease));
    });
  });

  describe(`-nfc-download ${mode}: transfers cut in flight (64 MiB disks)`, () => {
    const peer = usePeer({
      nfcDownload: mode,
      diskSize: '64MiB',
      diskContent: 'zero',
      disksPerVm: 1,
    });
    const size = 64 * 1024 * 1024;

    it('a server abort mid-download cuts the body short (chunked: visibly incomplete)', async () => {
      const p = peer();
      const { lease, snap } = await readyExport(p, 0);
      const device = snap.deviceUrls[0];
      if (!device) throw new Error('no device URL');
      const res = await httpRequestStream(deviceHref(p.sim.url, device.url));
      expect(res.statusCode).toBe(200);
      const result = await drain(res, async () => {
        const control = await httpRequest(new URL(`/_test/lease/${lease}/abort`, p.sim.url).toString(), {
          method: 'POST',
        });
        expect(control.status).toBe(200);
      });
      expect(result.bytes).toBeLessThan(size);
      if (mode === 'chunked') expect(result.complete).toBe(false);
      expect((await leaseSnapshot(p.client, lease)).errorType).toBe('SystemError');
    });

    it('completing the lease mid-download cuts the transfer too', async () => {
      const p = peer();
      const { lease, snap } = await readyExport(p, 1);
      const device = snap.deviceUrls[0];
      if (!device) throw new Error('no device URL');
      const res = await httpRequestStream(deviceHref(p.sim.url, device.url));
      const result = await drain(res, async () => {
        await p.client.call(leaseCall('HttpNfcLeaseComplete', lease));
      });
      expect(result.bytes).toBeLessThan(size);
      if (mode === 'chunked') expect(result.complete).toBe(false);
    });
  });

  describe(`-nfc-download ${mode} with -abort-after-bytes`, () => {
    const peer = usePeer({ nfcDownload: mode, abortAfterBytes: 300_000 });

    it('breaks the download after that many bytes, visibly', async () => {
      const p = peer();
      const { lease, snap } = await readyExport(p, 0);
      const device = snap.deviceUrls[0];
      if (!device) throw new Error('no device URL');
      const result = await drain(await httpRequestStream(deviceHref(p.sim.url, device.url)));
      expect(result.bytes).toBeLessThanOrEqual(300_000);
      if (mode === 'chunked') expect(result.complete).toBe(false);
      expect((await leaseSnapshot(p.client, lease)).state).toBe('error');
    });

    it('ends the connection without ending the body (chunked: no last chunk)', async () => {
      const p = peer();
      const { snap } = await readyExport(p, 1);
      const device = snap.deviceUrls[0];
      if (!device) throw new Error('no device URL');
      const raw = await rawGet(deviceHref(p.sim.url, device.url));
      expect(raw.bytes).toBeLessThan(300_000 + 4096);
      expect(raw.ending).toMatch(/^(end|ECONNRESET)$/);
      if (mode === 'chunked') expect(raw.tail.endsWith('\r\n0\r\n\r\n')).toBe(false);
    });
  });
}

describe('-nfc-download chunked with -nfc-rate', () => {
  const peer = usePeer({ nfcDownload: 'chunked', nfcBytesPerSecond: 2 * 1024 * 1024, diskSize: '1MiB' });

  it('paces the stream', async () => {
    const p = peer();
    const { vm, lease, snap } = await readyExport(p, 0);
    const device = snap.deviceUrls[0];
    if (!device) throw new Error('no device URL');
    const started = Date.now();
    const res = await httpRequest(deviceHref(p.sim.url, device.url));
    // 1 MiB at 2 MiB/s: about half a second (the first piece goes at once).
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(sha256(res.body)).toBe(vm.disks[0]?.sha256);
    await p.client.call(leaseCall('HttpNfcLeaseComplete', lease));
  });
});
