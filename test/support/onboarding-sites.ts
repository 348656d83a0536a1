import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RunningFakeVcd, startFakeVcd } from '../peers/vcd/fake-vcd.ts';
import { type RunningSimulator, type SimulatorOptions, startSimulator } from '../peers/vsphere/simulator.ts';
import { markNas } from './nas.ts';

/** The provider user of the fake vCloud Director startOnboardingSites starts (password in ODT_VCD_PASSWORD). */
export const vcdUsername = 'admin@System';
export const vcdPassword = 'vcd-pass';

/** Both sides of a transfer that ends in vCloud Director, and a work folder for the parties and the NAS. */
export interface OnboardingSites {
  /** The customer's vCenter, where the export reads. */
  customer: RunningSimulator;
  /** The provider's vCenter (no vApps, no templates of its own), where the import writes. */
  provider: RunningSimulator;
  /** A fake vCloud Director with the provider's vCenter attached. */
  vcd: RunningFakeVcd;
  /** A new temporary folder, removed by stop(). */
  work: string;
  /** `<work>/nas`, the NAS folder the tests export to. */
  nas: string;
  /**
   * The `odt import` flags that onboard into the fake vCD's VDC acme-vdc; with placeAndPowerOn,
   * templates also go into acme-catalog, VMs onto acme-net, and all of them are powered on.
   */
  vcdArgs(options?: { placeAndPowerOn?: boolean }): string[];
  /** The environment of an `odt import` into the provider's vCenter and vCD: both passwords. */
  importEnv(): Record<string, string>;
  /** Stops all three servers and removes the work folder. */
  stop(): Promise<void>;
}

/**
 * Starts the customer's vCenter (with customerOptions), the provider's, the fake vCD in front of
 * the provider's, and a work folder named after workPrefix. What started is stopped again when a
 * later step fails.
 */
export async function startOnboardingSites(
  binary: string | undefined,
  workPrefix: string,
  customerOptions: SimulatorOptions = {},
): Promise<OnboardingSites> {
  const started: { stop(): Promise<void> }[] = [];
  let work: string | undefined;
  const stop = async () => {
    for (const s of started.reverse()) await s.stop();
    if (work) await rm(work, { recursive: true, force: true });
  };
  try {
    const customer = await startSimulator({ binary, ...customerOptions });
    started.push(customer);
    const provider = await startSimulator({ binary, apps: 0, templates: 0 });
    started.push(provider);
    const vcd = await startFakeVcd({
      username: vcdUsername,
      password: vcdPassword,
      vcenter: { url: provider.url, username: provider.username, password: provider.password },
    });
    started.push(vcd);
    work = await mkdtemp(join(tmpdir(), workPrefix));
    // A NAS marked as `odt nas init` does: the export agents of these tests write to it (#19).
    await markNas(join(work, 'nas'));
    return {
      customer,
      provider,
      vcd,
      work,
      nas: join(work, 'nas'),
      vcdArgs: (options = {}) => [...vcdArgs(vcd), ...(options.placeAndPowerOn ? placeAndPowerOn : [])],
      importEnv: () => ({ ODT_VCENTER_PASSWORD: provider.password, ODT_VCD_PASSWORD: vcdPassword }),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The `odt import` flags that onboard into the fake vCD's VDC acme-vdc as vcdUsername. */
export function vcdArgs(vcd: { url: string }): string[] {
  return ['--vcd', vcd.url, '--vcd-username', vcdUsername, '--vdc', 'acme-vdc'];
}

/** With vcdArgs: templates go into acme-catalog, VMs onto acme-net, and all of them are powered on. */
export const placeAndPowerOn: readonly string[] = [
  '--catalog',
  'acme-catalog',
  '--vdc-network',
  'acme-net',
  '--power-on',
];
