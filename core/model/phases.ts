/**
 * The lifecycle of one transfer and of each item in it (DESIGN.md, "Lifecycle"), as data:
 * the phases and the transitions that are legal between them.
 */

export const transferPhases = [
  'requested',
  'approved',
  'rejected',
  'expired',
  'appliance-sent',
  'appliance-connected',
  'exporting',
  'exported',
  'shipped',
  'received',
  'importing',
  'onboarding',
  'completed',
  'completed-with-errors',
  'failed',
  'cancelled',
  'wiped',
] as const;
export type TransferPhase = (typeof transferPhases)[number];

/** Phases from which the transfer can still be cancelled (every wait before data is imported). */
const cancellable = [
  'requested',
  'approved',
  'appliance-sent',
  'appliance-connected',
  'exporting',
  'exported',
  'shipped',
  'received',
] as const satisfies readonly TransferPhase[];

const withCancel = (next: readonly TransferPhase[]): readonly TransferPhase[] => [...next, 'cancelled'];

/**
 * Legal next phases. `exporting → exporting` and `importing → importing` are absent on purpose:
 * a retry of failed items goes back through the phase that does the work, from an end phase.
 */
export const transferTransitions: Readonly<Record<TransferPhase, readonly TransferPhase[]>> = {
  requested: withCancel(['approved', 'rejected', 'expired']),
  approved: withCancel(['appliance-sent']),
  rejected: [],
  expired: [],
  'appliance-sent': withCancel(['appliance-connected']),
  'appliance-connected': withCancel(['exporting']),
  exporting: withCancel(['exported', 'failed']),
  // An export with failed items may be retried before the NAS is shipped.
  exported: withCancel(['shipped', 'exporting']),
  shipped: withCancel(['received']),
  received: withCancel(['importing']),
  importing: ['onboarding', 'completed-with-errors', 'failed'],
  onboarding: ['completed', 'completed-with-errors', 'failed'],
  // "Retry the failed items" re-enters import for those items only.
  'completed-with-errors': ['importing', 'wiped'],
  // A failed export can be retried while the NAS is still on site; a failed import while it is here.
  failed: ['exporting', 'importing', 'wiped'],
  completed: ['wiped'],
  cancelled: ['wiped'],
  wiped: [],
};

export const isCancellable = (phase: TransferPhase): boolean =>
  (cancellable as readonly TransferPhase[]).includes(phase);

export const canTransition = (from: TransferPhase, to: TransferPhase): boolean =>
  transferTransitions[from].includes(to);

/** The states of one item (VM, template or vApp) along the data path. */
export const itemStates = [
  'pending',
  'exporting',
  'exported',
  'verified',
  'importing',
  'imported',
  'onboarded',
  'powered-on',
  'failed',
] as const;
export type ItemState = (typeof itemStates)[number];

export const itemTransitions: Readonly<Record<ItemState, readonly ItemState[]>> = {
  pending: ['exporting', 'failed'],
  exporting: ['exported', 'failed'],
  exported: ['verified', 'failed'],
  verified: ['importing', 'failed'],
  importing: ['imported', 'failed'],
  // An item that is not to be placed in vCloud Director ends as imported.
  imported: ['onboarded', 'failed'],
  // Onboarded is final for items not to be powered on (powerOn: false, e.g. a template left in its
  // catalog); a catalog template with powerOn is instantiated as a vApp and ends powered-on.
  onboarded: ['powered-on', 'failed'],
  'powered-on': [],
  // A failed item is retried from the step that failed: export again, or verify and import again.
  failed: ['exporting', 'importing', 'verified'],
};

export const canItemTransition = (from: ItemState, to: ItemState): boolean =>
  itemTransitions[from].includes(to);
