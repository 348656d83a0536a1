/**
 * The App Home tab: the person's own transfers with the step they can take, and for approvers the
 * queue of transfers waiting for an approver (approval, NAS sent, received and mounted). Within the
 * Home tab's limit of 100 blocks whatever the numbers; buttons carry transfer ids only.
 */
import type { Transfer, TransferPhase } from '../core/index.ts';
import {
  actions,
  type Block,
  button,
  clip,
  context,
  esc,
  formatBytes,
  mention,
  section,
  totalBytes,
} from './blocks.ts';
import { canRetry, retryAction, retryValue } from './progress-blocks.ts';

export const MAX_HOME_BLOCKS = 100;
/** Entries listed per part; the rest are counted. */
export const MAX_HOME_MINE = 20;
export const MAX_HOME_QUEUE = 20;

/** Transfers that wait for an approver, and the button that moves each on. */
const approverSteps: Partial<Record<TransferPhase, { label: string; action: string; what: string }>> = {
  approved: { label: 'NAS sent', action: actions.applianceSent, what: 'send the NAS to the customer' },
  shipped: { label: 'Received and mounted', action: actions.received, what: 'mount the NAS on the ODT node' },
};
/** What the requester can do next on their own transfer. */
const requesterSteps: Partial<Record<TransferPhase, { label: string; action: string }>> = {
  'appliance-sent': { label: 'NAS connected', action: actions.applianceConnected },
  exported: { label: 'Shipped back', action: actions.shipped },
};
const closed: ReadonlySet<TransferPhase> = new Set<TransferPhase>([
  'wiped',
  'rejected',
  'expired',
  'cancelled',
]);

function line(t: Transfer): string {
  const failed = t.items.filter((i) => i.result.state === 'failed').length;
  const total = totalBytes(t);
  const size = total !== undefined ? `, ${formatBytes(total)}` : '';
  return clip(
    `\`${t.id}\` — *${t.phase}* · ${esc(t.site)} → ${esc(t.providerSite)} · ${t.items.length} item(s)${size}${failed ? ` · ${failed} failed` : ''}`,
    1000,
  );
}

function mine(t: Transfer): Block[] {
  const step = requesterSteps[t.phase];
  const buttons = [
    ...(canRetry(t) ? [button('Retry failed items', retryAction, retryValue(t), 'primary')] : []),
    ...(step ? [button(step.label, step.action, t.id, canRetry(t) ? undefined : 'primary')] : []),
  ];
  // One button fits beside the text; a choice of two (retry, or ship as it is) gets its own row.
  if (buttons.length <= 1) return [{ ...section(line(t)), ...(buttons[0] ? { accessory: buttons[0] } : {}) }];
  return [section(line(t)), { type: 'actions', block_id: `home-mine-${t.id}`, elements: buttons }];
}

function queued(t: Transfer, user: string): Block[] {
  if (t.phase === 'requested') {
    if (t.requester === user) return [section(`${line(t)}\nYour own request: another approver decides.`)];
    return [
      section(`${line(t)}\nRequested by ${mention(t.requester)}: approve or reject.`),
      {
        type: 'actions',
        block_id: `home-decide-${t.id}`,
        elements: [
          button('Approve', actions.approve, t.id, 'primary'),
          button('Reject', actions.reject, t.id, 'danger'),
        ],
      },
    ];
  }
  const step = approverSteps[t.phase]!;
  return [
    {
      ...section(`${line(t)}\nNext: ${step.what}.`),
      accessory: button(step.label, step.action, t.id, 'primary'),
    },
  ];
}

/** Transfers an approver has to act on now, oldest first. */
export const waitsForApprover = (t: Transfer): boolean =>
  t.phase === 'requested' || approverSteps[t.phase] !== undefined;

/** The Home tab of `user`: their open transfers (newest first), and the approvers' queue. */
export function homeView(user: string, transfers: readonly Transfer[], isApprover: boolean): Block {
  const own = transfers.filter((t) => t.requester === user && !closed.has(t.phase)).reverse();
  const blocks: Block[] = [
    { type: 'header', text: { type: 'plain_text', text: 'Sneakernet transfers', emoji: true } },
    section('*Your transfers*'),
  ];
  if (own.length === 0) blocks.push(section('None open. Ask for one with `/odt request`.'));
  for (const t of own.slice(0, MAX_HOME_MINE)) blocks.push(...mine(t));
  if (own.length > MAX_HOME_MINE)
    blocks.push(context(`…and ${own.length - MAX_HOME_MINE} more; \`/odt status\` lists them all.`));
  if (isApprover) {
    const queue = transfers.filter(waitsForApprover);
    blocks.push({ type: 'divider' }, section(`*Waiting for an approver* (${queue.length})`));
    if (queue.length === 0) blocks.push(section('Nothing waits for you.'));
    for (const t of queue.slice(0, MAX_HOME_QUEUE)) blocks.push(...queued(t, user));
    if (queue.length > MAX_HOME_QUEUE)
      blocks.push(context(`…and ${queue.length - MAX_HOME_QUEUE} more; \`/odt list\` lists them all.`));
  }
  blocks.push(context('Updated when you open this tab or press a button here.'));
  return { type: 'home', blocks };
}
