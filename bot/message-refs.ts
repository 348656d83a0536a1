/**
 * Where a transfer's Slack messages are, and when its progress message was last updated: the
 * state the Slack chat notifier needs to keep updating the same message after `odt serve`
 * restarts. Two implementations: in memory (tests, one-shot runs) and SQLite (the embedded
 * default).
 */
import Database from 'better-sqlite3';

export interface TransferMessageRef {
  readonly transferId: string;
  /** Channel of the thread and of the progress message. */
  readonly channel?: string;
  /** The approval request's ts: the transfer's thread in the approvers' channel. */
  readonly threadTs?: string;
  /** The one progress message, updated in place. */
  readonly progressTs?: string;
  /** Epoch ms of the last post or update of the progress message (the throttle's memory). */
  readonly lastUpdateAt?: number;
  /** The last report posted, and which round of the transfer it reported (no double post). */
  readonly reportTs?: string;
  readonly reportKey?: string;
}

export type MessageRefPatch = Partial<Omit<TransferMessageRef, 'transferId'>>;

export interface MessageRefs {
  get(transferId: string): Promise<TransferMessageRef | undefined>;
  /** Sets the given fields, keeps the others; creates the record if needed. */
  update(transferId: string, patch: MessageRefPatch): Promise<TransferMessageRef>;
}

const defined = (patch: MessageRefPatch): MessageRefPatch =>
  Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as MessageRefPatch;

export class MemoryMessageRefs implements MessageRefs {
  private readonly refs = new Map<string, TransferMessageRef>();

  async get(transferId: string): Promise<TransferMessageRef | undefined> {
    return this.refs.get(transferId);
  }

  async update(transferId: string, patch: MessageRefPatch): Promise<TransferMessageRef> {
    const next = { ...(this.refs.get(transferId) ?? { transferId }), ...defined(patch), transferId };
    this.refs.set(transferId, next);
    return next;
  }
}

const schema = `
CREATE TABLE IF NOT EXISTS slack_message_refs (
  transfer_id    TEXT PRIMARY KEY,
  channel        TEXT,
  thread_ts      TEXT,
  progress_ts    TEXT,
  last_update_ms INTEGER,
  report_ts      TEXT,
  report_key     TEXT
) STRICT;
`;

interface Row {
  transfer_id: string;
  channel: string | null;
  thread_ts: string | null;
  progress_ts: string | null;
  last_update_ms: number | null;
  report_ts: string | null;
  report_key: string | null;
}

const fromRow = (r: Row): TransferMessageRef => ({
  transferId: r.transfer_id,
  ...(r.channel !== null ? { channel: r.channel } : {}),
  ...(r.thread_ts !== null ? { threadTs: r.thread_ts } : {}),
  ...(r.progress_ts !== null ? { progressTs: r.progress_ts } : {}),
  ...(r.last_update_ms !== null ? { lastUpdateAt: r.last_update_ms } : {}),
  ...(r.report_ts !== null ? { reportTs: r.report_ts } : {}),
  ...(r.report_key !== null ? { reportKey: r.report_key } : {}),
});

/** The refs in a SQLite file (its own table; it may share the control plane's database). */
export class SqliteMessageRefs implements MessageRefs {
  private readonly db: Database.Database;
  private readonly owned: boolean;
  private readonly stmts;

  /** Opens (or creates) a SQLite file; close() closes it. */
  static open(file: string): SqliteMessageRefs {
    const db = new Database(file, { timeout: 5000 });
    db.pragma('journal_mode = WAL');
    return new SqliteMessageRefs(db, true);
  }

  /** Uses an open database (e.g. the control plane's); close() leaves it open unless `owned`. */
  constructor(db: Database.Database, owned = false) {
    this.db = db;
    this.owned = owned;
    db.exec(schema);
    this.stmts = {
      get: db.prepare<[string], Row>('SELECT * FROM slack_message_refs WHERE transfer_id = ?'),
      upsert: db.prepare(
        `INSERT INTO slack_message_refs (transfer_id, channel, thread_ts, progress_ts, last_update_ms, report_ts, report_key)
         VALUES (@transferId, @channel, @threadTs, @progressTs, @lastUpdateAt, @reportTs, @reportKey)
         ON CONFLICT(transfer_id) DO UPDATE SET
           channel = COALESCE(excluded.channel, channel),
           thread_ts = COALESCE(excluded.thread_ts, thread_ts),
           progress_ts = COALESCE(excluded.progress_ts, progress_ts),
           last_update_ms = COALESCE(excluded.last_update_ms, last_update_ms),
           report_ts = COALESCE(excluded.report_ts, report_ts),
           report_key = COALESCE(excluded.report_key, report_key)`,
      ),
    };
  }

  async get(transferId: string): Promise<TransferMessageRef | undefined> {
    const row = this.stmts.get.get(transferId);
    return row ? fromRow(row) : undefined;
  }

  async update(transferId: string, patch: MessageRefPatch): Promise<TransferMessageRef> {
    this.stmts.upsert.run({
      transferId,
      channel: patch.channel ?? null,
      threadTs: patch.threadTs ?? null,
      progressTs: patch.progressTs ?? null,
      lastUpdateAt: patch.lastUpdateAt ?? null,
      reportTs: patch.reportTs ?? null,
      reportKey: patch.reportKey ?? null,
    });
    return fromRow(this.stmts.get.get(transferId)!);
  }

  close(): void {
    if (this.owned) this.db.close();
  }
}
