/**
 * The embedded store: transfers, callback tokens and agent tasks in one SQLite file under the
 * state directory (better-sqlite3 12, WAL mode).
 *
 * better-sqlite3 is synchronous, so inside one process every call runs to completion before the
 * next; across processes or connections on the same file, each conditional write is a single
 * statement or an IMMEDIATE transaction (read, decide, write under the write lock), so of two
 * concurrent writers from the same version exactly one wins.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ConflictError, NotFoundError } from '../../core/errors.ts';
import type { TransferPhase } from '../../core/model/phases.ts';
import type { Transfer } from '../../core/model/transfer.ts';
import type { Stores, TokenStore, TransferFilter, TransferStore } from '../../core/ports/store.ts';
import {
  type AgentTask,
  type ItemOutcome,
  isTaskOpen,
  type TaskProgress,
  type TaskQueue,
  type TaskRecord,
  taskRules,
} from '../../core/ports/task-queue.ts';

/** File name of the store inside the state directory. */
export const storeFileName = 'odt.sqlite';

export interface SqliteStoreOptions {
  /** Path of the database file (created with its directory if missing). */
  readonly file: string;
  /** How long a writer waits for another connection's write lock, in ms (default 5000). */
  readonly busyTimeoutMs?: number;
  /**
   * FULL (default) syncs every commit; NORMAL survives a killed process but may lose the last
   * commits on power loss.
   */
  readonly synchronous?: 'FULL' | 'NORMAL';
}

const schemaVersion = 1;

const schema = `
CREATE TABLE IF NOT EXISTS transfers (
  id            TEXT PRIMARY KEY,
  site          TEXT NOT NULL,
  provider_site TEXT NOT NULL,
  phase         TEXT NOT NULL,
  version       INTEGER NOT NULL,
  created_at    TEXT NOT NULL,
  body          TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS transfers_by_created ON transfers (created_at, id);
CREATE TABLE IF NOT EXISTS tokens (
  transfer_id TEXT NOT NULL,
  wait        TEXT NOT NULL,
  token       TEXT NOT NULL,
  PRIMARY KEY (transfer_id, wait)
) STRICT;
CREATE TABLE IF NOT EXISTS tasks (
  id          TEXT PRIMARY KEY,
  site        TEXT NOT NULL,
  status      TEXT NOT NULL,
  enqueued_at TEXT NOT NULL,
  body        TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS tasks_by_site ON tasks (site, status, enqueued_at);
`;

interface TransferRow {
  body: string;
}
interface TaskRow {
  body: string;
}

export class SqliteStore implements Stores {
  /** The connection, for other embedded tables (e.g. the local runner's) in the same file. */
  readonly db: Database.Database;
  readonly transfers: TransferStore;
  readonly tokens: TokenStore;
  readonly tasks: TaskQueue;

  /** Opens (or creates) `<stateDir>/odt.sqlite`. */
  static open(stateDir: string, options: Omit<SqliteStoreOptions, 'file'> = {}): SqliteStore {
    mkdirSync(stateDir, { recursive: true });
    return new SqliteStore({ ...options, file: join(stateDir, storeFileName) });
  }

  constructor(options: SqliteStoreOptions) {
    this.db = new Database(options.file, { timeout: options.busyTimeoutMs ?? 5000 });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
    this.db
      .transaction(() => {
        const current = this.db.pragma('user_version', { simple: true }) as number;
        if (current > schemaVersion) {
          throw new Error(
            `${options.file} has store schema ${current}, newer than this odt (${schemaVersion}); upgrade odt`,
          );
        }
        this.db.exec(schema);
        this.db.pragma(`user_version = ${schemaVersion}`);
      })
      .immediate();
    this.transfers = new SqliteTransferStore(this.db);
    this.tokens = new SqliteTokenStore(this.db);
    this.tasks = new SqliteTaskQueue(this.db);
  }

  close(): void {
    this.db.close();
  }
}

class SqliteTransferStore implements TransferStore {
  constructor(private readonly db: Database.Database) {}

  async get(id: string): Promise<Transfer | undefined> {
    const row = this.db.prepare<[string], TransferRow>('SELECT body FROM transfers WHERE id = ?').get(id);
    return row ? (JSON.parse(row.body) as Transfer) : undefined;
  }

  async create(transfer: Transfer): Promise<void> {
    const info = this.db
      .prepare(
        `INSERT INTO transfers (id, site, provider_site, phase, version, created_at, body)
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
      )
      .run(
        transfer.id,
        transfer.site,
        transfer.providerSite,
        transfer.phase,
        transfer.version,
        transfer.createdAt,
        JSON.stringify(transfer),
      );
    if (info.changes !== 1) throw new ConflictError(`transfer '${transfer.id}' already exists`);
  }

  async update(transfer: Transfer): Promise<Transfer> {
    const next: Transfer = { ...transfer, version: transfer.version + 1 };
    const info = this.db
      .prepare(
        `UPDATE transfers SET site = ?, provider_site = ?, phase = ?, version = ?, created_at = ?, body = ?
         WHERE id = ? AND version = ?`,
      )
      .run(
        next.site,
        next.providerSite,
        next.phase,
        next.version,
        next.createdAt,
        JSON.stringify(next),
        transfer.id,
        transfer.version,
      );
    if (info.changes === 1) return next;
    const stored = await this.get(transfer.id);
    if (!stored) throw new NotFoundError('transfer', transfer.id);
    throw new ConflictError(
      `transfer '${transfer.id}' changed meanwhile (version ${stored.version}, not ${transfer.version}); re-read it`,
    );
  }

  async list(filter: TransferFilter = {}): Promise<readonly Transfer[]> {
    const where: string[] = [];
    const args: string[] = [];
    if (filter.site !== undefined) {
      where.push('site = ?');
      args.push(filter.site);
    }
    if (filter.providerSite !== undefined) {
      where.push('provider_site = ?');
      args.push(filter.providerSite);
    }
    if (filter.phase !== undefined) {
      const phases: readonly TransferPhase[] =
        typeof filter.phase === 'string' ? [filter.phase] : filter.phase;
      if (phases.length === 0) return [];
      where.push(`phase IN (${phases.map(() => '?').join(', ')})`);
      args.push(...phases);
    }
    const sql = `SELECT body FROM transfers ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, id`;
    return this.db
      .prepare<string[], TransferRow>(sql)
      .all(...args)
      .map((r) => JSON.parse(r.body) as Transfer);
  }
}

class SqliteTokenStore implements TokenStore {
  constructor(private readonly db: Database.Database) {}

  async putToken(transferId: string, wait: string, token: string): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO tokens (transfer_id, wait, token) VALUES (?, ?, ?)
         ON CONFLICT (transfer_id, wait) DO UPDATE SET token = excluded.token`,
      )
      .run(transferId, wait, token);
  }

  async takeToken(transferId: string, wait: string): Promise<string | undefined> {
    const row = this.db
      .prepare<[string, string], { token: string }>(
        'DELETE FROM tokens WHERE transfer_id = ? AND wait = ? RETURNING token',
      )
      .get(transferId, wait);
    return row?.token;
  }

  async peekToken(transferId: string, wait: string): Promise<string | undefined> {
    const row = this.db
      .prepare<[string, string], { token: string }>(
        'SELECT token FROM tokens WHERE transfer_id = ? AND wait = ?',
      )
      .get(transferId, wait);
    return row?.token;
  }
}

class SqliteTaskQueue implements TaskQueue {
  constructor(private readonly db: Database.Database) {}

  async enqueue(task: AgentTask, now: Date): Promise<void> {
    const rec = taskRules.enqueued(task, now);
    const info = this.db
      .prepare(
        `INSERT INTO tasks (id, site, status, enqueued_at, body) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (id) DO NOTHING`,
      )
      .run(rec.id, rec.site, rec.status, rec.enqueuedAt, JSON.stringify(rec));
    if (info.changes !== 1) throw new ConflictError(`task '${task.id}' is already enqueued`);
  }

  async get(taskId: string): Promise<TaskRecord | undefined> {
    return this.readTask(taskId);
  }

  async listOpen(site: string, now: Date): Promise<readonly TaskRecord[]> {
    return this.db
      .prepare<[string], TaskRow>(
        `SELECT body FROM tasks WHERE site = ? AND status IN ('open', 'claimed') ORDER BY enqueued_at, id`,
      )
      .all(site)
      .map((r) => JSON.parse(r.body) as TaskRecord)
      .filter((t) => isTaskOpen(t, now));
  }

  async claim(taskId: string, site: string, agentId: string, now: Date): Promise<TaskRecord> {
    return this.changeTask(taskId, (rec) => taskRules.claim(rec, taskId, site, agentId, now));
  }

  async heartbeat(
    taskId: string,
    agentId: string,
    progress: readonly TaskProgress[],
    now: Date,
  ): Promise<void> {
    this.changeTask(taskId, (rec) => taskRules.heartbeat(rec, taskId, agentId, progress, now));
  }

  async complete(
    taskId: string,
    agentId: string,
    outcomes: readonly ItemOutcome[],
    now: Date,
  ): Promise<void> {
    this.changeTask(taskId, (rec) => taskRules.complete(rec, taskId, agentId, outcomes, now));
  }

  async fail(taskId: string, agentId: string, code: string, reason: string, now: Date): Promise<void> {
    this.changeTask(taskId, (rec) => taskRules.fail(rec, taskId, agentId, code, reason, now));
  }

  async release(taskId: string, agentId: string): Promise<void> {
    this.changeTask(taskId, (rec) => taskRules.release(rec, taskId, agentId));
  }

  async cancel(taskId: string, code: string, reason: string, now: Date): Promise<boolean> {
    let changed = false;
    this.changeTask(taskId, (rec) => {
      const next = taskRules.cancel(rec, taskId, code, reason, now);
      changed = next !== undefined;
      return next;
    });
    return changed;
  }

  private readTask(taskId: string): TaskRecord | undefined {
    const row = this.db.prepare<[string], TaskRow>('SELECT body FROM tasks WHERE id = ?').get(taskId);
    return row ? (JSON.parse(row.body) as TaskRecord) : undefined;
  }

  /** Read, apply a rule, write: one IMMEDIATE transaction, so it holds across connections. */
  private changeTask<R extends TaskRecord | undefined>(
    taskId: string,
    rule: (rec: TaskRecord | undefined) => R,
  ): R {
    return this.db
      .transaction(() => {
        const next = rule(this.readTask(taskId));
        if (next) {
          this.db
            .prepare('UPDATE tasks SET status = ?, body = ? WHERE id = ?')
            .run(next.status, JSON.stringify(next), taskId);
        }
        return next;
      })
      .immediate();
  }
}
