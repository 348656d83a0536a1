import type { PlannedFile } from '../nas/space-check.ts';
import type { VimClient } from '../vsphere/client.ts';
import type { InventoryItem } from '../vsphere/inventory.ts';
import { safeName } from './export-item.ts';

/** One item of an export as it will run: its id in the package, its files, and whether it can go. */
export interface PlannedItem {
  readonly itemId: string;
  readonly item: InventoryItem;
  /** The disks' files under the transfer folder, with their provisioned and estimated sizes. */
  readonly files: readonly PlannedFile[];
  /** Why the export would refuse it today (a VM that is not powered off), if it would. */
  readonly refusal?: { readonly code: 'POWERED_ON'; readonly message: string };
}

/**
 * Bytes each VM's disk extents take in their datastores (layoutEx: `diskExtent` files), by VM
 * moref and disk backing file. A thin disk's extent is what it holds; a thick one's, its capacity.
 */
async function extentBytes(client: VimClient): Promise<Map<string, Map<string, number>>> {
  const vms = await client.listByType(['VirtualMachine'], ['layoutEx.file']);
  const out = new Map<string, Map<string, number>>();
  for (const vm of vms) {
    const files = new Map<string, number>();
    for (const f of vm.props.get('layoutEx.file')?.children ?? []) {
      if (f.str('type') !== 'diskExtent') continue;
      const name = f.str('name');
      if (name) files.set(name, Number(f.str('size') ?? 0));
    }
    out.set(vm.obj.value, files);
  }
  return out;
}

/** The extent bytes of the disk whose descriptor is `fileName` (`[ds] vm/disk.vmdk`): `disk-flat.vmdk`, `disk-s001.vmdk`, …, or the file itself. */
function diskExtentBytes(
  extents: ReadonlyMap<string, number> | undefined,
  fileName: string,
): number | undefined {
  if (!extents || !fileName) return undefined;
  const base = fileName.replace(/\.vmdk$/i, '');
  let sum = 0;
  let found = false;
  for (const [name, size] of extents) {
    if (name === fileName || name.startsWith(`${base}-`)) {
      sum += size;
      found = true;
    }
  }
  return found && sum > 0 ? sum : undefined;
}

/**
 * The plan of an export of `items` (in order: `item-1`, …), read from the vCenter without
 * changing anything: the files each item will write, with provisioned (capacity) and estimated
 * (datastore extents, capped by capacity; capacity when unknown) sizes, and the items the export
 * would refuse. `poweredOnAllowed` (default false) accepts VMs that run (exported live from a snapshot).
 */
export async function planExport(
  client: VimClient,
  inventory: readonly InventoryItem[],
  items: readonly InventoryItem[],
  options: { readonly poweredOnAllowed?: boolean } = {},
): Promise<PlannedItem[]> {
  const extents = await extentBytes(client);
  return items.map((item, index) => {
    const itemId = `item-${index + 1}`;
    // A vApp's disks are its member VMs'; their extents are listed under each member.
    const members =
      item.kind === 'vapp'
        ? inventory.filter((i) => i.kind !== 'vapp' && i.path.startsWith(`${item.path}/`))
        : [item];
    const extentsOf = (fileName: string) => {
      for (const m of members) {
        const bytes = diskExtentBytes(extents.get(m.ref.value), fileName);
        if (bytes !== undefined) return bytes;
      }
      return undefined;
    };
    const base = safeName(item.name);
    const files = item.disks.map(
      (d, i): PlannedFile => ({
        path: `${itemId}/${base}-disk-${i}.vmdk`,
        provisionedBytes: d.capacityBytes,
        estimatedBytes: Math.min(d.capacityBytes, extentsOf(d.fileName) ?? d.capacityBytes),
      }),
    );
    // As the export decides (export-item.ts): a running VM goes live unless cold only; a running
    // template never does; a vApp goes only with all its VMs powered off.
    const running = members.filter((m) => m.powerState !== 'poweredOff');
    const message =
      running.length === 0
        ? undefined
        : item.kind === 'vapp'
          ? `${item.path} has VMs that run (${running.map((m) => m.name).join(', ')}); a vApp is exported only with all of them powered off.`
          : item.kind === 'template' || !options.poweredOnAllowed
            ? `${item.path} is ${item.powerState}; shut down the guest (or power the VM off) before the export${item.kind === 'template' ? '' : ', or drop --cold-only to export it live from a snapshot'}.`
            : undefined;
    return { itemId, item, files, ...(message ? { refusal: { code: 'POWERED_ON' as const, message } } : {}) };
  });
}
