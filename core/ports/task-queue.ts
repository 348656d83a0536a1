import { ConflictError, ForbiddenError, NotFoundError } from '../errors.ts';
import type { ExportCapture, PlacedNames } from '../model/transfer.ts';

/**
 * Work for the on-prem agents, routed per site (an activity ARN cannot be; DESIGN.md).
 *
 * A task is `open` until an agent of its site claims it; the holder then heartbeats at least every
 * `heartbeatSeconds`, and ends it with `complete` or `fail` (or hands it back with `release`). A
 * holder that misses its heartbeat loses its hold: the task is listed again and another agent (or
 * the same one, restarted) may claim it. Time is always passed in (`now`), never read inside.
 */
/**
 * `make-key` and `destroy-key` go to the ODT node (the provider site): it makes the transfer's own
 * age identity when the transfer is approved, and destroys it at the wipe (issue #18). They cover
 * no items; the node answers each with a signed statement (core/model/transfer-key.ts).
 */
export const taskKinds = ['export', 'import', 'make-key', 'destroy-key'] as const;
export type TaskKind = (typeof taskKinds)[number];

export interface AgentTask {
  readonly id: string;
  readonly kind: TaskKind;
  readonly site: string;
  readonly transferId: string;
  /** Item ids this task covers (all items, or the failed ones on a retry). */
  readonly itemIds: readonly string[];
  readonly heartbeatSeconds: number;
}

export interface TaskProgress {
  readonly itemId: string;
  readonly bytesDone: number;
  readonly bytesTotal?: number;
  readonly bytesPerSecond?: number;
  /**
   * `verifying`: an import's check of the returned NAS, before anything reaches vCenter (the
   * bytes are of the item's encrypted files, read and hashed). Absent: the data moves.
   */
  readonly stage?: 'verifying';
}

export interface ItemOutcome {
  readonly itemId: string;
  readonly ok: boolean;
  readonly reason?: string;
  readonly code?: string;
  readonly bytes?: number;
  /** For an import: how far the item got (imported, onboarded or powered-on). */
  readonly state?: 'imported' | 'onboarded' | 'powered-on';
  /** For an import: what its VMs are called in vCenter (and vCloud Director), also when it failed after. */
  readonly names?: PlacedNames;
  /** For an export: how the item was read (live from a snapshot, or cold) and whether it can be delta-synced. */
  readonly capture?: ExportCapture;
}

export const taskStatuses = ['open', 'claimed', 'completed', 'failed', 'cancelled'] as const;
/**
 * `claimed` tasks whose holder missed its heartbeat stay `claimed` in the store but count as open
 * (see `isTaskOpen`); `completed`, `failed` and `cancelled` are final.
 */
export type TaskStatus = (typeof taskStatuses)[number];

/** A task as stored, with who holds it and how it ended. Timestamps are ISO 8601. */
export interface TaskRecord extends AgentTask {
  readonly status: TaskStatus;
  readonly enqueuedAt: string;
  /** The agent that holds (or last held, or finished) the task. */
  readonly holder?: string;
  /** Last claim or heartbeat of the holder. */
  readonly heartbeatAt?: string;
  /** How many times the task was claimed (1 on the first claim; more after timeouts or releases). */
  readonly attempts: number;
  /** Latest progress the holder reported. */
  readonly progress: readonly TaskProgress[];
  /** Per-item results, once completed. */
  readonly outcomes?: readonly ItemOutcome[];
  /** Why it failed or was cancelled. */
  readonly error?: { readonly code: string; readonly reason: string };
  readonly finishedAt?: string;
}

export const finalTaskStatuses: readonly TaskStatus[] = ['completed', 'failed', 'cancelled'];

/** The holder's hold lapses when its last heartbeat is more than `heartbeatSeconds` old. */
export function holdExpired(task: TaskRecord, now: Date): boolean {
  if (task.status !== 'claimed' || task.heartbeatAt === undefined) return false;
  return now.getTime() > Date.parse(task.heartbeatAt) + task.heartbeatSeconds * 1000;
}

/** Whether an agent of the task's site may claim it at `now`. */
export function isTaskOpen(task: TaskRecord, now: Date): boolean {
  return task.status === 'open' || holdExpired(task, now);
}

export interface TaskQueue {
  /** Adds an open task; throws ConflictError if a task with this id exists (already enqueued). */
  enqueue(task: AgentTask, now: Date): Promise<void>;
  get(taskId: string): Promise<TaskRecord | undefined>;
  /** Tasks of `site` that nobody holds, or whose holder missed its heartbeat; oldest first. */
  listOpen(site: string, now: Date): Promise<readonly TaskRecord[]>;
  /**
   * Claims a task for an agent of its own site; of concurrent claims exactly one wins, the others
   * get ConflictError. Another site's task: ForbiddenError; no such task: NotFoundError. The
   * current holder claiming again (a retry after a lost answer) succeeds and counts as a heartbeat.
   */
  claim(taskId: string, site: string, agentId: string, now: Date): Promise<TaskRecord>;
  /**
   * Renews the hold and records progress. Only the holder (ForbiddenError otherwise); a finished
   * task gives ConflictError — the agent should stop. A holder that is late but not yet replaced
   * keeps its hold.
   */
  heartbeat(taskId: string, agentId: string, progress: readonly TaskProgress[], now: Date): Promise<void>;
  /** Ends the task with per-item outcomes; only the holder, exactly once (ConflictError after). */
  complete(taskId: string, agentId: string, outcomes: readonly ItemOutcome[], now: Date): Promise<void>;
  /** Ends the task as failed; only the holder, exactly once (ConflictError after). */
  fail(taskId: string, agentId: string, code: string, reason: string, now: Date): Promise<void>;
  /** The holder stops cleanly and gives the task back: it is open again at once. */
  release(taskId: string, agentId: string): Promise<void>;
  /**
   * Withdraws a task that is not finished (the transfer was cancelled); the holder's next call
   * gets ConflictError. Returns false when it had already finished.
   */
  cancel(taskId: string, code: string, reason: string, now: Date): Promise<boolean>;
}

/**
 * The rules of the task life cycle, shared by every adapter: each takes the stored record (or
 * undefined) and returns the record to store, or throws the domain error. An adapter reads, applies
 * a rule and writes conditionally on what it read (SQLite: in one immediate transaction; DynamoDB:
 * a conditional put on the record's revision), so two concurrent callers cannot both succeed.
 */
export const taskRules = {
  enqueued(task: AgentTask, now: Date): TaskRecord {
    return {
      id: task.id,
      kind: task.kind,
      site: task.site,
      transferId: task.transferId,
      itemIds: [...task.itemIds],
      heartbeatSeconds: task.heartbeatSeconds,
      status: 'open',
      enqueuedAt: now.toISOString(),
      attempts: 0,
      progress: [],
    };
  },

  claim(rec: TaskRecord | undefined, taskId: string, site: string, agentId: string, now: Date): TaskRecord {
    if (!rec) throw new NotFoundError('task', taskId);
    if (rec.site !== site) {
      throw new ForbiddenError(
        `task '${taskId}' belongs to another site; an agent claims only its own site's tasks`,
      );
    }
    if (finalTaskStatuses.includes(rec.status)) {
      throw new ConflictError(`task '${taskId}' is already ${rec.status}`);
    }
    const again = rec.status === 'claimed' && rec.holder === agentId;
    if (!again && !isTaskOpen(rec, now)) {
      throw new ConflictError(`task '${taskId}' is held by another agent`);
    }
    return {
      ...rec,
      status: 'claimed',
      holder: agentId,
      heartbeatAt: now.toISOString(),
      attempts: again ? rec.attempts : rec.attempts + 1,
      progress: again ? rec.progress : [],
    };
  },

  heartbeat(
    rec: TaskRecord | undefined,
    taskId: string,
    agentId: string,
    progress: readonly TaskProgress[],
    now: Date,
  ): TaskRecord {
    const held = assertHolder(rec, taskId, agentId);
    return { ...held, heartbeatAt: now.toISOString(), progress: [...progress] };
  },

  complete(
    rec: TaskRecord | undefined,
    taskId: string,
    agentId: string,
    outcomes: readonly ItemOutcome[],
    now: Date,
  ): TaskRecord {
    const held = assertHolder(rec, taskId, agentId);
    return { ...held, status: 'completed', outcomes: [...outcomes], finishedAt: now.toISOString() };
  },

  fail(
    rec: TaskRecord | undefined,
    taskId: string,
    agentId: string,
    code: string,
    reason: string,
    now: Date,
  ): TaskRecord {
    const held = assertHolder(rec, taskId, agentId);
    return { ...held, status: 'failed', error: { code, reason }, finishedAt: now.toISOString() };
  },

  release(rec: TaskRecord | undefined, taskId: string, agentId: string): TaskRecord {
    const held = assertHolder(rec, taskId, agentId);
    const { heartbeatAt: _h, ...rest } = held;
    return { ...rest, status: 'open' };
  },

  /** Undefined when the task had already finished (nothing to store). */
  cancel(
    rec: TaskRecord | undefined,
    taskId: string,
    code: string,
    reason: string,
    now: Date,
  ): TaskRecord | undefined {
    if (!rec) throw new NotFoundError('task', taskId);
    if (finalTaskStatuses.includes(rec.status)) return undefined;
    return { ...rec, status: 'cancelled', error: { code, reason }, finishedAt: now.toISOString() };
  },
};

/** Finished: ConflictError (stop working on it); not the current holder: ForbiddenError. */
function assertHolder(rec: TaskRecord | undefined, taskId: string, agentId: string): TaskRecord {
  if (!rec) throw new NotFoundError('task', taskId);
  if (finalTaskStatuses.includes(rec.status)) {
    throw new ConflictError(`task '${taskId}' is already ${rec.status}`);
  }
  if (rec.status !== 'claimed' || rec.holder !== agentId) {
    throw new ForbiddenError(`agent '${agentId}' does not hold task '${taskId}'; claim it first`);
  }
  return rec;
}
