/**
 * Who may do what to a transfer (DESIGN.md, "Who uses it" and "Security model"), as one table.
 * TransferService decides every person's action with it, and the lifecycle's approve and reject
 * with the same function; the bot, the admin API and the Slack function pass the actor through and
 * say the refusal in their own words. Agents and the workflow act under their own rules (the site
 * of a task, the state machine), not these.
 */
import { NotAllowedError, OwnRequestError, type PermissionError } from '../errors.ts';
import type { Transfer } from './transfer.ts';

/** What a person does to a transfer: see it, decide it, cancel or retry it, report a shipping step. */
export const personActions = [
  'view',
  'approve',
  'reject',
  'cancel',
  'retry',
  'appliance-sent',
  'appliance-connected',
  'shipped',
  'received',
  'wiped',
] as const;
export type PersonAction = (typeof personActions)[number];

/**
 * Who may: `approvers` (provider operations); `other-approvers`, approvers but never on their own
 * request (four eyes); `requester-or-approvers`, the person who asked for the transfer or an approver.
 */
export const allowedKinds = ['approvers', 'other-approvers', 'requester-or-approvers'] as const;
export type Allowed = (typeof allowedKinds)[number];

/**
 * The rules. The NAS steps at the provider (sent, received and mounted, erased) are provider
 * operations; the customer's steps (connected, shipped back) are the requester's or an approver's.
 */
export const permissions: Readonly<Record<PersonAction, Allowed>> = Object.freeze({
  view: 'requester-or-approvers',
  approve: 'other-approvers',
  reject: 'other-approvers',
  cancel: 'requester-or-approvers',
  retry: 'requester-or-approvers',
  'appliance-sent': 'approvers',
  'appliance-connected': 'requester-or-approvers',
  shipped: 'requester-or-approvers',
  received: 'approvers',
  wiped: 'approvers',
});

/** A person as the rules see them: who, and whether an approver now. */
export interface PersonActor {
  readonly id: string;
  readonly isApprover: boolean;
}

/**
 * What the action is, in words, of the transfer named `ref`: "transfer tr-1", or "it" when the
 * sentence has named it already.
 */
export function actionWords(action: PersonAction, ref: string): string {
  const nas = ref === 'it' ? 'its NAS' : `the NAS of ${ref}`;
  switch (action) {
    case 'view':
      return `see ${ref}`;
    case 'retry':
      return ref === 'it' ? 'retry its failed items' : `retry the failed items of ${ref}`;
    case 'appliance-sent':
      return `report that ${nas} was sent`;
    case 'appliance-connected':
      return `report that ${nas} is connected at the customer's site`;
    case 'shipped':
      return `report that ${nas} was shipped back`;
    case 'received':
      return `report that ${nas} was received and mounted`;
    case 'wiped':
      return `confirm that ${nas} was erased`;
    default:
      return `${action} ${ref}`;
  }
}

/**
 * Whether `actorId` may take `action` on `t` as its requester, so that the approvers need not be
 * asked (an approvers group that cannot be read then never stops the requester).
 */
export const mayAsRequester = (
  action: PersonAction,
  t: Pick<Transfer, 'requester'>,
  actorId: string,
): boolean => permissions[action] === 'requester-or-approvers' && t.requester === actorId;

/**
 * The refusal of `action` on `t` by `actor` (NotAllowedError, OwnRequestError), with a message
 * that says who may; undefined when the actor may take it.
 */
export function refusal(
  action: PersonAction,
  t: Pick<Transfer, 'id' | 'requester'>,
  actor: PersonActor,
): PermissionError | undefined {
  const allowed = permissions[action];
  const details = { action, actor: actor.id, transferId: t.id, requester: t.requester, allowed };
  const what = actionWords(action, `transfer ${t.id}`);
  if (allowed === 'requester-or-approvers') {
    if (actor.isApprover || t.requester === actor.id) return undefined;
    return new NotAllowedError(
      `Only its requester (${t.requester}) or an approver may ${what}, and ${actor.id} is neither; nothing changed.`,
      details,
    );
  }
  if (!actor.isApprover) {
    return new NotAllowedError(
      `Only an approver may ${what}, and ${actor.id} is not an approver; nothing changed. Ask a member of the approvers group.`,
      details,
    );
  }
  if (allowed === 'other-approvers' && t.requester === actor.id) {
    return new OwnRequestError(
      `${actor.id} requested transfer ${t.id} and cannot also ${actionWords(action, 'it')} (four eyes); ask another approver. Nothing changed.`,
      details,
    );
  }
  return undefined;
}
