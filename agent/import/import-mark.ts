/**
 * Which VMs in the provider's vCenter an import made, and whether it finished them: a custom
 * attribute (vCenter's CustomFieldsManager, "Custom Attributes" in the client) named
 * `sneakernet.import`, set to `importing <transfer> <item>` once the import lease hands over the
 * new VM, and to `imported <transfer> <item>` once the item is whole (uploaded, completed, a
 * template marked). Unlike the ODT node's journal it lives with the VM, so a rerun from another
 * state folder, or another node, still tells a half-import it may remove from a finished VM it
 * must keep, and from somebody else's VM of the same name.
 */
import type { VimClient } from '../vsphere/client.ts';
import type { Moref } from '../vsphere/wire/serialize.ts';
import { VimFaultError } from '../vsphere/wire/soap-connection.ts';
import type { XmlNode } from '../vsphere/wire/xml.ts';

export const markField = 'sneakernet.import';

export type ImportMark =
  | { readonly state: 'importing' | 'imported'; readonly transferId: string; readonly itemId: string }
  | undefined;

const keys = new WeakMap<VimClient, Promise<number>>();

/**
 * The key of the `sneakernet.import` attribute on VirtualMachine, defined on first use (which
 * takes the privilege to manage custom attributes; `odt node check` tries it).
 */
export function fieldKey(client: VimClient): Promise<number> {
  let key = keys.get(client);
  if (!key) {
    key = findOrAddField(client);
    key.catch(() => keys.delete(client));
    keys.set(client, key);
  }
  return key;
}

async function findOrAddField(client: VimClient): Promise<number> {
  const manager = customFields(client);
  const find = async () => {
    const props = await client.properties(manager, 'CustomFieldsManager', ['field']);
    const def = props
      .get('field')
      ?.children.find(
        (d) =>
          d.str('name') === markField &&
          (d.str('managedObjectType') === undefined || d.str('managedObjectType') === 'VirtualMachine'),
      );
    return def ? Number(def.str('key')) : undefined;
  };
  const found = await find();
  if (found !== undefined) return found;
  try {
    const res = await client.invoke('AddCustomFieldDef', {
      _this: manager,
      name: markField,
      moType: 'VirtualMachine',
    });
    return Number(res.child('returnval')!.str('key'));
  } catch (error) {
    // Another import defined it meanwhile.
    if (error instanceof VimFaultError && error.faultType === 'DuplicateName') {
      const again = await find();
      if (again !== undefined) return again;
    }
    throw error;
  }
}

function customFields(client: VimClient): Moref {
  const manager = client.serviceContent.customFieldsManager;
  if (!manager) {
    throw new Error(
      'This vCenter has no CustomFieldsManager (an ESXi host answers without one): import into a vCenter.',
    );
  }
  return manager;
}

/** Sets the VM's mark. */
export async function setMark(client: VimClient, vm: Moref, mark: NonNullable<ImportMark>): Promise<void> {
  await client.invoke('SetField', {
    _this: customFields(client),
    entity: vm,
    key: await fieldKey(client),
    value: `${mark.state} ${mark.transferId} ${mark.itemId}`,
  });
}

/** The VM's mark; undefined for a VM no import marked (or marked with something else). */
export async function readMark(client: VimClient, vm: Moref): Promise<ImportMark> {
  const key = await fieldKey(client);
  const props = await client.properties(vm, 'VirtualMachine', ['customValue']);
  // vCenter holds one value per key; govmomi's simulator appends one per SetField: the last is
  // the current one in both.
  const value = (props.get('customValue')?.children ?? [])
    .findLast((v: XmlNode) => Number(v.str('key')) === key)
    ?.str('value');
  const m = /^(importing|imported) (\S+) (\S+)$/.exec(value ?? '');
  return m ? { state: m[1] as 'importing' | 'imported', transferId: m[2]!, itemId: m[3]! } : undefined;
}
