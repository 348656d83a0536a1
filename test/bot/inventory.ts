/**
 * A site's inventory the way it reaches the bot in production: an export agent enrolls with a
 * one-time code over the signed agent API and reports its vCenter inventory (the shape of
 * agent/vsphere/inventory.ts, as agent/runtime/roles.ts sends it).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AgentIdentity, initAgentIdentity } from '../../agent/identity/agent-identity.ts';
import { AgentApiClient } from '../../agent/runtime/api-client.ts';
import type { ControlPlane } from '../../local/control-plane.ts';

export interface ReportedItem {
  readonly kind: 'vm' | 'template' | 'vapp';
  readonly name: string;
  readonly path: string;
  readonly moref: string;
  readonly powerState?: string;
  readonly disks: readonly { label: string; capacityBytes: number; fileName: string }[];
  readonly sizeBytes: number;
  readonly networks: readonly string[];
  readonly vms?: readonly string[];
}

let morefs = 0;
/** One VM, template or vApp with one disk of `bytes`, under `/DC0/vm[/folder]`. */
export function reported(kind: ReportedItem['kind'], name: string, bytes: number, folder = ''): ReportedItem {
  const path = `/DC0/vm${folder ? `/${folder}` : ''}/${name}`;
  return {
    kind,
    name,
    path,
    moref: kind === 'vapp' ? `resgroup-v${++morefs}` : `vm-${++morefs}`,
    ...(kind === 'vapp' ? {} : { powerState: kind === 'template' ? 'poweredOff' : 'poweredOn' }),
    disks: [{ label: 'Hard disk 1', capacityBytes: bytes, fileName: `[datastore1] ${name}/${name}.vmdk` }],
    sizeBytes: bytes,
    networks: ['VM Network'],
    ...(kind === 'vapp' ? { vms: [`${name}-vm`] } : {}),
  };
}

/** What startHarness reports for site acme-dc1 unless told otherwise. */
export const defaultInventory: readonly ReportedItem[] = [
  reported('vm', 'web-01', 40e9),
  reported('vm', 'db-01', 120e9),
  reported('template', 'ubuntu-22-tmpl', 20e9),
  reported('vapp', 'erp', 300e9),
];

const identities = new Map<string, Promise<AgentIdentity>>();
/** One key pair per name for the whole run: making RSA keys is the slow part. */
function identity(name: string): Promise<AgentIdentity> {
  let id = identities.get(name);
  if (!id) {
    id = initAgentIdentity(join(mkdtempSync(join(tmpdir(), 'odt-bot-agent-')), name), {
      commonName: name,
    }).then((r) => r.identity);
    identities.set(name, id);
  }
  return id;
}

/**
 * Enrolls an agent for `site` with a code from the registry and, when `items` is given, has it
 * report them over the agent API as its site's inventory. Returns the agent's client.
 */
export async function enrollExportAgent(
  plane: ControlPlane,
  site: string,
  items: readonly unknown[] | undefined,
  name = `${site}-export`,
): Promise<AgentApiClient> {
  const id = await identity(name);
  const code = await plane.registry.issueCode(site, 60_000, new Date());
  const client = new AgentApiClient({ server: plane.agentApi.url, keyPem: id.keyPem });
  await client.enroll(code.code, id.certPem, name);
  if (items) await client.reportInventory(items);
  return client;
}
