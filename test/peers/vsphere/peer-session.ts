// What the vSphere peer's own tests share: a logged-in session on a simulator (the globalSetup's
// shared one, or one a describe block starts with flags of its own), the export most of them begin
// with, and small readers of what comes back (faults, certificates, a cut download).

import type { IncomingMessage } from 'node:http';
import { connect, type PeerCertificate } from 'node:tls';
import { afterAll, beforeAll, expect, inject } from 'vitest';
import { attr, type LeaseSnapshot, moRef, RawSoapClient, SoapFault, text, waitLease } from './raw-soap.ts';
import {
  type Inventory,
  type InventoryVm,
  type RunningSimulator,
  type SimulatorHandle,
  type SimulatorOptions,
  sharedSimulator,
  startSimulator,
} from './simulator.ts';

/** A simulator, a client logged in to it, and the inventory it started with. */
export interface PeerSession<Sim extends SimulatorHandle | RunningSimulator = RunningSimulator> {
  sim: Sim;
  client: RawSoapClient;
  inventory: Inventory;
}

/** Logs in to a started simulator; over TLS the client pins pinSha256 (the certificate it reported). */
async function logIn<Sim extends SimulatorHandle | RunningSimulator>(
  sim: Sim,
  pinSha256?: string,
): Promise<PeerSession<Sim>> {
  const client = new RawSoapClient(sim.url, { pinSha256 });
  await client.login(sim.username, sim.password);
  return { sim, client, inventory: await sim.readInventory() };
}

/**
 * The globalSetup's shared simulator (or a fresh one when the file runs without it, see
 * sharedSimulator), logged in. The caller stops it with sim.stop(), which spares the shared one.
 */
export async function sharedSession(): Promise<PeerSession<SimulatorHandle>> {
  const sim = await sharedSimulator({
    url: inject('vcsimUrl'),
    username: inject('vcsimUsername'),
    password: inject('vcsimPassword'),
    dataDir: inject('vcsimDataDir'),
    inventoryPath: inject('vcsimInventoryPath'),
    nfcUrl: inject('vcsimNfcUrl'),
    binary: inject('vcsimBinary'),
  });
  return logIn(sim);
}

/**
 * Starts a simulator with these flags for the enclosing describe block (beforeAll), logs in, and
 * stops it afterwards (afterAll). Returns a getter for use inside the block's tests.
 */
export function usePeer(opts: SimulatorOptions): () => PeerSession {
  let peer: PeerSession | undefined;
  beforeAll(async () => {
    const sim = await startSimulator({ binary: inject('vcsimBinary'), ...opts });
    peer = await logIn(sim, sim.thumbprint);
  });
  afterAll(async () => {
    await peer?.sim.stop();
  });
  return () => {
    if (!peer) throw new Error('the simulator did not start');
    return peer;
  };
}

/** The n-th powered-off VM that is not a template: one per test, so that leases do not interfere. */
export function offVm(inventory: Inventory, n: number): InventoryVm {
  const vm = inventory.vms.filter((v) => v.powerState === 'poweredOff' && !v.template)[n];
  if (!vm) throw new Error(`no powered-off VM #${n}`);
  return vm;
}

/** ExportVm; resolves with the id of the HttpNfcLease it returns (a fault rejects as SoapFault). */
export async function exportVm(client: RawSoapClient, moref: string): Promise<string> {
  const xml = await client.call(
    `<ExportVm xmlns="urn:vim25">${moRef('_this', 'VirtualMachine', moref)}</ExportVm>`,
  );
  const lease = text(xml, 'returnval');
  const type = attr(xml, 'returnval', 'type');
  if (!lease || type !== 'HttpNfcLease') throw new Error(`ExportVm returned no lease (type ${type})`);
  return lease;
}

/** Exports the n-th powered-off VM (see offVm) and waits for its lease to be ready. */
export async function readyExport(
  peer: PeerSession,
  n: number,
): Promise<{ vm: InventoryVm; lease: string; snap: LeaseSnapshot }> {
  const vm = offVm(peer.inventory, n);
  const lease = await exportVm(peer.client, vm.moref);
  const snap = await waitLease(peer.client, lease);
  expect(snap.state).toBe('ready');
  return { vm, lease, snap };
}

/** The SoapFault a call rejects with; anything else (or success) fails the test. */
export async function faultOf(promise: Promise<unknown>): Promise<SoapFault> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof SoapFault) return err;
    throw err;
  }
  throw new Error('expected a SOAP fault');
}

/** The certificate a TLS listener presents (not verified: the test compares it with what was reported). */
export function peerCertificate(host: string, port: number): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, rejectUnauthorized: false }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert);
    });
    socket.on('error', reject);
  });
}

/**
 * Reads a response to its end or its breakage ("aborted", ECONNRESET: a server cutting the
 * stream, which is what the callers look for), calling onFirstChunk once after the first chunk.
 * complete: the body ended as its framing says, without an error.
 */
export async function drain(
  res: IncomingMessage,
  onFirstChunk?: () => Promise<void>,
): Promise<{ bytes: number; complete: boolean; error: unknown }> {
  let bytes = 0;
  let first = true;
  let error: unknown;
  try {
    for await (const chunk of res) {
      bytes += (chunk as Buffer).length;
      if (first && onFirstChunk) {
        first = false;
        await onFirstChunk();
      }
    }
  } catch (err) {
    error = err;
  }
  return { bytes, complete: res.complete && error === undefined, error };
}
