import { ForbiddenError, IllegalTransitionError, NotFoundError } from '../errors.ts';
import { parseOrThrow } from '../validate.ts';
import { appendHistory } from './custody.ts';
import { refusal } from './permissions.ts';
import {
  canItemTransition,
  canTransition,
  type ItemState,
  itemTransitions,
  type TransferPhase,
  transferTransitions,
} from './phases.ts';
import {
  type ExportCapture,
  type Item,
  type PlacedNames,
  type Transfer,
  type TransferRequest,
  transferRequestSchema,
} from './transfer.ts';

export interface Stamp {
  readonly actor: string;
  readonly at: Date;
  readonly note?: string;
}

/** Builds a new transfer in phase `requested` from a validated request. */
export function createTransfer(request: TransferRequest, id: string, at: Date): Transfer {
  const req = parseOrThrow(transferRequestSchema, request, 'The transfer request');
  const iso = at.toISOString();
  const items: Item[] = req.items.map((it, index) => ({
    id: `item-${index + 1}`,
    kind: it.kind,
    source: it.source,
    ...(it.sizeBytes === undefined ? {} : { sizeBytes: it.sizeBytes }),
    target: it.target,
    result: { state: 'pending', bytes: 0, updatedAt: iso },
  }));
  return {
    id,
    site: req.site,
    providerSite: req.providerSite,
    requester: req.requester,
    phase: 'requested',
    items,
    history: appendHistory(id, [], { at: iso, actor: req.requester, phase: 'requested' }),
    version: 0,
    createdAt: iso,
    updatedAt: iso,
  };
}

/** Returns the transfer moved to `to`, with a custody-log entry; throws if the lifecycle forbids it. */
export function transition(transfer: Transfer, to: TransferPhase, stamp: Stamp): Transfer {
  if (!canTransition(transfer.phase, to)) {
    throw new IllegalTransitionError(
      `Transfer ${transfer.id}`,
      transfer.phase,
      to,
      transferTransitions[transfer.phase],
    );
  }
  const at = stamp.at.toISOString();
  return {
    ...transfer,
    phase: to,
    history: appendHistory(transfer.id, transfer.history, {
      at,
      actor: stamp.actor,
      phase: to,
      ...(stamp.note === undefined ? {} : { note: stamp.note }),
    }),
    updatedAt: at,
  };
}

/**
 * Returns the transfer with a custody-log entry that does not change its phase (a retry asked
 * for, a wipe statement), chained like every other entry (custody.ts).
 */
export function record(transfer: Transfer, stamp: Stamp): Transfer {
  const at = stamp.at.toISOString();
  return {
    ...transfer,
    history: appendHistory(transfer.id, transfer.history, {
      at,
      actor: stamp.actor,
      phase: transfer.phase,
      ...(stamp.note === undefined ? {} : { note: stamp.note }),
    }),
    updatedAt: at,
  };
}

/**
 * Approves a requested transfer. Four eyes: the requester never approves their own request, and
 * only members of `approvers` may approve at all (the rule: permissions.ts).
 */
export function approve(
  transfer: Transfer,
  approver: string,
  approvers: ReadonlySet<string>,
  at: Date,
): Transfer {
  assertMayDecide('approve', transfer, approver, approvers);
  return { ...transition(transfer, 'approved', { actor: approver, at }), approver };
}

/** Rejects a requested transfer with a reason; the same people who may approve may reject. */
export function reject(
  transfer: Transfer,
  approver: string,
  approvers: ReadonlySet<string>,
  reason: string,
  at: Date,
): Transfer {
  assertMayDecide('reject', transfer, approver, approvers);
  const why = reason.trim();
  if (why === '') throw new ForbiddenError('A rejection needs a reason the requester can act on.');
  return {
    ...transition(transfer, 'rejected', { actor: approver, at, note: why }),
    approver,
    rejectReason: why,
  };
}

function assertMayDecide(
  action: 'approve' | 'reject',
  transfer: Transfer,
  who: string,
  approvers: ReadonlySet<string>,
): void {
  const refused = refusal(action, transfer, { id: who, isApprover: approvers.has(who) });
  if (refused) throw refused;
}

export interface ItemUpdate {
  readonly state: ItemState;
  readonly reason?: string;
  readonly code?: string;
  readonly bytes?: number;
  /** Where its VMs are, by name; kept from the item's last result when not given. */
  readonly names?: PlacedNames;
  /** How the export read it; kept from the item's last result when not given. */
  readonly capture?: ExportCapture;
}

/** Returns the transfer with one item moved to a new state; throws if the item's lifecycle forbids it. */
export function updateItem(transfer: Transfer, itemId: string, update: ItemUpdate, at: Date): Transfer {
  const iso = at.toISOString();
  let found = false;
  const items = transfer.items.map((item) => {
    if (item.id !== itemId) return item;
    found = true;
    const from = item.result.state;
    if (from !== update.state && !canItemTransition(from, update.state)) {
      throw new IllegalTransitionError(
        `Item ${itemId} of ${transfer.id}`,
        from,
        update.state,
        itemTransitions[from],
      );
    }
    return {
      ...item,
      result: {
        state: update.state,
        bytes: update.bytes ?? item.result.bytes,
        updatedAt: iso,
        ...(update.reason === undefined ? {} : { reason: update.reason }),
        ...(update.code === undefined ? {} : { code: update.code }),
        ...((update.names ?? item.result.names) ? { names: update.names ?? item.result.names } : {}),
        ...((update.capture ?? item.result.capture)
          ? { capture: update.capture ?? item.result.capture }
          : {}),
      },
    };
  });
  if (!found) throw new NotFoundError('Item', `${transfer.id}/${itemId}`);
  return { ...transfer, items, updatedAt: iso };
}

/** Items that failed: the ones "retry the failed items" acts on. */
export const failedItems = (transfer: Transfer): readonly Item[] =>
  transfer.items.filter((i) => i.result.state === 'failed');

/** The end phase of a transfer from its items: all good, some failed, or none worked. */
export function outcome(transfer: Transfer): 'completed' | 'completed-with-errors' | 'failed' {
  const failed = failedItems(transfer).length;
  if (failed === 0) return 'completed';
  return failed === transfer.items.length ? 'failed' : 'completed-with-errors';
}
