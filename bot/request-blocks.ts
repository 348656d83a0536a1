/**
 * Block Kit of the request modal: site → items from the site's reported inventory (external
 * select with type-ahead) → per item deploy / power on → target org VDC, catalog, network → link
 * speed and the ship-or-send estimate. Stays within Slack's limits: 100 blocks per view, 100
 * options per static select, 75 characters per option text, 150 per option value.
 */
import { type Block, clip, section, utcMinute } from './blocks.ts';
import {
  type Estimate,
  estimateText,
  type InventoryEntry,
  itemChoices,
  itemOptionsBlockId,
  itemsBlockId,
  kindLabel,
  optionLimits,
  requestIds,
  type SelectOption,
  type StateValues,
  selectOption,
} from './request-form.ts';

/** At most this many items per request in the modal (each gets its own options block). */
export const maxSelectedItems = 50;

const plain = (text: string, max = 150) => ({ type: 'plain_text', text: clip(text, max), emoji: true });

const input = (
  blockId: string,
  label: string,
  element: Block,
  opts: { optional?: boolean; hint?: string; dispatch?: boolean } = {},
): Block => ({
  type: 'input',
  block_id: blockId,
  label: plain(label, 2000),
  element,
  optional: opts.optional ?? false,
  ...(opts.dispatch ? { dispatch_action: true } : {}),
  ...(opts.hint ? { hint: plain(opts.hint, 2000) } : {}),
});

const textInput = (placeholder?: string): Block => ({
  type: 'plain_text_input',
  action_id: requestIds.textAction,
  ...(placeholder ? { placeholder: plain(placeholder) } : {}),
});

const checkboxOption = (text: string, value: string) => ({ text: plain(text, 75), value });

export interface RequestModalInput {
  /** Sites with a reported inventory, for the site select (at most 100 are offered). */
  readonly sites: readonly string[];
  readonly site?: string;
  /** The chosen site's inventory entries (for option texts) and when it was reported. */
  readonly entries: readonly InventoryEntry[];
  readonly reportedAt?: string;
  /** Selected items still in the inventory, in selection order. */
  readonly selected: readonly InventoryEntry[];
  /** Current state of the view (keeps each item's checkboxes as the person left them). */
  readonly values?: StateValues;
  readonly linkMbps: number | undefined;
  readonly defaultLinkMbps: number;
  readonly estimate?: Estimate;
  readonly privateMetadata: string;
}

/** The request modal for the current choices; rebuilt on every change and sent with views.update. */
export function requestModalView(m: RequestModalInput): Block {
  const base = {
    type: 'modal',
    callback_id: requestIds.callback,
    title: plain('Request a transfer', 24),
    close: plain('Cancel', 24),
    private_metadata: m.privateMetadata,
  };
  if (m.sites.length === 0) {
    return {
      ...base,
      blocks: [
        section(
          'No site has reported an inventory yet. An approver enrolls the site’s export agent with `/odt agent enroll <site>`; once the agent runs, its VMs, templates and vApps appear here.',
        ),
      ],
    };
  }
  const siteOptions = m.sites.slice(0, optionLimits.options).map((s) => ({ text: plain(s, 75), value: s }));
  const chosen = siteOptions.find((o) => o.value === m.site);
  const blocks: Block[] = [
    input(
      requestIds.siteBlock,
      'Customer site',
      {
        type: 'static_select',
        action_id: requestIds.siteAction,
        placeholder: plain('Choose the site'),
        options: siteOptions,
        ...(chosen ? { initial_option: chosen } : {}),
      },
      { dispatch: true },
    ),
  ];
  const initial: SelectOption[] = m.selected.map((e) => selectOption(e, m.entries));
  blocks.push(
    input(
      itemsBlockId(m.site),
      'VMs, templates and vApps',
      {
        type: 'multi_external_select',
        action_id: requestIds.itemsAction,
        placeholder: plain(m.site ? 'Type a name or pick from the list' : 'Choose the site first'),
        min_query_length: 0,
        max_selected_items: maxSelectedItems,
        ...(initial.length > 0 ? { initial_options: initial } : {}),
      },
      {
        dispatch: true,
        hint: m.site
          ? `From ${m.site}'s vCenter as its export agent reported it${m.reportedAt ? ` at ${utcMinute(m.reportedAt)} UTC` : ''}.`
          : 'Choose the site first.',
      },
    ),
  );
  for (const e of m.selected) {
    const value = selectOption(e, m.entries).value;
    const { deploy, powerOn } = itemChoices(m.values, value);
    const options = [checkboxOption('Deploy', 'deploy'), checkboxOption('Power on', 'powerOn')];
    const initialOptions = options.filter((o) => (o.value === 'deploy' ? deploy : powerOn));
    blocks.push(
      input(
        itemOptionsBlockId(value),
        `${kindLabel[e.kind]} ${e.name}`,
        {
          type: 'checkboxes',
          action_id: requestIds.itemOptionsAction,
          options,
          ...(initialOptions.length > 0 ? { initial_options: initialOptions } : {}),
        },
        {
          optional: true,
          hint:
            e.kind === 'template'
              ? 'Goes into the catalog. Deploy and Power on also make a running vApp from it.'
              : 'Deploy makes the vApp ready; Power on starts it after the import.',
        },
      ),
    );
  }
  blocks.push(
    input(requestIds.vdcBlock, 'Target org VDC', textInput('e.g. acme-vdc')),
    input(requestIds.catalogBlock, 'Catalog (for templates)', textInput(), {
      optional: true,
      hint: 'Needed when templates are chosen.',
    }),
    input(requestIds.networkBlock, 'Org VDC network', textInput(), { optional: true }),
    input(requestIds.providerSiteBlock, 'Provider site', textInput('provider'), { optional: true }),
    input(
      requestIds.linkBlock,
      "Site's link speed (Mbit/s)",
      {
        type: 'number_input',
        action_id: requestIds.linkAction,
        is_decimal_allowed: true,
        min_value: '0.1',
        initial_value: String(m.linkMbps ?? m.defaultLinkMbps),
        dispatch_action_config: { trigger_actions_on: ['on_enter_pressed'] },
      },
      { dispatch: true, hint: 'Press Enter to update the estimate.' },
    ),
    {
      ...section(
        m.estimate
          ? estimateText(m.estimate)
          : m.linkMbps === undefined && m.selected.length > 0
            ? 'Give the link speed to see whether shipping beats the link.'
            : 'Choose items to see their total size and whether shipping beats the link.',
      ),
      block_id: requestIds.estimateBlock,
    },
  );
  return { ...base, submit: plain('Request', 24), blocks };
}
