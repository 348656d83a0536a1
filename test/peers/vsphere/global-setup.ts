// vitest globalSetup: builds the vSphere peer once, starts one simulator with the default model
// (see README.md) for every test file to share, and stops it after the run.
//
// Tests read it with inject('vcsimUrl') etc.; tests that need other flags (short lease timeouts,
// TLS, other credentials) start their own with startSimulator({ binary: inject('vcsimBinary') }).

import type { TestProject } from 'vitest/node';
import { buildSimulator, type RunningSimulator, startSimulator } from './simulator.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Path of the built simulator binary, to start more simulators without rebuilding. */
    vcsimBinary: string;
    /** SDK URL of the shared simulator, without credentials (http://127.0.0.1:PORT/sdk). */
    vcsimUrl: string;
    vcsimUsername: string;
    vcsimPassword: string;
    /** Its data directory (datastores, uploads/, inventory.json). */
    vcsimDataDir: string;
    vcsimInventoryPath: string;
    /** Base URL of its separate NFC listener, or '' when it serves NFC directly (see NfcHost). */
    vcsimNfcUrl: string;
  }
}

let shared: RunningSimulator | undefined;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const binary = await buildSimulator();
  shared = await startSimulator({ binary });
  project.provide('vcsimBinary', binary);
  project.provide('vcsimUrl', shared.url);
  project.provide('vcsimUsername', shared.username);
  project.provide('vcsimPassword', shared.password);
  project.provide('vcsimDataDir', shared.dataDir);
  project.provide('vcsimInventoryPath', shared.inventoryPath);
  project.provide('vcsimNfcUrl', shared.nfcUrl ?? '');

  return async () => {
    await shared?.stop();
    shared = undefined;
  };
}
