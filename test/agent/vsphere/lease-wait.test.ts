import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { VimClient } from '../../../agent/vsphere/client.ts';
import { LeaseError, type LeaseWaitMethod, NfcLease } from '../../../agent/vsphere/lease.ts';
import { VimFaultError } from '../../../agent/vsphere/wire/soap-connection.ts';
import { type RunningSimulator, startSimulator } from '../../peers/vsphere/simulator.ts';
import { connectTo } from '../../support/vsphere.ts';

async function exportLease(client: VimClient, sim: RunningSimulator): Promise<NfcLease> {
  const vm = (await sim.readInventory()).vms.find((v) => v.name === 'DC0_H0_VM1')!;
  const res = await client.invoke('ExportVm', { _this: { type: 'VirtualMachine', value: vm.moref } });
  return new NfcLease(client, res.child('returnval')!.moref);
}

// Issue 17: the lease wait uses WaitForUpdatesEx on the lease where the server has it, and polls
// where it does not; both stop at the deadline, on abort, and on a lease that failed.
describe.each([
  ['WaitForUpdatesEx', 'updates', true],
  ['polling', 'poll', true],
  ['auto, on a server without WaitForUpdatesEx', 'auto', false],
] as const)('NfcLease.waitReady by %s', (_name, method: LeaseWaitMethod, waitForUpdates) => {
  let sim: RunningSimulator;
  let client: VimClient;
  beforeAll(async () => {
    sim = await startSimulator({
      binary: inject('vcsimBinary'),
      leaseReadyDelayMs: 1_500,
      waitForUpdates,
      disksPerVm: 1,
      diskSize: 4096,
    });
    client = await connectTo(sim);
  });
  afterAll(async () => {
    await client?.logout();
    await sim?.stop();
  });

  it('returns the device URLs once the lease is ready', async () => {
    const lease = await exportLease(client, sim);
    const started = Date.now();
    const info = await lease.waitReady({ method });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(info.deviceUrls).toHaveLength(1);
    expect(info.deviceUrls[0]!.disk).toBe(true);
    await lease.abort();
    // Which way it waited: polling never tries WaitForUpdatesEx, auto tried it and fell back.
    const expected = { auto: false, updates: true, poll: undefined }[method];
    expect(client.waitForUpdatesSupported).toBe(expected);
  });

  it('ends within a second of an abort, with the abort reason', async () => {
    const lease = await exportLease(client, sim);
    const controller = new AbortController();
    const reason = new Error('Ctrl-C');
    setTimeout(() => controller.abort(reason), 300);
    const started = Date.now();
    await expect(lease.waitReady({ method, signal: controller.signal })).rejects.toBe(reason);
    expect(Date.now() - started).toBeLessThan(1_300);
    await lease.abort();
  });

  it('throws LeaseError when the server aborts the lease while it initializes', async () => {
    const lease = await exportLease(client, sim);
    const aborted = fetch(`${new URL(sim.url).origin}/_test/lease/${lease.ref.value}/abort`, {
      method: 'POST',
    });
    expect((await aborted).status).toBe(200);
    const error = await lease.waitReady({ method }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LeaseError);
    expect((error as LeaseError).faultType).toBe('SystemError');
  });

  it('gives up at its deadline', async () => {
    const lease = await exportLease(client, sim);
    const error = await lease.waitReady({ method, timeoutMs: 400 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LeaseError);
    expect((error as LeaseError).message).toMatch(/still 'initializing' after 400 ms/);
    await lease.abort();
  });
});

describe('NfcLease.waitReady by WaitForUpdatesEx only', () => {
  it('says so when the server has no WaitForUpdatesEx', async () => {
    const sim = await startSimulator({ binary: inject('vcsimBinary'), waitForUpdates: false });
    const client = await connectTo(sim);
    try {
      const lease = await exportLease(client, sim);
      const error = await lease.waitReady({ method: 'updates' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(VimFaultError);
      expect((error as VimFaultError).faultType).toBe('MethodNotFound');
      await lease.abort();
    } finally {
      await client.logout();
      await sim.stop();
    }
  });
});
