// WaitForUpdatesEx on an HttpNfcLease, as govmomi's lease.Wait and any careful client use it:
// a collector of its own, a filter on state/info/error, then one call per version until the
// state says what is wanted. And -no-wait-for-updates, a server without the method, where a
// client must fall back to polling RetrievePropertiesEx.

import { describe, expect, it } from 'vitest';
import { exportVm, faultOf, offVm, usePeer } from './peer-session.ts';
import { attr, elements, inners, leaseCall, moRef, RawSoapClient, text, waitLease } from './raw-soap.ts';

/** A property collector of its own with a filter on one lease's state, info and error. */
async function leaseCollector(client: RawSoapClient, lease: string): Promise<string> {
  const created = await client.call(
    `<CreatePropertyCollector xmlns="urn:vim25">${moRef('_this', 'PropertyCollector', 'propertyCollector')}</CreatePropertyCollector>`,
  );
  const pc = text(created, 'returnval') ?? '';
  await client.call(
    `<CreateFilter xmlns="urn:vim25">${moRef('_this', 'PropertyCollector', pc)}` +
      '<spec><propSet><type>HttpNfcLease</type><pathSet>state</pathSet><pathSet>info</pathSet><pathSet>error</pathSet></propSet>' +
      `<objectSet>${moRef('obj', 'HttpNfcLease', lease)}</objectSet></spec><partialUpdates>false</partialUpdates></CreateFilter>`,
  );
  return pc;
}

interface Update {
  /** undefined when the call returned no UpdateSet (maxWaitSeconds passed without a change). */
  version: string | undefined;
  /** Property name → the raw <val> element of its change, in order. */
  changes: Map<string, string>;
}

async function waitForUpdatesEx(
  client: RawSoapClient,
  pc: string,
  version: string,
  maxWaitSeconds: number,
): Promise<Update> {
  const xml = await client.call(
    `<WaitForUpdatesEx xmlns="urn:vim25">${moRef('_this', 'PropertyCollector', pc)}` +
      (version ? `<version>${version}</version>` : '') +
      `<options><maxWaitSeconds>${maxWaitSeconds}</maxWaitSeconds></options></WaitForUpdatesEx>`,
  );
  const set = elements(xml, 'returnval')[0];
  const changes = new Map<string, string>();
  if (!set) return { version: undefined, changes };
  for (const change of inners(set, 'changeSet')) {
    const name = text(change, 'name');
    if (name) changes.set(name, elements(change, 'val')[0] ?? '');
  }
  return { version: text(set, 'version'), changes };
}

const stateOf = (u: Update) => {
  const val = u.changes.get('state');
  return val === undefined ? undefined : text(val, 'val');
};

describe('WaitForUpdatesEx on a lease', () => {
  const peer = usePeer({ leaseReadyDelayMs: 1000 });

  it('reports initializing, then ready with the info, then done, each with a new version', async () => {
    const p = peer();
    const lease = await exportVm(p.client, offVm(p.inventory, 0).moref);
    const pc = await leaseCollector(p.client, lease);

    const first = await waitForUpdatesEx(p.client, pc, '', 0);
    expect(stateOf(first)).toBe('initializing');
    expect(first.version).toBeTruthy();

    const ready = await waitForUpdatesEx(p.client, pc, first.version ?? '', 10);
    expect(stateOf(ready)).toBe('ready');
    expect(inners(ready.changes.get('info') ?? '', 'deviceUrl')).toHaveLength(2);
    expect(ready.version).toBeTruthy();
    expect(ready.version).not.toBe(first.version);

    await p.client.call(leaseCall('HttpNfcLeaseComplete', lease));
    const done = await waitForUpdatesEx(p.client, pc, ready.version ?? '', 10);
    expect(stateOf(done)).toBe('done');
    expect(done.version).toBeTruthy();
    expect(new Set([first.version, ready.version, done.version]).size).toBe(3);

    await p.client.call(
      `<DestroyPropertyCollector xmlns="urn:vim25">${moRef('_this', 'PropertyCollector', pc)}</DestroyPropertyCollector>`,
    );
  });

  it('reports an abort as state error with the fault', async () => {
    const p = peer();
    const lease = await exportVm(p.client, offVm(p.inventory, 1).moref);
    await waitLease(p.client, lease);
    const pc = await leaseCollector(p.client, lease);
    const first = await waitForUpdatesEx(p.client, pc, '', 0);
    expect(stateOf(first)).toBe('ready');

    await p.client.call(leaseCall('HttpNfcLeaseAbort', lease));
    const failed = await waitForUpdatesEx(p.client, pc, first.version ?? '', 10);
    expect(stateOf(failed)).toBe('error');
    expect(attr(failed.changes.get('error') ?? '', 'fault', 'type')).toBe('RequestCanceled');
    expect(failed.version).not.toBe(first.version);
  });

  it('returns no update set when maxWaitSeconds passes without a change', async () => {
    const p = peer();
    const lease = await exportVm(p.client, offVm(p.inventory, 2).moref);
    await waitLease(p.client, lease);
    const pc = await leaseCollector(p.client, lease);
    const first = await waitForUpdatesEx(p.client, pc, '', 0);
    const started = Date.now();
    const idle = await waitForUpdatesEx(p.client, pc, first.version ?? '', 1);
    expect(idle.version).toBeUndefined();
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    await p.client.call(leaseCall('HttpNfcLeaseAbort', lease));
  });
});

describe('-no-wait-for-updates', () => {
  const peer = usePeer({ waitForUpdates: false });

  it('answers WaitForUpdatesEx and WaitForUpdates with MethodNotFound; polling still works', async () => {
    const p = peer();
    const lease = await exportVm(p.client, offVm(p.inventory, 0).moref);
    const pc = await leaseCollector(p.client, lease);

    const ex = await faultOf(waitForUpdatesEx(p.client, pc, '', 0));
    expect(ex.faultType).toBe('MethodNotFound');
    expect(text(ex.detail, 'method')).toBe('WaitForUpdatesEx');
    expect(text(ex.detail, 'receiver')).toBe(pc);

    const old = await faultOf(
      p.client.call(
        `<WaitForUpdates xmlns="urn:vim25">${moRef('_this', 'PropertyCollector', pc)}<version></version></WaitForUpdates>`,
      ),
    );
    expect(old.faultType).toBe('MethodNotFound');
    expect(text(old.detail, 'method')).toBe('WaitForUpdates');

    // The fallback a client must take: RetrievePropertiesEx until the state changes.
    expect((await waitLease(p.client, lease)).state).toBe('ready');
    await p.client.call(leaseCall('HttpNfcLeaseComplete', lease));
  });

  it('still asks for a session first', async () => {
    const { sim } = peer();
    const anonymous = new RawSoapClient(sim.url);
    const fault = await faultOf(waitForUpdatesEx(anonymous, 'propertyCollector', '', 0));
    expect(fault.faultType).toBe('NotAuthenticated');
  });
});
