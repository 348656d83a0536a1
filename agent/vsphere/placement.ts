import { AgentError } from '../errors.ts';
import type { VimClient } from './client.ts';
import type { Moref } from './wire/serialize.ts';
import type { XmlNode } from './wire/xml.ts';

/** Where imported VMs go; every field optional, with the defaults an ODT node would pick. */
export interface PlacementInput {
  readonly datacenter?: string;
  /** Datastore name; default: the accessible one with the most free space. */
  readonly datastore?: string;
  /** Inventory path of a resource pool, e.g. `/DC0/host/DC0_C0/Resources`; default the first cluster's root pool. */
  readonly pool?: string;
  /** Inventory path of a VM folder; default the datacenter's VM folder. */
  readonly folder?: string;
  /** The port group imported VMs attach to first. Default `VM Network`. */
  readonly network?: string;
}

export interface Placement {
  readonly datacenter: { readonly ref: Moref; readonly name: string };
  readonly datastore: { readonly ref: Moref; readonly name: string; readonly freeBytes: number };
  readonly pool: Moref;
  readonly folder: Moref;
  readonly network: { readonly ref: Moref; readonly name: string };
  /** Hosts that can run the pool's VMs (the cluster's), with whether each has the network. */
  readonly hosts: readonly { readonly name: string; readonly hasNetwork: boolean }[];
}

export class PlacementError extends AgentError<'PLACEMENT'> {
  constructor(message: string) {
    super('PLACEMENT', message);
    this.name = 'PlacementError';
  }
}

const key = (m: Moref) => `${m.type}:${m.value}`;

/** Resolves names and paths to managed objects, and says which one is missing and what exists. */
export async function resolvePlacement(client: VimClient, input: PlacementInput = {}): Promise<Placement> {
  const networkName = input.network ?? 'VM Network';
  const [dcs, stores, networks, clusters, hosts] = await Promise.all([
    client.listByType(['Datacenter'], ['name', 'vmFolder']),
    client.listByType(['Datastore'], ['name', 'summary.freeSpace', 'summary.accessible', 'parent']),
    client.listByType(['Network', 'DistributedVirtualPortgroup'], ['name']),
    client.listByType(['ClusterComputeResource', 'ComputeResource'], ['name', 'resourcePool', 'host']),
    client.listByType(['HostSystem'], ['name', 'network', 'configManager.networkSystem']),
  ]);
  const dc = input.datacenter ? dcs.find((d) => d.props.get('name')?.text === input.datacenter) : dcs[0];
  if (!dc) {
    throw new PlacementError(
      `No datacenter '${input.datacenter ?? ''}'. Datacenters: ${dcs.map((d) => d.props.get('name')?.text).join(', ') || 'none'}.`,
    );
  }
  const dcName = dc.props.get('name')!.text;
  const firstCluster = clusters.find((c) => c.obj.type === 'ClusterComputeResource') ?? clusters[0];
  const examples: Record<string, string> = {
    'resource pool': `/${dcName}/host/${firstCluster?.props.get('name')?.text ?? '<cluster>'}/Resources`,
    'VM folder': `/${dcName}/vm`,
  };
  const find = async (path: string, what: string, types: readonly string[]): Promise<Moref> => {
    const res = await client.invoke('FindByInventoryPath', {
      _this: client.serviceContent.searchIndex,
      inventoryPath: path.replace(/^\//, ''),
    });
    const ref = res.child('returnval');
    if (!ref) {
      throw new PlacementError(
        `No ${what} at '${path}'; give its inventory path as vCenter shows it, e.g. ${examples[what]}.`,
      );
    }
    if (!types.includes(ref.moref.type)) {
      throw new PlacementError(
        `'${path}' is a ${ref.moref.type}, not a ${what}; give a ${what}'s path, e.g. ${examples[what]}.`,
      );
    }
    return ref.moref;
  };

  const accessible = stores.filter((s) => s.props.get('summary.accessible')?.text !== 'false');
  const ds = input.datastore
    ? stores.find((s) => s.props.get('name')?.text === input.datastore)
    : [...accessible].sort(
        (a, b) =>
          Number(b.props.get('summary.freeSpace')?.text ?? 0) -
          Number(a.props.get('summary.freeSpace')?.text ?? 0),
      )[0];
  if (!ds) {
    throw new PlacementError(
      `No datastore '${input.datastore ?? ''}'. Datastores: ${stores.map((s) => s.props.get('name')?.text).join(', ') || 'none'}.`,
    );
  }

  let pool: Moref;
  let hostRefs: Moref[];
  if (input.pool) {
    pool = await find(input.pool, 'resource pool', ['ResourcePool', 'VirtualApp']);
    const owner = clusters.find((c) => poolIsUnder(pool, c, input.pool!));
    hostRefs = (owner?.props.get('host')?.children ?? []).map((h) => h.moref);
  } else {
    const cluster = clusters.find((c) => c.obj.type === 'ClusterComputeResource') ?? clusters[0];
    if (!cluster) throw new PlacementError('This vCenter has no cluster or host to import into.');
    pool = cluster.props.get('resourcePool')!.moref;
    hostRefs = (cluster.props.get('host')?.children ?? []).map((h) => h.moref);
  }
  const folder = input.folder
    ? await find(input.folder, 'VM folder', ['Folder'])
    : dc.props.get('vmFolder')!.moref;
  if (input.folder) {
    // A host or datastore folder is a Folder too, but holds no VMs.
    const kinds = (await client.properties(folder, 'Folder', ['childType'])).get('childType');
    if (!(kinds?.children ?? []).some((c) => c.text === 'VirtualMachine')) {
      throw new PlacementError(
        `'${input.folder}' is not a VM folder (it holds ${(kinds?.children ?? []).map((c) => c.text).join(', ') || 'nothing'}); give a VM folder's path, e.g. ${examples['VM folder']}.`,
      );
    }
  }

  const net = networks.find((n) => n.props.get('name')?.text === networkName);
  if (!net) {
    throw new PlacementError(
      `No port group '${networkName}'. Imported VMs attach to it first; create it on every host (a standard port group is enough) or pass --network. Networks: ${networks.map((n) => n.props.get('name')?.text).join(', ')}.`,
    );
  }
  const hostInfo = await Promise.all(
    hostRefs.map(async (h) => {
      const host = hosts.find((x) => key(x.obj) === key(h));
      const name = host?.props.get('name')?.text ?? h.value;
      const nets = (host?.props.get('network')?.children ?? []).map((n) => key(n.moref));
      if (nets.includes(key(net.obj))) return { name, hasNetwork: true };
      // A standard port group is defined per host: the host has it when its own network
      // configuration (HostNetworkSystem.networkInfo) names it, even before vCenter lists it.
      const ns = host?.props.get('configManager.networkSystem');
      if (net.obj.type !== 'Network' || !ns) return { name, hasNetwork: false };
      const info = await client
        .properties(ns.moref, 'HostNetworkSystem', ['networkInfo.portgroup'])
        .catch(() => new Map<string, XmlNode>());
      const groups = info.get('networkInfo.portgroup')?.children ?? [];
      return { name, hasNetwork: groups.some((pg) => pg.path('spec', 'name')?.text === networkName) };
    }),
  );
  return {
    datacenter: { ref: dc.obj, name: dcName },
    datastore: {
      ref: ds.obj,
      name: ds.props.get('name')!.text,
      freeBytes: Number(ds.props.get('summary.freeSpace')?.text ?? 0),
    },
    pool,
    folder,
    network: { ref: net.obj, name: networkName },
    hosts: hostInfo,
  };
}

/** A pool path `/DC/host/<cluster>/Resources[/…]` belongs to the cluster of that name. */
function poolIsUnder(
  _pool: Moref,
  cluster: { props: ReadonlyMap<string, { text: string }> },
  path: string,
): boolean {
  const name = cluster.props.get('name')?.text;
  return name !== undefined && path.split('/').includes(name);
}
