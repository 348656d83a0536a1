import { AgentError } from '../errors.ts';
import type { ObjectContent, VimClient } from './client.ts';
import type { Moref } from './wire/serialize.ts';
import type { XmlNode } from './wire/xml.ts';

export interface DiskInfo {
  readonly label: string;
  readonly capacityBytes: number;
  /** Datastore path of the backing file, e.g. `[datastore1] vm/vm.vmdk`. */
  readonly fileName: string;
}

export interface InventoryItem {
  readonly kind: 'vm' | 'template' | 'vapp';
  readonly name: string;
  /** Inventory path, e.g. `/DC0/vm/web/web-01`; a vApp's VMs sit under the vApp's path. */
  readonly path: string;
  readonly ref: Moref;
  readonly powerState?: string;
  readonly guest?: string;
  readonly disks: readonly DiskInfo[];
  /** Sum of disk capacities: the most the export can write for this item. */
  readonly sizeBytes: number;
  readonly networks: readonly string[];
  /** For a vApp: the names of its VMs. */
  readonly vms?: readonly string[];
}

const key = (m: Moref) => `${m.type}:${m.value}`;

/** Disks of a VM from its `config.hardware.device` property. */
export function disksOf(devices: XmlNode | undefined): DiskInfo[] {
  if (!devices) return [];
  return devices.children
    .filter((d) => d.typeName === 'VirtualDisk')
    .map((d) => {
      const bytes = d.str('capacityInBytes');
      const kb = d.str('capacityInKB');
      return {
        label: d.path('deviceInfo', 'label')?.text ?? `disk ${d.str('key')}`,
        capacityBytes: bytes !== undefined ? Number(bytes) : Number(kb ?? 0) * 1024,
        fileName: d.path('backing', 'fileName')?.text ?? '',
      };
    });
}

/** Reads VMs, templates and vApps with their paths, disks, networks and power state. */
export async function readInventory(client: VimClient): Promise<InventoryItem[]> {
  const [containers, vms, vapps, networks] = await Promise.all([
    client.listByType(['Folder', 'Datacenter'], ['name', 'parent']),
    client.listByType(
      ['VirtualMachine'],
      [
        'name',
        'parent',
        'parentVApp',
        'config.template',
        'config.guestFullName',
        'config.hardware.device',
        'runtime.powerState',
        'network',
      ],
    ),
    client.listByType(['VirtualApp'], ['name', 'parentFolder', 'vm']),
    client.listByType(['Network', 'DistributedVirtualPortgroup'], ['name']),
  ]);
  const parents = new Map<string, { name: string; parent?: Moref }>();
  for (const c of [...containers, ...vapps]) {
    const parent = c.props.get('parent') ?? c.props.get('parentFolder');
    parents.set(key(c.obj), {
      name: c.props.get('name')?.text ?? c.obj.value,
      ...(parent ? { parent: parent.moref } : {}),
    });
  }
  const pathOf = (obj: Moref | undefined): string => {
    const names: string[] = [];
    for (let at = obj; at; ) {
      const p = parents.get(key(at));
      if (!p?.parent) break; // the root folder has no name in paths
      names.unshift(p.name);
      at = p.parent;
    }
    return `/${names.join('/')}`;
  };
  const networkNames = new Map(networks.map((n) => [key(n.obj), n.props.get('name')?.text ?? n.obj.value]));
  const vmName = new Map(vms.map((v) => [key(v.obj), v.props.get('name')?.text ?? v.obj.value]));
  const items: InventoryItem[] = vms.map((v: ObjectContent) => {
    const name = v.props.get('name')?.text ?? v.obj.value;
    const container = v.props.get('parentVApp')?.moref ?? v.props.get('parent')?.moref;
    const disks = disksOf(v.props.get('config.hardware.device'));
    const guest = v.props.get('config.guestFullName')?.text;
    return {
      kind: v.props.get('config.template')?.text === 'true' ? 'template' : 'vm',
      name,
      path: `${pathOf(container)}/${name}`.replace(/^\/\//, '/'),
      ref: v.obj,
      powerState: v.props.get('runtime.powerState')?.text ?? 'unknown',
      ...(guest ? { guest } : {}),
      disks,
      sizeBytes: disks.reduce((s, d) => s + d.capacityBytes, 0),
      networks: (v.props.get('network')?.children ?? []).map((n) => networkNames.get(key(n.moref)) ?? n.text),
    };
  });
  for (const a of vapps) {
    const name = a.props.get('name')?.text ?? a.obj.value;
    const members = (a.props.get('vm')?.children ?? []).map((m) => m.moref);
    const memberItems = items.filter((i) => members.some((m) => key(m) === key(i.ref)));
    items.push({
      kind: 'vapp',
      name,
      path: pathOf(a.obj),
      ref: a.obj,
      disks: memberItems.flatMap((i) => i.disks),
      sizeBytes: memberItems.reduce((s, i) => s + i.sizeBytes, 0),
      networks: [...new Set(memberItems.flatMap((i) => i.networks))],
      vms: members.map((m) => vmName.get(key(m)) ?? m.value),
    });
  }
  return items.sort((x, y) => x.path.localeCompare(y.path));
}

export class ItemNotFoundError extends AgentError<'ITEM_NOT_FOUND'> {
  constructor(query: string, candidates: readonly string[]) {
    const hint = candidates.length > 0 ? ` Close matches: ${candidates.slice(0, 5).join(', ')}.` : '';
    super(
      'ITEM_NOT_FOUND',
      `No VM, template or vApp named '${query}' in this vCenter.${hint} \`odt inventory\` lists them all.`,
    );
    this.name = 'ItemNotFoundError';
  }
}

export class AmbiguousItemError extends AgentError<'ITEM_AMBIGUOUS'> {
  constructor(query: string, matches: readonly string[]) {
    super(
      'ITEM_AMBIGUOUS',
      `'${query}' names ${matches.length} items: ${matches.join(', ')}. Give the inventory path instead.`,
    );
    this.name = 'AmbiguousItemError';
  }
}

/** Finds an item by inventory path or by unique name. */
export function findItem(inventory: readonly InventoryItem[], query: string): InventoryItem {
  const byPath = inventory.find((i) => i.path === query);
  if (byPath) return byPath;
  const byName = inventory.filter((i) => i.name === query);
  if (byName.length === 1) return byName[0]!;
  if (byName.length > 1)
    throw new AmbiguousItemError(
      query,
      byName.map((i) => i.path),
    );
  const lower = query.toLowerCase();
  throw new ItemNotFoundError(
    query,
    inventory
      .filter((i) => i.name.toLowerCase().includes(lower) || lower.includes(i.name.toLowerCase()))
      .map((i) => i.path),
  );
}
