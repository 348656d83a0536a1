import { inject } from 'vitest';
import { VimClient } from '../../agent/vsphere/client.ts';

/** A session on a test vCenter (the simulator), trusting its certificate as the system does. */
export function connectTo(vcenter: { url: string; username: string; password: string }): Promise<VimClient> {
  return VimClient.connect({
    url: vcenter.url,
    username: vcenter.username,
    password: vcenter.password,
    trust: { kind: 'system' },
  });
}

/** A session on the suite's shared simulator (the vcsim* values its global setup provides). */
export function connectToSimulator(): Promise<VimClient> {
  return connectTo({
    url: inject('vcsimUrl'),
    username: inject('vcsimUsername'),
    password: inject('vcsimPassword'),
  });
}
