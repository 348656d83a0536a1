import { CustodyError, checkCustody, entryWithHash, type Transfer } from '../core/index.ts';

const short = (hash: string | undefined): string => (hash ? hash.slice(0, 12) : '—'.padEnd(12));

/**
 * `odt transfer show <id> --history`: the custody log, one entry a line with its link and hash,
 * then the verdict. Throws CustodyError (exit 4) after printing when the chain breaks, naming the
 * entry found edited, or when `pinned` (a head hash a report quoted) is in no entry.
 */
export function writeCustodyLog(t: Transfer, write: (text: string) => void, pinned?: string): void {
  const check = checkCustody(t);
  const lines = t.history.map((h, i) => {
    const n = i + 1;
    const mark = check.broken?.entry === n ? '  ✗ EDITED' : '';
    return `${String(n).padStart(4)}  ${h.at}  ${h.phase.padEnd(22)} ${h.actor}${h.note ? `  ${h.note}` : ''}\n      prev ${short(h.prev)}  hash ${short(h.hash)}${mark}`;
  });
  write(`Custody log of ${t.id} (SHA-256 chain, ${t.history.length} entries)\n${lines.join('\n')}\n`);
  if (check.broken) throw new CustodyError(t.id, check.broken.entry, check.broken.reason);
  if (check.legacy > 0)
    write(
      `Not chained: all ${check.legacy} entries were written before the custody log was hash-chained; they are hashed when the transfer next changes.\n`,
    );
  else write(`Chain intact: every entry matches its hash and links to the one before; head ${check.head}\n`);
  if (pinned === undefined) return;
  // A whole chain can still be a rewritten one: the head hash a report quoted must be in it.
  const n = entryWithHash(t, pinned);
  if (n === undefined) {
    throw new CustodyError(
      t.id,
      undefined,
      `no entry has the hash ${pinned} (--pinned): the log was rewritten, hashes and all, after the report that quoted it (or the hash is another transfer's)`,
    );
  }
  write(`Pinned: entry ${n} has the hash the report quoted; entries 1-${n} are as they were then\n`);
}
