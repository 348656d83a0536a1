/**
 * The names an import gives each item in the provider's vCenter and in vCloud Director
 * (docs/decisions.md, "Imported VM names"). They are worked out from the signed manifest and the
 * item descriptors it covers, nothing else, so every run of the same import (and every node) names
 * an item the same way: the journal, the VM's mark and the leftover check find it again by name.
 *
 * - A VM is `<name> (<transfer>)` in vCenter and `<name>` in vCloud Director, as before.
 * - A VM whose name another VM of the transfer also has (case ignored), or that would not fit
 *   vCenter's limit, also carries its item's id: `web-01 (tr-… item-2)` and `web-01 (item-2)`;
 *   a vApp member its item's id and its place in the vApp: `db (tr-… item-3.1)`. A name that has
 *   to be shortened is cut at the end of the original name (marked `…`), never in the suffix.
 * - An item's vApp (or catalog template, and the vApp instantiated from it) in vCloud Director is
 *   named after the item, with the item's id when another item has the same name: `web-01 (item-2)`.
 */
import type { ManifestItem } from '../package/transfer-manifest.ts';
import { type SplitVApp, splitVApp } from './ovf-split.ts';

/**
 * vCenter's longest entity name, in characters as it stores them: `/`, `\` and a `%` that starts
 * no escape become `%2f`, `%5c` and `%25` (the API reference says "less than 80"; vCenter takes
 * 80, and its client says "Up to 80 characters may be used (fewer if %, \ or / are used)").
 */
export const vcenterNameLimit = 80;

/** vCloud Director's longest vApp, vApp template and VM name (the vCloud API's length limits). */
export const vcdNameLimit = 128;

/** One VM an item becomes: a single VM or template, or one member of a vApp. */
export interface VmNames {
  /** Its name in the package: the source VM's, or the member's in the vApp descriptor. */
  readonly original: string;
  /** In the provider's vCenter (unique in the transfer, case ignored). */
  readonly vcenter: string;
  /** In vCloud Director: the vCenter name without the transfer id. */
  readonly vcd: string;
}

export interface ItemNames {
  /**
   * What the journal and the report call the item in vCenter: its VM's name; for a vApp, the
   * vApp's name with the same suffix (vCenter holds only its members).
   */
  readonly vcenter: string;
  /** Its vApp, or its catalog template (and the vApp instantiated from it), in vCloud Director. */
  readonly vcd: string;
  /** Every VM it becomes, in descriptor order. */
  readonly vms: readonly VmNames[];
}

/** An item of the transfer and its OVF descriptor (decrypted, checked against the manifest). */
export interface NamedItem {
  readonly item: ManifestItem;
  readonly descriptor: string;
}

/**
 * The names of every item of a transfer, by item id. Pass every item of the manifest: a name is
 * unique only among the items it was worked out with. Names that could still clash (item ids
 * shaped like the suffixes, which no export writes) are left so; the import then refuses the second
 * such VM as NAME_TAKEN and touches neither.
 */
export function importNames(transferId: string, items: readonly NamedItem[]): ReadonlyMap<string, ItemNames> {
  const split = items.map(({ item, descriptor }) => ({ item, vapp: vappOf(descriptor) }));
  const vms = split.flatMap(({ item, vapp }) =>
    vapp
      ? vapp.members.map((m, i) => ({ item, original: m.name, tag: `${item.id}.${i + 1}` }))
      : [{ item, original: item.name, tag: item.id }],
  );
  type Vm = (typeof vms)[number];
  const tagged = new Set<Vm>(
    vms.filter(
      (vm) =>
        vcenterLength(`${vm.original} (${transferId})`) > vcenterNameLimit ||
        vcdLength(vm.original) > vcdNameLimit,
    ),
  );
  const vcenterOf = (vm: Vm) =>
    tagged.has(vm)
      ? fitName(vm.original, `${transferId} ${vm.tag}`, vcenterNameLimit, vcenterLength)
      : `${vm.original} (${transferId})`;
  const vcdOf = (vm: Vm) =>
    tagged.has(vm) ? fitName(vm.original, vm.tag, vcdNameLimit, vcdLength) : vm.original;
  tagClashes(vms, tagged, [vcenterOf, vcdOf]);

  const all = items.map((n) => n.item);
  const taggedItems = new Set(all.filter((item) => vcdLength(item.name) > vcdNameLimit));
  const vcdItemOf = (item: ManifestItem) =>
    taggedItems.has(item) ? fitName(item.name, item.id, vcdNameLimit, vcdLength) : item.name;
  tagClashes(all, taggedItems, [vcdItemOf]);

  const out = new Map<string, ItemNames>();
  for (const { item, vapp } of split) {
    const mine = vms.filter((vm) => vm.item === item);
    const label = vapp
      ? fitName(
          vapp.name,
          taggedItems.has(item) ? `${transferId} ${item.id}` : transferId,
          vcenterNameLimit,
          vcenterLength,
        )
      : vcenterOf(mine[0]!);
    out.set(item.id, {
      vcenter: label,
      vcd: vcdItemOf(item),
      vms: mine.map((vm) => ({ original: vm.original, vcenter: vcenterOf(vm), vcd: vcdOf(vm) })),
    });
  }
  return out;
}

/**
 * Adds to `tagged` every entry whose name, by any of `namings`, another entry also has (case
 * ignored), until no names clash or every clashing entry is tagged already.
 */
function tagClashes<T>(entries: readonly T[], tagged: Set<T>, namings: readonly ((e: T) => string)[]): void {
  for (let grew = true; grew; ) {
    grew = false;
    for (const nameOf of namings) {
      const byName = new Map<string, T[]>();
      for (const e of entries) {
        const key = nameOf(e).toLowerCase();
        byName.set(key, [...(byName.get(key) ?? []), e]);
      }
      for (const same of byName.values()) {
        if (same.length < 2) continue;
        for (const e of same) {
          if (tagged.has(e)) continue;
          tagged.add(e);
          grew = true;
        }
      }
    }
  }
}

/** A vApp descriptor's name and members; undefined for a single VM (or what splitVApp refuses). */
function vappOf(descriptor: string): SplitVApp | undefined {
  try {
    return splitVApp(descriptor);
  } catch {
    // The import of the item fails on the same descriptor, and says why.
    return undefined;
  }
}

/** A name's characters, an escape such as `%2f` being one (it is cut whole or not at all). */
const units = (s: string): string[] => s.match(/%[0-9A-Fa-f]{2}|[\s\S]/gu) ?? [];

/** A name's length as vCenter stores it: `/`, `\` and a `%` that starts no escape take three. */
export const vcenterLength = (s: string): number =>
  units(s).reduce((n, u) => n + (u.length === 3 || u === '/' || u === '\\' || u === '%' ? 3 : 1), 0);

/** A name's length in characters (code points), as vCloud Director counts it. */
const vcdLength = (s: string): number => units(s).length;

/**
 * `<name> (<suffix>)`, the name cut short (and ended with `…`) so that the whole takes at most
 * `limit` by `length`; the suffix is kept whole.
 */
function fitName(name: string, suffix: string, limit: number, length: (s: string) => number): string {
  const whole = `${name} (${suffix})`;
  if (length(whole) <= limit) return whole;
  const parts = units(name);
  for (let n = parts.length - 1; n > 0; n--) {
    const text = `${parts.slice(0, n).join('').trimEnd()}… (${suffix})`;
    if (length(text) <= limit) return text;
  }
  return `… (${suffix})`;
}
