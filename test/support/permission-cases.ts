/**
 * Issue 23: who may do what to a transfer, as the cases every entry point is tested with (the
 * service, the bot, the admin API and `odt transfer`, the Slack function on AWS). Each case names
 * the phase the action is legal in; `seedTransfer` writes a transfer in that phase into a store, so
 * that a refusal is about the person and never about the phase.
 */

import { expect } from 'vitest';
import type {
  Approvers,
  PersonAction,
  ShippingEvent,
  Transfer,
  TransferPhase,
  TransferServiceDeps,
  TransferStore,
  WorkflowEngine,
} from '../../core/index.ts';
import {
  appendHistory,
  checkCustody,
  createTransfer,
  fixedApprovers,
  TransferService,
} from '../../core/index.ts';
import { happyPath } from './happy-path.ts';

/** Slack-like ids, so that the same people act in Slack and with `odt transfer --as`. */
export const PEOPLE = {
  /** Asked for the transfer; not an approver. */
  requester: 'UCUSTOMER1',
  /** An approver who did not ask for it. */
  approver: 'UAPPROVER1',
  /** An approver who asked for a transfer of their own (four eyes). */
  approverRequester: 'UAPPROVER2',
  /** Neither. */
  stranger: 'USTRANGER',
} as const;
export const APPROVER_IDS = [PEOPLE.approver, PEOPLE.approverRequester];

export interface PermissionCase {
  readonly action: Exclude<PersonAction, 'view'>;
  /** The phase the action is legal in. */
  readonly phase: TransferPhase;
  /** The requester may take it (else NOT_ALLOWED: only approvers may). */
  readonly requesterMay: boolean;
  /** What the transfer looks like once the action was taken. */
  readonly done: (t: Transfer) => boolean;
}

const inPhase = (phase: TransferPhase) => (t: Transfer) => t.phase === phase;

export const permissionCases: readonly PermissionCase[] = [
  { action: 'approve', phase: 'requested', requesterMay: false, done: inPhase('approved') },
  { action: 'reject', phase: 'requested', requesterMay: false, done: inPhase('rejected') },
  { action: 'cancel', phase: 'approved', requesterMay: true, done: inPhase('cancelled') },
  {
    action: 'retry',
    phase: 'exported',
    requesterMay: true,
    done: (t) => t.decision?.value === 'retry',
  },
  { action: 'appliance-sent', phase: 'approved', requesterMay: false, done: inPhase('appliance-sent') },
  {
    action: 'appliance-connected',
    phase: 'appliance-sent',
    requesterMay: true,
    done: inPhase('appliance-connected'),
  },
  { action: 'shipped', phase: 'exported', requesterMay: true, done: inPhase('shipped') },
  { action: 'received', phase: 'shipped', requesterMay: false, done: inPhase('received') },
  { action: 'wiped', phase: 'completed', requesterMay: false, done: inPhase('wiped') },
];

export const isShippingEvent = (a: PersonAction): a is ShippingEvent =>
  ['appliance-sent', 'appliance-connected', 'shipped', 'received', 'wiped'].includes(a);

/** The phases after `requested` along the happy path, up to and including `phase`. */
function pathTo(phase: TransferPhase): readonly TransferPhase[] {
  const at = happyPath.indexOf(phase);
  if (at < 0) throw new Error(`seedTransfer: no path to ${phase}`);
  return happyPath.slice(1, at + 1);
}

/** A workflow engine that starts nothing; with `calls`, it notes each call there. */
export function idleWorkflow(calls: string[] = []): WorkflowEngine {
  return {
    start: async () => void calls.push('start'),
    sendTaskSuccess: async () => void calls.push('success'),
    sendTaskFailure: async () => void calls.push('failure'),
    sendTaskHeartbeat: async () => void calls.push('heartbeat'),
  };
}

/**
 * The TransferService the permission cases act through, over `stores`: no chat, a fixed clock,
 * `workflow` (default an idle one) and `approvers` (default APPROVER_IDS).
 */
export function permissionService(
  stores: Pick<TransferServiceDeps, 'transfers' | 'tokens' | 'tasks'>,
  {
    workflow = idleWorkflow(),
    approvers = fixedApprovers(APPROVER_IDS),
  }: {
    workflow?: WorkflowEngine;
    approvers?: Approvers;
  } = {},
): TransferService {
  return new TransferService({
    transfers: stores.transfers,
    tokens: stores.tokens,
    tasks: stores.tasks,
    workflow,
    chat: { transferChanged: async () => {}, progress: async () => {}, report: async () => {} },
    clock: { now: () => new Date('2026-12-01T10:00:00Z') },
    approvers,
    newId: () => 'tr-unused',
  });
}

/**
 * After `c` was taken by `actor`: the transfer shows it done, `actor` last in its history, and its
 * custody log still a whole chain (issue #18); `why` (what the entry point said, say) is shown
 * when it is not.
 */
export function expectTakenBy(c: PermissionCase, after: Transfer, actor: string, why?: string): void {
  expect(c.done(after), why).toBe(true);
  expect(after.history.at(-1)?.actor).toBe(actor);
  expect(checkCustody(after)).toMatchObject({ ok: true, legacy: 0 });
}

let seeded = 0;

/**
 * Stores a transfer of `requester` in `phase` (with its custody log along the main path); in
 * `exported`, its second item failed (so that "retry the failed items" has one). Returns it.
 */
export async function seedTransfer(
  store: TransferStore,
  phase: TransferPhase,
  requester: string = PEOPLE.requester,
  site = 'acme-dc1',
): Promise<Transfer> {
  const at = new Date('2026-12-01T09:00:00Z');
  const t = createTransfer(
    {
      site,
      providerSite: 'provider',
      requester,
      items: [
        { kind: 'vm', source: 'web-01', target: { vdc: 'acme-vdc' } },
        { kind: 'vm', source: 'db-01', target: { vdc: 'acme-vdc' } },
      ],
    },
    `tr-perm-${process.pid}-${++seeded}`,
    at,
  );
  const path = pathTo(phase);
  const iso = at.toISOString();
  const exported = path.includes('exported');
  const completed = path.includes('completed');
  const seededTransfer: Transfer = {
    ...t,
    phase,
    ...(path.includes('approved') ? { approver: PEOPLE.approver } : {}),
    ...(path.includes('shipped') ? { shipping: { carrier: 'DHL', tracking: 'JD0001' } } : {}),
    // Chained as the lifecycle chains it (core/model/custody.ts), so the custody log checks.
    history: path.reduce(
      (h, p) =>
        appendHistory(t.id, h, {
          at: iso,
          actor: p.endsWith('ing') ? 'workflow' : PEOPLE.approver,
          phase: p,
        }),
      t.history,
    ),
    items: t.items.map((item, index) => ({
      ...item,
      result: completed
        ? { state: 'powered-on' as const, bytes: 100, updatedAt: iso }
        : exported && index === 1
          ? { state: 'failed' as const, bytes: 0, reason: 'VM is powered on', updatedAt: iso }
          : exported
            ? { state: 'exported' as const, bytes: 100, updatedAt: iso }
            : item.result,
    })),
  };
  await store.create(seededTransfer);
  return seededTransfer;
}
