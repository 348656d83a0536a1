import { createHash } from 'node:crypto';
import { CodedError } from '../errors.ts';
import type { HistoryEntry, Transfer } from './transfer.ts';

/**
 * The custody log: a transfer's history as an append-only, hash-chained record (issue #18).
 *
 * Each entry carries `prev`, the hash of the entry before it (64 zeros for the first), and `hash`,
 * the SHA-256 (hex) of its canonical encoding:
 *
 *     JSON.stringify(["odt-custody-v1", transferId, prev, at, actor, phase, note ?? null])
 *
 * a JSON array of strings (and one null), so that key order, spacing and number formats play no
 * part; the transfer id binds every entry to its transfer (an entry cannot be moved into
 * another transfer's log). Editing an entry's content breaks its own hash; editing it and
 * recomputing its hash breaks the next entry's `prev`. Only the newest entry, rewritten with a
 * recomputed hash, cannot be told from inside the record: the final report quotes the head hash
 * so that a copy outside the store pins it.
 *
 * History written before the chain existed (entries without `hash`) is a legacy prefix: it loads
 * and shows as such, unchecked, and the next entry appended to that transfer hashes it in place
 * (`appendHistory`), so from then on it is covered like the rest.
 */

export const custodyFormat = 'odt-custody-v1';

/** The `prev` of a transfer's first entry. */
export const genesisHash = '0'.repeat(64);

/** What an entry says, before it is chained. */
export type CustodyFact = Pick<HistoryEntry, 'at' | 'actor' | 'phase' | 'note'>;

/** The canonical encoding of an entry of `transferId`'s log that follows `prev`. */
export function canonicalEntry(transferId: string, prev: string, e: CustodyFact): string {
  return JSON.stringify([custodyFormat, transferId, prev, e.at, e.actor, e.phase, e.note ?? null]);
}

/** SHA-256 (hex) of the canonical encoding. */
export const entryHash = (transferId: string, prev: string, e: CustodyFact): string =>
  createHash('sha256')
    .update(canonicalEntry(transferId, prev, e), 'utf8')
    .digest('hex');

const chained = (transferId: string, prev: string, e: CustodyFact): HistoryEntry => ({
  at: e.at,
  actor: e.actor,
  phase: e.phase,
  ...(e.note === undefined ? {} : { note: e.note }),
  prev,
  hash: entryHash(transferId, prev, e),
});

/**
 * The history with `fact` appended as a chained entry. A history that has no hashes at all (written
 * before the chain) is hashed in place first. The one way entries are added: `transition` and
 * every other writer of the history go through here.
 */
export function appendHistory(
  transferId: string,
  history: readonly HistoryEntry[],
  fact: CustodyFact,
): HistoryEntry[] {
  let sealed: HistoryEntry[] = [...history];
  if (sealed.length > 0 && sealed.every((e) => e.hash === undefined)) {
    sealed = [];
    for (const e of history) sealed.push(chained(transferId, sealed.at(-1)?.hash ?? genesisHash, e));
  }
  const last = sealed.at(-1);
  // A last entry without a hash after hashed ones is a break that checkCustody reports; the new
  // entry links to what it would have hashed to, and does not hide it.
  const prev = last === undefined ? genesisHash : (last.hash ?? entryHash(transferId, last.prev ?? '', last));
  return [...sealed, chained(transferId, prev, fact)];
}

/** The verdict on one transfer's custody log. */
export interface CustodyCheck {
  readonly ok: boolean;
  /** Entries written before the chain (no hash), not checked; 0 once the log is chained. */
  readonly legacy: number;
  /** The hash of the newest entry: what a copy outside the store pins. */
  readonly head?: string;
  /** Where the chain breaks: the 1-based number of the entry found edited, and why. */
  readonly broken?: { readonly entry: number; readonly reason: string };
}

/** Checks every link and hash of `transfer`'s history. */
export function checkCustody(transfer: Pick<Transfer, 'id' | 'history'>): CustodyCheck {
  const h = transfer.history;
  if (h.length > 0 && h.every((e) => e.hash === undefined)) return { ok: true, legacy: h.length };
  let prev = genesisHash;
  for (const [i, e] of h.entries()) {
    const n = i + 1;
    const fail = (reason: string): CustodyCheck => ({ ok: false, legacy: 0, broken: { entry: n, reason } });
    if (e.hash === undefined || e.prev === undefined) {
      return fail(`entry ${n} has no hash: it was added or rewritten outside the custody log`);
    }
    if (e.prev !== prev) {
      // This entry still matches its own hash, so its link says the entry before it changed (or
      // an entry between them was removed): the entry before is the one edited.
      return n === 1
        ? fail('entry 1 does not start the chain: entries before it were removed')
        : {
            ok: false,
            legacy: 0,
            broken: {
              entry: n - 1,
              reason: `entry ${n - 1} was edited and its hash recomputed, or an entry after it removed: entry ${n} links to ${e.prev.slice(0, 12)}…, not to ${prev.slice(0, 12)}…`,
            },
          };
    }
    if (entryHash(transfer.id, e.prev, e) !== e.hash) {
      return fail(`entry ${n} was edited: its content no longer matches its hash ${e.hash.slice(0, 12)}…`);
    }
    prev = e.hash;
  }
  return { ok: true, legacy: 0, ...(h.length > 0 ? { head: prev } : {}) };
}

/**
 * The 1-based number of the entry whose hash is `hash` (a head hash a report quoted), or undefined
 * when none has it: the log up to that report was rewritten, hashes and all.
 */
export function entryWithHash(transfer: Pick<Transfer, 'history'>, hash: string): number | undefined {
  const i = transfer.history.findIndex((e) => e.hash === hash.trim().toLowerCase());
  return i < 0 ? undefined : i + 1;
}

/**
 * The custody log of a transfer does not check (exit code 4: not trusted): broken at `entry`, or
 * (`entry` undefined) whole but without the head hash a report quoted.
 */
export class CustodyError extends CodedError<'CUSTODY_BROKEN'> {
  constructor(
    readonly transferId: string,
    readonly entry: number | undefined,
    reason: string,
  ) {
    super(
      'CUSTODY_BROKEN',
      `The custody log of ${transferId} ${entry === undefined ? 'does not check' : `is broken at entry ${entry}`}: ${reason}. The store was changed outside Sneakernet; compare it with the head hash in the transfer's report.`,
    );
    this.name = 'CustodyError';
  }
}

/** Throws CustodyError where the chain breaks; the check otherwise. */
export function assertCustody(transfer: Pick<Transfer, 'id' | 'history'>): CustodyCheck {
  const check = checkCustody(transfer);
  if (check.broken) throw new CustodyError(transfer.id, check.broken.entry, check.broken.reason);
  return check;
}

/**
 * One line on the custody log for a report (Slack's and the sandbox's): how many entries, whether
 * the chain holds, and its head hash, which a copy of the report pins outside the store.
 */
export function custodySummary(
  transfer: Pick<Transfer, 'id' | 'history'>,
  how = `\`odt transfer show ${transfer.id} --history\``,
): string {
  const c = checkCustody(transfer);
  if (c.broken) return `custody log BROKEN at entry ${c.broken.entry}: ${c.broken.reason}; see ${how}`;
  if (c.legacy > 0)
    return `custody log: ${c.legacy} entries written before it was chained, not checked (${how})`;
  return `custody log: ${transfer.history.length} entries, chain intact, head ${c.head} (${how})`;
}
