import { OdtError } from '../errors.ts';

/**
 * Who may approve. The answer may come from a directory that changes at any time (a Slack user
 * group), so it is asked for each decision rather than held as a fixed set.
 */
export interface Approvers {
  /**
   * Whether `id` may approve now. Throws ApproversUnavailableError when the list cannot be read
   * (the caller refuses: an unreadable list never lets anyone through).
   */
  has(id: string): Promise<boolean>;
}

/** The approvers list cannot be read now (e.g. a user group the app may not read): nobody is let through. */
export class ApproversUnavailableError extends OdtError {
  /** The entry that could not be read, e.g. the user group id. */
  readonly entry: string;

  constructor(entry: string, message: string, options?: { cause?: unknown }) {
    super('FORBIDDEN', message, options);
    this.name = 'ApproversUnavailableError';
    this.entry = entry;
  }
}

/** A fixed list of approvers (user ids or CLI user names), as given at start. */
export function fixedApprovers(ids: Iterable<string>): Approvers {
  const set = new Set(ids);
  return { has: async (id) => set.has(id) };
}
