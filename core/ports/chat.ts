import type { Transfer } from '../model/transfer.ts';
import type { TaskProgress } from './task-queue.ts';

/** What the people following a transfer see (Slack in production; a console in the sandbox). */
export interface ChatNotifier {
  /** The transfer changed phase or an item changed state. */
  transferChanged(transfer: Transfer): Promise<void>;
  /** Live progress; sampled by the caller, never more often than every few seconds. */
  progress(transfer: Transfer, progress: readonly TaskProgress[]): Promise<void>;
  /** The final per-item report. */
  report(transfer: Transfer): Promise<void>;
}
