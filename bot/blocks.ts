/**
 * Block Kit for the bot's messages and modals. Every builder stays within Slack's limits: at most
 * 50 blocks per message, 3,000 characters per section text, 2,000 per button value (buttons carry
 * the transfer id only — never a task token or a secret).
 */
import { custodySummary, type Transfer } from '../core/index.ts';
import { type Estimate, estimateText, formatBytes, requestIds } from './request-form.ts';

// One byte formatter for the bot; the request modal's logic holds it (blocks.ts depends on it).
export { formatBytes };

export type Block = { type: string; [key: string]: unknown };

export const MAX_BLOCKS = 50;
export const MAX_TEXT = 3000;

export const actions = {
  approve: 'odt_approve',
  reject: 'odt_reject',
  applianceSent: 'odt_appliance_sent',
  applianceConnected: 'odt_appliance_connected',
  shipped: 'odt_shipped',
  received: 'odt_received',
} as const;

export const callbacks = {
  request: requestIds.callback,
  reject: 'odt_reject_modal',
  shipped: 'odt_shipped_modal',
} as const;

/**
 * mrkdwn → plain text, for what Slack shows as plain text (a modal field's error): a mention
 * `<@U123>` becomes `@U123`, a link `<url|label>` its label, code and bold marks go.
 */
export const plainText = (text: string): string =>
  text
    .replace(/<@([A-Z0-9]+)>/g, '@$1')
    .replace(/<([^|>]+)\|([^>]+)>/g, '$2')
    .replace(/[`*]/g, '')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

export const clip = (text: string, max = MAX_TEXT): string =>
  text.length <= max ? text : `${text.slice(0, max - 1)}…`;

const plain = (text: string) => ({ type: 'plain_text', text: clip(text, 150), emoji: true });
const md = (text: string) => ({ type: 'mrkdwn', text: clip(text) });
export const section = (text: string): Block => ({ type: 'section', text: md(text) });
export const context = (text: string): Block => ({ type: 'context', elements: [md(text)] });
export const button = (
  text: string,
  actionId: string,
  value: string,
  style?: 'primary' | 'danger',
): Block => ({
  type: 'button',
  text: plain(text),
  action_id: actionId,
  value,
  ...(style ? { style } : {}),
});

/** Slack escaping of user-supplied text inside mrkdwn. */
export const esc = (s: string): string =>
  s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');

/** The sum of the items' sizes; undefined when any size is unknown. */
export const totalBytes = (t: Transfer): number | undefined =>
  t.items.every((i) => i.sizeBytes !== undefined)
    ? t.items.reduce((n, i) => n + (i.sizeBytes ?? 0), 0)
    : undefined;

/** A Slack user id (`U…`, `W…`), as opposed to a CLI user name: it can be mentioned and DM'd. */
export const isSlackUser = (id: string): boolean => /^[UW][A-Z0-9]+$/.test(id);

/** "2026-11-26 14:05" of an ISO timestamp (UTC, to the minute). */
export const utcMinute = (iso: string): string => iso.slice(0, 16).replace('T', ' ');

const user = (id: string): string => (isSlackUser(id) ? `<@${id}>` : esc(id));

export { user as mention };

/** Items as text, clipped to one section of at most 3,000 characters. */
function itemLines(t: Transfer, limit = 20): string {
  const shown = t.items.slice(0, limit).map((i) => {
    const size = i.sizeBytes !== undefined ? `, ${formatBytes(i.sizeBytes)}` : '';
    return `• ${i.kind.toUpperCase()} \`${esc(i.source)}\`${size} → ${esc(i.target.vdc)} _(${i.result.state})_`;
  });
  const more = t.items.length > limit ? `\n…and ${t.items.length - limit} more` : '';
  return clip(`${shown.join('\n')}${more}`);
}

function summary(t: Transfer): Block[] {
  return [
    {
      type: 'section',
      fields: [
        md(`*Transfer*\n\`${t.id}\``),
        md(`*Requested by*\n${user(t.requester)}`),
        md(`*Site*\n${esc(t.site)} → ${esc(t.providerSite)}`),
        md(`*Phase*\n${t.phase}`),
        md(`*Items*\n${t.items.length}`),
        md(`*Total size*\n${formatBytes(totalBytes(t))}`),
      ],
    },
    section(itemLines(t)),
  ];
}

/**
 * The approvers' message: summary and Approve / Reject while undecided, the decision afterwards.
 * `estimate` (from the request modal) adds the ship-or-send comparison.
 */
export function approvalMessage(t: Transfer, estimate?: Estimate): { text: string; blocks: Block[] } {
  const blocks: Block[] = [{ type: 'header', text: plain(`Transfer request ${t.id}`) }, ...summary(t)];
  if (estimate) blocks.push(section(estimateText(estimate)));
  if (t.phase === 'requested') {
    blocks.push({
      type: 'actions',
      block_id: 'decision',
      elements: [
        button('Approve', actions.approve, t.id, 'primary'),
        button('Reject', actions.reject, t.id, 'danger'),
      ],
    });
  } else if (t.phase === 'rejected') {
    blocks.push(context(`:x: Rejected by ${user(t.approver ?? '?')}: ${esc(t.rejectReason ?? '')}`));
  } else if (t.phase === 'cancelled') {
    const by = t.history.findLast((h) => h.phase === 'cancelled');
    blocks.push(
      context(
        `:no_entry_sign: Cancelled${by ? ` by ${user(by.actor)}${by.note ? `: ${esc(by.note)}` : ''}` : ''}`,
      ),
    );
  } else if (t.approver) {
    blocks.push(context(`:white_check_mark: Approved by ${user(t.approver)}`));
  } else {
    blocks.push(context(`Now *${t.phase}*`));
  }
  return { text: `Transfer request ${t.id} from ${t.requester}: ${t.phase}`, blocks };
}

/** The shipping steps of a transfer, as buttons for the step that is due. */
export function shippingMessage(t: Transfer): { text: string; blocks: Block[] } {
  const steps: [string, string, string][] = [
    ['approved', 'NAS sent', actions.applianceSent],
    ['appliance-sent', 'NAS connected', actions.applianceConnected],
    ['exported', 'Shipped back', actions.shipped],
    ['shipped', 'Received and mounted', actions.received],
  ];
  const due = steps.find(([phase]) => phase === t.phase);
  const blocks: Block[] = [
    section(
      `*Shipping of \`${t.id}\`* — now *${t.phase}*${t.shipping ? ` (${esc(t.shipping.carrier)} ${esc(t.shipping.tracking)})` : ''}`,
    ),
  ];
  if (due)
    blocks.push({
      type: 'actions',
      block_id: 'shipping',
      elements: [button(due[1], due[2], t.id, 'primary')],
    });
  const last = t.history.at(-1);
  if (last)
    blocks.push(context(`Last step: ${last.phase} by ${user(last.actor)} at ${utcMinute(last.at)} UTC`));
  return { text: `Shipping of ${t.id}: ${t.phase}`, blocks };
}

/**
 * A history note as a line of the status: the node's wipe statement (issue #18) ends with its
 * signed payload, over a thousand characters of base64 that `odt transfer show --history` prints
 * whole and that would crowd a Slack section (3,000 characters for all ten lines).
 */
const brief = (note: string): string => (note.length > 240 ? `${note.slice(0, 239)}…` : note);

export function statusBlocks(t: Transfer): Block[] {
  const history = t.history
    .slice(-10)
    .map(
      (h) => `• ${utcMinute(h.at)} ${h.phase} — ${user(h.actor)}${h.note ? `: ${esc(brief(h.note))}` : ''}`,
    )
    .join('\n');
  // The chain is checked on every look (core/model/custody.ts): an edited store shows here too.
  return [...summary(t), section(`*History*\n${history || '—'}`), context(esc(custodySummary(t)))];
}

/** Transfers newest first, at most 40 lines, packed into sections of at most 3,000 characters. */
export function listBlocks(transfers: readonly Transfer[], title: string): Block[] {
  if (transfers.length === 0) return [section(`${title}: none.`)];
  const limit = 40;
  const newest = [...transfers].reverse().sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const lines = newest
    .slice(0, limit)
    .map((t) =>
      clip(
        `• \`${t.id}\` ${t.phase} — ${esc(t.site)}, ${t.items.length} item(s), by ${user(t.requester)}`,
        500,
      ),
    );
  const sections: string[] = [];
  for (const line of lines) {
    const last = sections.at(-1);
    if (last !== undefined && last.length + 1 + line.length <= MAX_TEXT)
      sections[sections.length - 1] = `${last}\n${line}`;
    else sections.push(line);
  }
  const blocks = [section(`*${title}*`), ...sections.map(section)];
  if (transfers.length > limit)
    blocks.push(
      context(`…and ${transfers.length - limit} older; \`/odt status <id>\` shows any one of them.`),
    );
  return blocks;
}

export const helpText = [
  '*`/odt` — offline data transfer on a shipped NAS*',
  '• `/odt request` — ask for a transfer (opens a form)',
  '• `/odt status [id]` — one transfer, or your transfers',
  '• `/odt list` — your transfers (approvers: everyone’s)',
  '• `/odt cancel <id> [reason]` — cancel your transfer (approvers: any) before its import starts',
  '• `/odt agent enroll <site> [export|import]` — approvers: a one-time code to enroll a site’s agent',
  '• `/odt agent list [site]`, `/odt agent revoke <agent id>` — approvers: the enrolled agents; stop one',
  '• `/odt help` — this text',
].join('\n');

const input = (blockId: string, label: string, element: Block, optional = false, hint?: string): Block => ({
  type: 'input',
  block_id: blockId,
  label: plain(label),
  element,
  optional,
  ...(hint ? { hint: plain(hint) } : {}),
});
const textInput = (actionId: string, placeholder?: string, multiline = false): Block => ({
  type: 'plain_text_input',
  action_id: actionId,
  multiline,
  ...(placeholder ? { placeholder: plain(placeholder) } : {}),
});

export interface ModalRef {
  readonly id: string;
  readonly channel?: string;
  readonly ts?: string;
  /** The modal was opened from the Home tab, which is published again after the submission. */
  readonly home?: boolean;
}

export function rejectModal(ref: ModalRef): Block {
  return {
    type: 'modal',
    callback_id: callbacks.reject,
    private_metadata: JSON.stringify(ref),
    title: plain('Reject transfer'),
    submit: plain('Reject'),
    close: plain('Cancel'),
    blocks: [
      section(`Rejecting \`${ref.id}\`. The requester sees the reason.`),
      input('reason', 'Reason', textInput('value', 'What the requester can do about it', true)),
    ],
  };
}

export function shippedModal(ref: ModalRef): Block {
  return {
    type: 'modal',
    callback_id: callbacks.shipped,
    private_metadata: JSON.stringify(ref),
    title: plain('NAS shipped back'),
    submit: plain('Save'),
    close: plain('Cancel'),
    blocks: [
      input('carrier', 'Carrier', textInput('value', 'e.g. DHL')),
      input('tracking', 'Tracking number', textInput('value')),
    ],
  };
}
