/**
 * The request modal's logic, apart from Bolt: the site's reported inventory as select options,
 * the form's state → a TransferRequest (or errors keyed by block id), and the ship-or-send
 * estimate. The listeners that use it are in bot/request-modal.ts; the Block Kit in
 * bot/request-blocks.ts.
 */
import { createHash } from 'node:crypto';
import type { ItemKind, TransferRequest } from '../core/index.ts';
import type { SiteInventory } from '../core/ports/agents.ts';

/** Slack's limits for an options response and its option objects. */
export const optionLimits = { options: 100, text: 75, value: 150, groupLabel: 75 } as const;

/** Block and action ids of the request modal; validation errors are keyed by the block ids. */
export const requestIds = {
  callback: 'odt_request_modal',
  siteBlock: 'site',
  siteAction: 'odt_req_site',
  itemsAction: 'odt_req_items',
  itemOptionsAction: 'odt_req_item_opts',
  linkBlock: 'link',
  linkAction: 'odt_req_link',
  vdcBlock: 'vdc',
  catalogBlock: 'catalog',
  networkBlock: 'network',
  providerSiteBlock: 'provider_site',
  estimateBlock: 'estimate',
  textAction: 'value',
} as const;

/**
 * The items block's id carries the site: choosing another site gives a new, empty items input
 * (Slack keeps an input's value across views.update only while its block_id stays the same).
 */
export const itemsBlockId = (site: string | undefined): string => (site ? `items:${site}` : 'items');
/** Per-item deploy / power on checkboxes, keyed by the item's option value. */
export const itemOptionsBlockId = (value: string): string => `item:${value}`;

/** One VM, template or vApp as the export agent reports it (agent/vsphere/inventory.ts). */
export interface InventoryEntry {
  readonly kind: ItemKind;
  readonly name: string;
  readonly path: string;
  readonly sizeBytes: number;
  /** For a vApp: how many VMs it holds. */
  readonly vms?: number;
}

const kinds: readonly ItemKind[] = ['vm', 'template', 'vapp'];
export const kindLabel: Record<ItemKind, string> = { vm: 'VM', template: 'Template', vapp: 'vApp' };
const groupLabel: Record<ItemKind, string> = { vm: 'VMs', template: 'Templates', vapp: 'vApps' };

/** The reported items that have what the form needs; anything else the agent sent is skipped. */
export function inventoryEntries(inventory: SiteInventory | undefined): InventoryEntry[] {
  const out: InventoryEntry[] = [];
  for (const raw of inventory?.items ?? []) {
    if (!raw || typeof raw !== 'object') continue;
    const i = raw as Partial<Record<keyof InventoryEntry, unknown>>;
    if (typeof i.kind !== 'string' || !kinds.includes(i.kind as ItemKind)) continue;
    if (typeof i.name !== 'string' || i.name === '' || typeof i.path !== 'string' || i.path === '') continue;
    const size = typeof i.sizeBytes === 'number' && Number.isFinite(i.sizeBytes) ? i.sizeBytes : 0;
    const vms = (raw as { vms?: unknown }).vms;
    out.push({
      kind: i.kind as ItemKind,
      name: i.name,
      path: i.path,
      sizeBytes: Math.max(0, Math.round(size)),
      ...(i.kind === 'vapp' && Array.isArray(vms) ? { vms: vms.length } : {}),
    });
  }
  return out;
}

/**
 * An option's value names the item by its inventory path (unique in a vCenter); a path longer
 * than Slack's 150 characters is replaced by a digest of it.
 */
export function optionValue(e: InventoryEntry): string {
  const v = `${e.kind}:${e.path}`;
  return v.length <= optionLimits.value
    ? v
    : `${e.kind}#${createHash('sha256').update(e.path).digest('base64url')}`;
}

/** "40 GB", "1.5 TB": decimal units, as vCenter and the NAS label show them. */
export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined) return 'size unknown';
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let v = bytes;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(v >= 10 || u === 0 ? 0 : 1)} ${units[u]}`;
}

const clipText = (text: string, max: number): string =>
  text.length <= max ? text : `${text.slice(0, max - 1)}…`;

/**
 * "VM web-01 · 40 GB", "vApp erp (3 VMs) · 300 GB", at most 75 characters: a long name is clipped,
 * never the kind or the size. A name that several items share shows its path instead, clipped
 * from the left.
 */
export function optionText(e: InventoryEntry, ambiguous = false): string {
  const head = `${kindLabel[e.kind]} `;
  const members = e.vms !== undefined ? ` (${e.vms} VM${e.vms === 1 ? '' : 's'})` : '';
  const tail = `${members} · ${formatBytes(e.sizeBytes)}`;
  const room = optionLimits.text - head.length - tail.length;
  const label = ambiguous ? e.path : e.name;
  const shown =
    label.length <= room
      ? label
      : ambiguous
        ? `…${label.slice(label.length - room + 1)}`
        : clipText(label, room);
  return `${head}${shown}${tail}`;
}

const plain = (text: string) => ({ type: 'plain_text' as const, text, emoji: true });

export interface SelectOption {
  readonly text: { type: 'plain_text'; text: string; emoji: boolean };
  readonly value: string;
}

/** Names that more than one item of the inventory carries. */
function ambiguousNames(entries: readonly InventoryEntry[]): Set<string> {
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const e of entries) (seen.has(e.name) ? twice : seen).add(e.name);
  return twice;
}

export function selectOption(e: InventoryEntry, entries: readonly InventoryEntry[]): SelectOption {
  return { text: plain(optionText(e, ambiguousNames(entries).has(e.name))), value: optionValue(e) };
}

/**
 * The options response for the items select: the entries whose kind, name or path contain every
 * typed word, grouped by kind, names starting with the query first, at most 100 options in all.
 */
export function itemOptions(
  entries: readonly InventoryEntry[],
  query: string,
): { option_groups: { label: SelectOption['text']; options: SelectOption[] }[] } | { options: [] } {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  const q = query.trim().toLowerCase();
  const twice = ambiguousNames(entries);
  const matches = entries
    .filter((e) => {
      const hay = `${kindLabel[e.kind]} ${e.name} ${e.path}`.toLowerCase();
      return words.every((w) => hay.includes(w));
    })
    .sort(
      (a, b) =>
        Number(!a.name.toLowerCase().startsWith(q)) - Number(!b.name.toLowerCase().startsWith(q)) ||
        a.name.localeCompare(b.name) ||
        a.path.localeCompare(b.path),
    );
  if (matches.length === 0) return { options: [] };
  const groups: { label: SelectOption['text']; options: SelectOption[] }[] = [];
  let left: number = optionLimits.options;
  for (const kind of kinds) {
    const ofKind = matches.filter((e) => e.kind === kind);
    if (ofKind.length === 0 || left === 0) continue;
    const shown = ofKind.slice(0, left);
    left -= shown.length;
    const label =
      shown.length < ofKind.length
        ? `${groupLabel[kind]} (${shown.length} of ${ofKind.length}; type to narrow)`
        : `${groupLabel[kind]} (${ofKind.length})`;
    groups.push({
      label: plain(clipText(label, optionLimits.groupLabel)),
      options: shown.map((e) => ({ text: plain(optionText(e, twice.has(e.name))), value: optionValue(e) })),
    });
  }
  return { option_groups: groups };
}

// ---- the ship-or-send estimate -------------------------------------------------------------

export interface Estimate {
  readonly totalBytes: number;
  readonly items: number;
  readonly linkMbps: number;
  /** The same bytes over the link at its full rate, no protocol overhead. */
  readonly linkSeconds: number;
  readonly shippingSeconds: number;
  /** Above this many bytes the NAS is faster than the link. */
  readonly breakEvenBytes: number;
  readonly verdict: 'ship' | 'send';
}

/** Time for `totalBytes` over a `linkMbps` link versus a shipping turnaround of `turnaroundDays`. */
export function estimate(
  totalBytes: number,
  items: number,
  linkMbps: number,
  turnaroundDays: number,
): Estimate {
  const bitsPerSecond = linkMbps * 1e6;
  const linkSeconds = (totalBytes * 8) / bitsPerSecond;
  const shippingSeconds = turnaroundDays * 86_400;
  return {
    totalBytes,
    items,
    linkMbps,
    linkSeconds,
    shippingSeconds,
    breakEvenBytes: (shippingSeconds * bitsPerSecond) / 8,
    verdict: linkSeconds > shippingSeconds ? 'ship' : 'send',
  };
}

/** "~22 h", "~3.5 days", "~40 min", "under a minute". */
export function formatDuration(seconds: number): string {
  if (seconds < 60) return 'under a minute';
  if (seconds < 3600) return `~${Math.round(seconds / 60)} min`;
  if (seconds < 48 * 3600) return `~${Math.round(seconds / 3600)} h`;
  const days = seconds / 86_400;
  return `~${days < 10 ? days.toFixed(1).replace(/\.0$/, '') : Math.round(days)} days`;
}

const mbps = (n: number): string => `${Number.isInteger(n) ? n : n.toFixed(1)} Mbit/s`;

/** The estimate as mrkdwn lines, for the modal and the approval message. */
export function estimateText(e: Estimate): string {
  const verdict =
    e.verdict === 'ship'
      ? `:package: *Ship the NAS*: the link would take ${formatDuration(e.linkSeconds - e.shippingSeconds)} longer.`
      : `:globe_with_meridians: *The link is faster* for this selection; shipping pays off above ${formatBytes(e.breakEvenBytes)}.`;
  return [
    `*Total:* ${formatBytes(e.totalBytes)} in ${e.items} item${e.items === 1 ? '' : 's'}`,
    `*Over the site's ${mbps(e.linkMbps)} link:* ${formatDuration(e.linkSeconds)} (at full line rate)`,
    `*Shipping the NAS:* ${formatDuration(e.shippingSeconds)} turnaround`,
    verdict,
  ].join('\n');
}

// ---- the form's state ----------------------------------------------------------------------

interface ElementState {
  type?: string;
  value?: string | null;
  selected_option?: { value: string } | null;
  selected_options?: { value: string; text?: { text?: string } }[];
}
export type StateValues = Record<string, Record<string, ElementState>>;

/** What the modal remembers between updates, in `private_metadata`. */
export interface RequestModalMeta {
  readonly site?: string;
}

export function parseMeta(privateMetadata: string | undefined): RequestModalMeta {
  try {
    const m = JSON.parse(privateMetadata || '{}') as { site?: unknown };
    return typeof m.site === 'string' ? { site: m.site } : {};
  } catch {
    return {};
  }
}

/** The chosen site: the select's state, else what the modal was last built for. */
export function chosenSite(values: StateValues | undefined, meta: RequestModalMeta): string | undefined {
  return values?.[requestIds.siteBlock]?.[requestIds.siteAction]?.selected_option?.value ?? meta.site;
}

/** The items input's block id in these values (it carries the site it was built for). */
export function itemsBlockOf(values: StateValues | undefined, site: string | undefined): string {
  const own = itemsBlockId(site);
  if (values?.[own]) return own;
  return Object.keys(values ?? {}).find((k) => k === 'items' || k.startsWith('items:')) ?? own;
}

export function selectedItemValues(values: StateValues | undefined, site: string | undefined): string[] {
  const block = itemsBlockOf(values, site);
  return (values?.[block]?.[requestIds.itemsAction]?.selected_options ?? []).map((o) => o.value);
}

const textOf = (values: StateValues, block: string): string =>
  (values[block]?.[requestIds.textAction]?.value ?? '').trim();

/** Deploy / power on of one item: the checkboxes' state, else the defaults (deploy only). */
export function itemChoices(
  values: StateValues | undefined,
  value: string,
): { deploy: boolean; powerOn: boolean; touched: boolean } {
  const state = values?.[itemOptionsBlockId(value)]?.[requestIds.itemOptionsAction];
  if (!state) return { deploy: true, powerOn: false, touched: false };
  const chosen = new Set((state.selected_options ?? []).map((o) => o.value));
  return { deploy: chosen.has('deploy'), powerOn: chosen.has('powerOn'), touched: true };
}

/** Link speed in Mbit/s from the number input; undefined when empty or not a positive number. */
export function linkSpeed(values: StateValues | undefined): number | undefined {
  const raw = values?.[requestIds.linkBlock]?.[requestIds.linkAction]?.value;
  if (raw === undefined || raw === null || raw.trim() === '') return undefined;
  const n = Number(raw);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

/** Resolves option values against the inventory; `missing` keeps the values no item has any more. */
export function resolveSelection(
  entries: readonly InventoryEntry[],
  selected: readonly string[],
): { found: InventoryEntry[]; missing: string[] } {
  const byValue = new Map(entries.map((e) => [optionValue(e), e]));
  const found: InventoryEntry[] = [];
  const missing: string[] = [];
  for (const v of selected) {
    const e = byValue.get(v);
    if (e) found.push(e);
    else missing.push(v);
  }
  return { found, missing };
}

/** "vm:/DC0/vm/web-09" → "web-09" for messages about values no longer in the inventory. */
const nameOfValue = (value: string): string => {
  const path = value.replace(/^[a-z]+[:#]/, '');
  return path.split('/').filter(Boolean).at(-1) ?? value;
};

export interface ParsedRequest {
  readonly request: TransferRequest;
  readonly estimate: Estimate;
  /** Item index → its options block, to put the service's per-item errors on the right field. */
  readonly itemBlocks: readonly string[];
}

/**
 * The submitted modal → a TransferRequest and its estimate, or errors keyed by block id. Every
 * selected item must still be in the site's inventory as the agent last reported it.
 */
export function parseRequestForm(input: {
  values: StateValues;
  meta: RequestModalMeta;
  requester: string;
  inventory: SiteInventory | undefined;
  turnaroundDays: number;
}): ParsedRequest | { errors: Record<string, string> } {
  const { values, inventory } = input;
  const errors: Record<string, string> = {};
  const site = chosenSite(values, input.meta);
  if (!site) return { errors: { [requestIds.siteBlock]: 'choose the site whose VMs move' } };
  if (!inventory) {
    return {
      errors: {
        [requestIds.siteBlock]: `site ${site} has not reported an inventory; start its export agent (\`/odt agent enroll ${site}\`) and try again`,
      },
    };
  }
  const itemsBlock = itemsBlockOf(values, site);
  const entries = inventoryEntries(inventory);
  const selected = selectedItemValues(values, site);
  const { found, missing } = resolveSelection(entries, selected);
  if (selected.length === 0) errors[itemsBlock] = 'choose at least one VM, template or vApp';
  else if (missing.length > 0) {
    const names = missing.map(nameOfValue).join(', ');
    errors[itemsBlock] =
      `${names} ${missing.length === 1 ? 'is' : 'are'} no longer in ${site}'s inventory (reported ${inventory.reportedAt}); remove ${missing.length === 1 ? 'it' : 'them'} and choose again`;
  }
  const link = linkSpeed(values);
  if (link === undefined) errors[requestIds.linkBlock] = "give the site's link speed in Mbit/s, e.g. 100";
  const vdc = textOf(values, requestIds.vdcBlock);
  const catalog = textOf(values, requestIds.catalogBlock);
  const network = textOf(values, requestIds.networkBlock);
  const providerSite = textOf(values, requestIds.providerSiteBlock);
  const templates = found.filter((e) => e.kind === 'template');
  if (templates.length > 0 && !catalog) {
    errors[requestIds.catalogBlock] =
      `name the catalog for ${templates.length === 1 ? 'the template' : 'the templates'} ${templates.map((t) => t.name).join(', ')}`;
  }
  if (Object.keys(errors).length > 0) return { errors };
  const twice = ambiguousNames(entries);
  const items: TransferRequest['items'] = found.map((e) => {
    const { deploy, powerOn } = itemChoices(values, optionValue(e));
    return {
      kind: e.kind,
      // The agent finds an item by unique name or by path (agent/vsphere/inventory.ts, findItem).
      source: twice.has(e.name) ? e.path : e.name,
      sizeBytes: e.sizeBytes,
      target: {
        vdc,
        placement: e.kind === 'template' ? 'catalog' : 'vapp',
        ...(e.kind === 'template' ? { catalog } : {}),
        ...(network ? { network } : {}),
        deploy,
        powerOn,
      },
    };
  });
  const total = found.reduce((n, e) => n + e.sizeBytes, 0);
  return {
    request: { site, ...(providerSite ? { providerSite } : {}), requester: input.requester, items },
    estimate: estimate(total, found.length, link!, input.turnaroundDays),
    itemBlocks: found.map((e) => itemOptionsBlockId(optionValue(e))),
  };
}

/** Field path of a service ValidationError issue → the block that shows it. */
export function blockOfIssue(path: string, itemsBlock: string, itemBlocks: readonly string[]): string {
  if (path === 'site') return requestIds.siteBlock;
  if (path === 'providerSite') return requestIds.providerSiteBlock;
  const m = /^items\.(\d+)\.target\.(\w+)/.exec(path);
  if (m) {
    const field = m[2]!;
    if (field === 'vdc') return requestIds.vdcBlock;
    if (field === 'network') return requestIds.networkBlock;
    if (field === 'catalog') return requestIds.catalogBlock;
    if (field === 'deploy' || field === 'powerOn' || field === 'placement')
      return itemBlocks[Number(m[1])] ?? itemsBlock;
  }
  return itemsBlock;
}
