import type Database from 'better-sqlite3';
import type { ExecutionRecord, PendingTask, RunnerStore } from './runner-store.ts';

const schema = `
CREATE TABLE IF NOT EXISTS runner_executions (
  id     TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  body   TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS runner_tasks (
  token        TEXT PRIMARY KEY,
  execution_id TEXT NOT NULL,
  state        TEXT NOT NULL,
  body         TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS runner_tasks_by_state ON runner_tasks (execution_id, state);
`;

/**
 * The durable runner's executions and waiting callback tasks, in the control plane's SQLite file.
 * Writes are synchronous (better-sqlite3) and durable before the runner moves on.
 */
export class SqliteRunnerStore implements RunnerStore {
  private readonly stmts;

  constructor(db: Database.Database) {
    db.exec(schema);
    this.stmts = {
      putExecution: db.prepare(
        'INSERT INTO runner_executions (id, status, body) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET status = excluded.status, body = excluded.body',
      ),
      getExecution: db.prepare<[string], { body: string }>('SELECT body FROM runner_executions WHERE id = ?'),
      listRunning: db.prepare<[], { body: string }>(
        "SELECT body FROM runner_executions WHERE status = 'running' ORDER BY id",
      ),
      putTask: db.prepare(
        'INSERT INTO runner_tasks (token, execution_id, state, body) VALUES (?, ?, ?, ?) ON CONFLICT(token) DO UPDATE SET body = excluded.body',
      ),
      getTask: db.prepare<[string], { body: string }>('SELECT body FROM runner_tasks WHERE token = ?'),
      findTask: db.prepare<[string, string], { body: string }>(
        'SELECT body FROM runner_tasks WHERE execution_id = ? AND state = ?',
      ),
      deleteTask: db.prepare('DELETE FROM runner_tasks WHERE token = ?'),
    };
  }

  putExecution(r: ExecutionRecord): void {
    this.stmts.putExecution.run(r.id, r.status, JSON.stringify(r));
  }
  getExecution(id: string): ExecutionRecord | undefined {
    const row = this.stmts.getExecution.get(id);
    return row ? (JSON.parse(row.body) as ExecutionRecord) : undefined;
  }
  listRunning(): ExecutionRecord[] {
    return this.stmts.listRunning.all().map((r) => JSON.parse(r.body) as ExecutionRecord);
  }
  putTask(t: PendingTask): void {
    this.stmts.putTask.run(t.token, t.executionId, t.state, JSON.stringify(t));
  }
  getTask(token: string): PendingTask | undefined {
    const row = this.stmts.getTask.get(token);
    return row ? (JSON.parse(row.body) as PendingTask) : undefined;
  }
  findTask(executionId: string, state: string): PendingTask | undefined {
    const row = this.stmts.findTask.get(executionId, state);
    return row ? (JSON.parse(row.body) as PendingTask) : undefined;
  }
  deleteTask(token: string): void {
    this.stmts.deleteTask.run(token);
  }
}
