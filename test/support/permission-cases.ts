/**
 * Issue 23: who may do what to a transfer, as the cases every entry point is tested with (the
 * service, the bot, the admin API and `odt transfer`, the Slack function on AWS). Each case names
 * the phase the action is legal in; `seedTransfer` writes a transfer in that phase into a store, so
 * that a refusal is about the person and never about the phase.
 */
import type {
  PersonAction,
  ShippingEvent,
  Transfer,
  TransferPhase,
  TransferStore,
} from '../../core/index.ts';
import { createTransfer } from '../../core/index.ts';

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

/** The main path up to each phase a case starts from. */
const paths: Partial<Record<TransferPhase, readonly TransferPhase[]>> = {
  requested: [],
  approved: ['approved'],
  'appliance-sent': ['approved', 'appliance-sent'],
  exported: ['approved', 'appliance-sent', 'appliance-connected', 'exporting', 'exported'],
  shipped: ['approved', 'appliance-sent', 'appliance-connected', 'exporting', 'exported', 'shipped'],
  completed: [
    'approved',
    'appliance-sent',
    'appliance-connected',
    'exporting',
    'exported',
    'shipped',
    'received',
    'importing',
    'onboarding',
    'completed',
  ],
};

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
  const path = paths[phase];
  if (!path) throw new Error(`seedTransfer: no path to ${phase}`);
  const iso = at.toISOString();
  const exported = path.includes('exported');
  const completed = path.includes('completed');
  const seededTransfer: Transfer = {
    ...t,
    phase,
    ...(path.includes('approved') ? { approver: PEOPLE.approver } : {}),
    ...(path.includes('shipped') ? { shipping: { carrier: 'DHL', tracking: 'JD0001' } } : {}),
    history: [
      ...t.history,
      ...path.map((p) => ({ at: iso, actor: p.endsWith('ing') ? 'workflow' : PEOPLE.approver, phase: p })),
    ],
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
