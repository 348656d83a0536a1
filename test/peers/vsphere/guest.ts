// A test plays the guest of a running VM and looks at the vCenter without SOAP, through the
// peer's test control endpoint (vcsim/guest.go; not part of the vSphere API).

import { httpRequest } from './raw-soap.ts';

/** Where the control endpoint is: the SDK URL and, over TLS, the certificate it reported. */
export interface ControlTarget {
  readonly url: string;
  readonly thumbprint?: string | undefined;
}

export interface VmStatus {
  moref: string;
  name: string;
  powerState: string;
  template: boolean;
  toolsRunning: boolean;
  changeTrackingEnabled: boolean;
  snapshots: { moref: string; name: string; quiesced: boolean }[];
  disks: { key: number; changeId: string }[];
}

/** GET /_test/vms: every VM and template as the peer has it now (clones included). */
export async function vmStatuses(sim: ControlTarget): Promise<VmStatus[]> {
  const res = await httpRequest(new URL('/_test/vms', sim.url).toString(), { pinSha256: sim.thumbprint });
  if (res.status !== 200) throw new Error(`GET /_test/vms: HTTP ${res.status} ${res.body.toString()}`);
  return JSON.parse(res.body.toString('utf8')) as VmStatus[];
}

/**
 * Writes `data` into disk `disk` (0-based, device order) of a VM at `offset`, as its guest would;
 * resolves with the disk's changeId after the write ('' while change tracking is off).
 */
export async function guestWrite(
  sim: ControlTarget,
  vm: string,
  disk: number,
  offset: number,
  data: Buffer,
): Promise<string> {
  const path = `/_test/vm/${encodeURIComponent(vm)}/disk/${disk}/write?offset=${offset}`;
  const res = await httpRequest(new URL(path, sim.url).toString(), {
    method: 'POST',
    body: data,
    pinSha256: sim.thumbprint,
  });
  if (res.status !== 200) throw new Error(`POST ${path}: HTTP ${res.status} ${res.body.toString()}`);
  return (JSON.parse(res.body.toString('utf8')) as { changeId: string }).changeId;
}
