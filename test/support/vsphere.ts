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
