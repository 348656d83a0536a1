import type { TransferPhase } from '../../core/index.ts';

/**
 * The phases of a transfer that nothing goes wrong with, from the request to completion
 * (DESIGN.md, "Lifecycle"). Written out, not derived from core/model/phases.ts: the tests that
 * use it pin the lifecycle instead of reading back what the code says.
 */
export const happyPath: readonly TransferPhase[] = [
  'requested',
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
];
