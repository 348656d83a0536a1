// The HttpNfcLease life cycle: initializing → ready, the enforced timeout, keep-alives, client
// and server aborts, and transfers cut in flight. Each describe starts its own simulator with a
// lease timeout of about a second, so that expiry can be observed within a test.

import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { drain, exportVm, faultOf, offVm, readyExport, usePeer } from './peer-session.ts';
import {
  deviceHref,
  httpRequest,
  httpRequestStream,
  type LeaseSnapshot,
  leaseCall,
  leaseSnapshot,
  text,
  waitLease,
} from './raw-soap.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function firstUrl(snap: LeaseSnapshot): string {
  const device = snap.deviceUrls[0];
  if (!device) throw new Error('the lease has no device URL');
  return device.url;
}

describe('lease life cycle (lease timeout 1.5 s)', () => {
  const peer = usePeer({ leaseTimeoutMs: 1500, leaseReadyDelayMs: 300 });

  it('starts initializing without info, then becomes ready with its device URLs', async () => {
    const { client, sim, inventory } = peer();
    const lease = await exportVm(client, offVm(inventory, 0).moref);
    const early = await leaseSnapshot(client, lease);
    expect(early.state).toBe('initializing');
    expect(early.deviceUrls).toEqual([]);
    // Not ready yet: the device URL does not serve.
    const early0 = `${sim.nfcUrl ?? 'https://*'}/nfc/${lease}/disk-0.vmdk`;
    expect((await httpRequest(deviceHref(sim.url, early0))).status).toBe(404);

    const ready = await waitLease(client, lease);
    expect(ready.state).toBe('ready');
    expect(ready.leaseTimeout).toBe(2); // whole seconds, rounded up
    expect(ready.deviceUrls).toHaveLength(2);
    expect((await httpRequest(deviceHref(sim.url, firstUrl(ready)))).status).toBe(200);
    await client.call(leaseCall('HttpNfcLeaseComplete', lease));
  });

  it('expires without keep-alive: state error (Timedout) and the device URLs refuse', async () => {
    const { client, sim } = peer();
    const { lease, snap: ready } = await readyExport(peer(), 1);

    await sleep(2000);
    const expired = await leaseSnapshot(client, lease);
    expect(expired.state).toBe('error');
    expect(expired.errorType).toBe('Timedout');
    expect((await httpRequest(deviceHref(sim.url, firstUrl(ready)))).status).toBe(404);

    // Keep-alive and completion now report the lease's fault.
    const progress = await faultOf(
      client.call(leaseCall('HttpNfcLeaseProgress', lease, '<percent>50</percent>')),
    );
    expect(progress.faultType).toBe('Timedout');
    expect((await faultOf(client.call(leaseCall('HttpNfcLeaseComplete', lease)))).faultType).toBe('Timedout');
    // Aborting a failed lease is accepted (clients do it on their error path).
    await client.call(leaseCall('HttpNfcLeaseAbort', lease));
  });

  it('survives several timeouts with HttpNfcLeaseProgress every third of the timeout', async () => {
    const { client, sim } = peer();
    const { vm, lease, snap: ready } = await readyExport(peer(), 2);

    const start = Date.now();
    for (let percent = 0; Date.now() - start < 5000; percent += 5) {
      await client.call(
        leaseCall('HttpNfcLeaseProgress', lease, `<percent>${Math.min(percent, 100)}</percent>`),
      );
      await sleep(500);
    }
    const after = await leaseSnapshot(client, lease);
    expect(after.state).toBe('ready');
    const progress = await client.properties('HttpNfcLease', lease, ['transferProgress']);
    expect(Number(text(progress.get('transferProgress') ?? '', 'val'))).toBeGreaterThan(0);

    const disk = vm.disks[0];
    const res = await httpRequest(deviceHref(sim.url, firstUrl(ready)));
    expect(res.status).toBe(200);
    expect(res.body.equals(await readFile(disk?.path ?? ''))).toBe(true);

    await client.call(leaseCall('HttpNfcLeaseComplete', lease));
    expect((await leaseSnapshot(client, lease)).state).toBe('done');
    // A finished lease can be neither renewed nor completed again.
    const again = await faultOf(
      client.call(leaseCall('HttpNfcLeaseProgress', lease, '<percent>100</percent>')),
    );
    expect(again.faultType).toBe('InvalidState');
  });

  it('HttpNfcLeaseAbort ends the lease with RequestCanceled', async () => {
    const { client, sim } = peer();
    const { lease, snap: ready } = await readyExport(peer(), 3);
    await client.call(leaseCall('HttpNfcLeaseAbort', lease));
    const aborted = await leaseSnapshot(client, lease);
    expect(aborted.state).toBe('error');
    expect(aborted.errorType).toBe('RequestCanceled');
    expect((await httpRequest(deviceHref(sim.url, firstUrl(ready)))).status).toBe(404);
  });

  it('rejects a percentage outside 0..100', async () => {
    const { client } = peer();
    const { lease } = await readyExport(peer(), 4);
    const fault = await faultOf(
      client.call(leaseCall('HttpNfcLeaseProgress', lease, '<percent>101</percent>')),
    );
    expect(fault.faultType).toBe('InvalidArgument');
    await client.call(leaseCall('HttpNfcLeaseAbort', lease));
  });
});

describe('transfers cut in flight (64 MiB disks, lease timeout 1 s)', () => {
  // Large enough that a paused reader leaves most of the disk unsent: socket buffers on
  // loopback hold a few MiB at most. "zero" content makes the files sparse and instant.
  const peer = usePeer({ leaseTimeoutMs: 1000, diskSize: '64MiB', diskContent: 'zero', disksPerVm: 1 });
  const size = 64 * 1024 * 1024;

  it('the control endpoint aborts a lease in the middle of a download', async () => {
    const { client, sim } = peer();
    const { lease, snap: ready } = await readyExport(peer(), 0);

    const res = await httpRequestStream(deviceHref(sim.url, firstUrl(ready)));
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBe(String(size));
    const result = await drain(res, async () => {
      const control = await httpRequest(new URL(`/_test/lease/${lease}/abort`, sim.url).toString(), {
        method: 'POST',
      });
      expect(control.status).toBe(200);
      expect(JSON.parse(control.body.toString()).state).toBe('error');
    });
    expect(result.complete).toBe(false);
    expect(result.bytes).toBeLessThan(size);

    const snap = await leaseSnapshot(client, lease);
    expect(snap.state).toBe('error');
    expect(snap.errorType).toBe('SystemError');
    // Aborting again through the endpoint reports the conflict.
    const again = await httpRequest(new URL(`/_test/lease/${lease}/abort`, sim.url).toString(), {
      method: 'POST',
    });
    expect(again.status).toBe(409);
  });

  it('a lease timeout cuts a download that is in flight', async () => {
    const { client, sim } = peer();
    const { lease, snap: ready } = await readyExport(peer(), 1);

    const res = await httpRequestStream(deviceHref(sim.url, firstUrl(ready)));
    // Stall after the first chunk, sending no keep-alive, past the timeout.
    const result = await drain(res, async () => {
      await sleep(1600);
    });
    expect(result.complete).toBe(false);
    expect(result.bytes).toBeLessThan(size);
    expect((await leaseSnapshot(client, lease)).errorType).toBe('Timedout');
  });

  it('reports lease status on GET /_test/lease/<id>', async () => {
    const { client, sim } = peer();
    const { vm, lease } = await readyExport(peer(), 2);
    const res = await httpRequest(new URL(`/_test/lease/${lease}`, sim.url).toString());
    expect(res.status).toBe(200);
    const status = JSON.parse(res.body.toString());
    expect(status).toMatchObject({ id: lease, kind: 'export', state: 'ready', transferred: 0 });
    expect(status.files).toEqual([vm.disks[0]?.path]);
    expect((await httpRequest(new URL('/_test/lease/lease-0', sim.url).toString())).status).toBe(404);
    await client.call(leaseCall('HttpNfcLeaseComplete', lease));
  });
});

describe('-abort-after-bytes', () => {
  const peer = usePeer({ abortAfterBytes: 300_000 });

  it('breaks the transfer after that many bytes and fails the lease', async () => {
    const { client, sim } = peer();
    const { lease, snap: ready } = await readyExport(peer(), 0);

    const result = await drain(await httpRequestStream(deviceHref(sim.url, firstUrl(ready))));
    expect(result.complete).toBe(false);
    expect(result.bytes).toBeLessThanOrEqual(300_000);

    const snap = await leaseSnapshot(client, lease);
    expect(snap.state).toBe('error');
    expect(snap.errorType).toBe('SystemError');
    const second = ready.deviceUrls[1];
    if (!second) throw new Error('no second device');
    expect((await httpRequest(deviceHref(sim.url, second.url))).status).toBe(404);
  });
});
