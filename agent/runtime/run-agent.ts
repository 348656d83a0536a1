import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { codeOf, errnoOf } from '../../core/errors.ts';
import type { SignedStatement } from '../../core/model/transfer-key.ts';
import type { AgentTransferView } from '../../core/ports/agents.ts';
import { type Logger, silentLogger } from '../../core/ports/logger.ts';
import type { ItemOutcome, TaskProgress, TaskRecord } from '../../core/ports/task-queue.ts';
import { Backoff, sleep } from '../../core/wait.ts';
import { AgentError } from '../errors.ts';
import { TransferProgress } from '../file-progress.ts';
import { initAgentIdentity } from '../identity/agent-identity.ts';
import { startKeepAlive } from '../keep-alive.ts';
import { AgentApiClient, AgentApiError, AgentApiUnreachableError } from './api-client.ts';

/**
 * `odt agent run`: enroll once, then poll the agent API for the site's tasks, claim one, keep the
 * claim alive with heartbeats (progress per item) while the role does the work, and report per-item
 * outcomes.
 *
 * Restarts: the task being worked on is noted in `<dir>/task.json`. After a crash or `kill -9` the
 * agent first claims that task again (a claim by the same holder succeeds) and resumes it; the
 * export and import code keep what is complete. SIGTERM aborts the work and **releases** the task
 * (it is open again at once, for this agent after its restart or another agent of the site); the
 * task is never lost: if the release itself fails, the hold lapses after `heartbeatSeconds`.
 */

/** One file's progress as a role reports it. */
export interface RoleProgress {
  readonly item: string;
  readonly file: string;
  readonly bytes: number;
  readonly total?: number;
  readonly done?: boolean;
  /** Complete from an earlier run (a kept file, an item imported before): counted done, not moved. */
  readonly skipped?: boolean;
  /** `verifying` while an import checks the NAS; absent while the data moves. */
  readonly stage?: 'verifying';
}

/**
 * Per item, the files of its current stage (an import's check of the NAS, then the upload), summed
 * for the heartbeat; a new stage starts the item's count and its rate afresh.
 */
export class ProgressTally {
  readonly #items = new Map<
    string,
    { stage: 'verifying' | undefined; started: number; files: Map<string, { bytes: number; total?: number }> }
  >();

  constructor(private readonly now: () => number = Date.now) {}

  note(p: RoleProgress): void {
    let item = this.#items.get(p.item);
    if (!item || item.stage !== p.stage) {
      item = { stage: p.stage, started: this.now(), files: new Map() };
      this.#items.set(p.item, item);
    }
    item.files.set(p.file, { bytes: p.bytes, ...(p.total !== undefined ? { total: p.total } : {}) });
  }

  report(): TaskProgress[] {
    const now = this.now();
    return [...this.#items.entries()].map(([itemId, { stage, started, files }]) => {
      let bytesDone = 0;
      let bytesTotal = 0;
      let known = true;
      for (const f of files.values()) {
        bytesDone += f.bytes;
        if (f.total === undefined) known = false;
        else bytesTotal += f.total;
      }
      return {
        itemId,
        bytesDone,
        ...(known ? { bytesTotal } : {}),
        bytesPerSecond: Math.round(bytesDone / Math.max(0.001, (now - started) / 1000)),
        ...(stage ? { stage } : {}),
      };
    });
  }
}

/** What a role does with one claimed task. */
export interface RoleWork {
  readonly task: TaskRecord;
  readonly transfer: AgentTransferView;
  readonly signal: AbortSignal;
  readonly onProgress: (p: RoleProgress) => void;
  /**
   * The files the task will move (`item/file`, as onProgress's) with their expected sizes, once
   * known (an export's checked plan, an import's verified manifest): the task progress log's total.
   */
  readonly onPlan?: (files: readonly { readonly key: string; readonly bytes: number }[]) => void;
  /** Carries the task's and the transfer's ids. */
  readonly log: Logger;
}

/** A task's result: per-item outcomes, and for the ODT node's key tasks its signed statement. */
export interface RoleResult {
  readonly outcomes: ItemOutcome[];
  readonly statement?: SignedStatement;
}

export interface AgentRole {
  readonly name: 'export' | 'import';
  /** Per-item outcomes for the task's items; throws for a failure of the whole task. */
  run(work: RoleWork): Promise<ItemOutcome[] | RoleResult>;
  /** The site's inventory (export role), reported on start and on a schedule. */
  inventory?(signal: AbortSignal): Promise<readonly unknown[]>;
}

export interface RunAgentOptions {
  readonly server: string;
  readonly dir: string;
  readonly role: AgentRole;
  /** One-time enrollment code; needed on the first start only. */
  readonly code?: string;
  /** Expected site: refuse to run if the enrollment says otherwise. */
  readonly site?: string;
  readonly name?: string;
  /** Stops the agent (SIGTERM). */
  readonly signal: AbortSignal;
  /** Poll backoff bounds, in ms (default 1 s … 60 s). */
  readonly pollMinMs?: number;
  readonly pollMaxMs?: number;
  /** How often the inventory is reported (default 15 min; 0: only at start). */
  readonly inventoryEveryMs?: number;
  /** How often a task's overall progress is logged (`task progress`), in ms (default 30 s). */
  readonly progressLogEveryMs?: number;
  /** Stop after this many finished tasks (tests). */
  readonly maxTasks?: number;
  /**
   * Default: nothing is logged. Lines carry `agentId` and `site` once enrolled, and `taskId` and
   * `transferId` while a task runs.
   */
  readonly log?: Logger;
}

interface AgentState {
  readonly agentId: string;
  readonly site: string;
  readonly server: string;
}

const stateFile = 'agent.json';
const taskFile = 'task.json';

async function readJsonFile<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return undefined;
    throw error;
  }
}

async function writeJsonFile(path: string, value: unknown): Promise<void> {
  await writeFile(`${path}.partial`, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  await rename(`${path}.partial`, path);
}

const isFatal = (e: unknown): boolean => e instanceof AgentApiError && e.status === 401;

/**
 * `call`, again and again while the agent API does not answer (odt serve restarting, a network
 * outage), with backoff up to 30 s, until it answers or `signal` aborts (then its last error).
 * The agent keeps the URL it was given: a restarted serve listens on the same --agent-port.
 */
async function whileUnreachable<T>(
  what: string,
  call: () => Promise<T>,
  signal: AbortSignal,
  log: Logger,
): Promise<T> {
  const backoff = new Backoff({ initialMs: 500, maxMs: 30_000, jitter: 'full' });
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof AgentApiUnreachableError) || signal.aborted) throw error;
      log.warn({ reason: error.message }, `${what}: the agent API does not answer; retrying`);
      await sleep(backoff.next(), signal).catch(() => undefined);
    }
  }
}

/** Enrolls if needed; returns the client and the agent's site. */
export async function enrolledClient(
  options: Pick<RunAgentOptions, 'server' | 'dir' | 'code' | 'site' | 'name' | 'log'>,
): Promise<{ client: AgentApiClient; state: AgentState }> {
  const log = options.log ?? silentLogger;
  await mkdir(options.dir, { recursive: true, mode: 0o700 });
  const { identity, created } = await initAgentIdentity(options.dir, {
    commonName: options.name ?? 'sneakernet-agent',
  });
  if (created)
    log.info({ dir: options.dir, certSha256: identity.certSha256 }, 'created the agent key and certificate');
  let state = await readJsonFile<AgentState>(join(options.dir, stateFile));
  if (!state) {
    if (!options.code) {
      throw new AgentError(
        'AGENT_NOT_ENROLLED',
        `agent in ${options.dir} is not enrolled; pass --code with a code from \`odt agent enroll --site <site>\``,
      );
    }
    const client = new AgentApiClient({ server: options.server, keyPem: identity.keyPem });
    const r = await client.enroll(
      options.code,
      identity.certPem,
      options.name ?? identity.commonName,
      options.site,
    );
    state = { agentId: r.agentId, site: r.site, server: options.server };
    await writeJsonFile(join(options.dir, stateFile), state);
    log.info({ agentId: r.agentId, site: r.site }, 'enrolled');
  }
  if (options.site && options.site !== state.site) {
    throw new AgentError(
      'AGENT_WRONG_SITE',
      `agent ${state.agentId} in ${options.dir} is enrolled for site '${state.site}', not '${options.site}'; give --site ${state.site}, or another --dir for an agent of '${options.site}'`,
    );
  }
  return {
    client: new AgentApiClient({ server: options.server, keyPem: identity.keyPem, agentId: state.agentId }),
    state,
  };
}

/** Runs until `signal` aborts (or `maxTasks` are done). Throws when the agent is revoked (401). */
export async function runAgent(options: RunAgentOptions): Promise<{ tasks: number }> {
  const { client, state } = await enrolledClient(options);
  // An agent started before its serve (a reboot) waits for it rather than exiting; stopped while
  // it waits, it ends as a stop does (nothing was claimed).
  let me: Awaited<ReturnType<AgentApiClient['me']>>;
  try {
    me = await whileUnreachable('starting', () => client.me(), options.signal, options.log ?? silentLogger);
  } catch (error) {
    if (options.signal.aborted && error instanceof AgentApiUnreachableError) return { tasks: 0 };
    throw error;
  }
  const log = (options.log ?? silentLogger).child({ agentId: me.id, site: me.site });
  log.info({ role: options.role.name, server: options.server }, 'serving the site');
  const stop = options.signal;
  const inventory = startInventory(options, client, log);
  const minMs = options.pollMinMs ?? 1000;
  // Agents of a site started together (after an outage) must not poll in step: full jitter.
  const backoff = new Backoff({ initialMs: minMs, maxMs: options.pollMaxMs ?? 60_000, jitter: 'full' });
  let done = 0;
  try {
    while (!stop.aborted && (options.maxTasks === undefined || done < options.maxTasks)) {
      let task: TaskRecord | undefined;
      try {
        task = await nextTask(client, options.dir, log);
      } catch (error) {
        if (isFatal(error)) throw error;
        log.warn({ reason: (error as Error).message }, 'polling failed; retrying');
      }
      if (!task) {
        // Rejects only when `stop` fires, which ends the loop.
        await sleep(backoff.next(), stop).catch(() => undefined);
        continue;
      }
      backoff.reset();
      await writeJsonFile(join(options.dir, taskFile), { taskId: task.id, transferId: task.transferId });
      const ended = await work(
        client,
        options,
        task,
        log.child({ taskId: task.id, transferId: task.transferId }),
      );
      if (ended !== 'stopped') await rm(join(options.dir, taskFile), { force: true });
      if (ended === 'completed' || ended === 'failed') done++;
      if (ended === 'revoked')
        throw new AgentApiError(401, 'UNAUTHORIZED', `agent ${state.agentId} was revoked`);
    }
  } finally {
    await inventory.stop();
  }
  return { tasks: done };
}

/** The task this agent held before a restart, claimed again; else the first open task it wins. */
async function nextTask(client: AgentApiClient, dir: string, log: Logger): Promise<TaskRecord | undefined> {
  const held = await readJsonFile<{ taskId: string }>(join(dir, taskFile));
  if (held) {
    try {
      const task = await client.claim(held.taskId);
      log.info({ taskId: task.id, transferId: task.transferId, attempt: task.attempts }, 'resuming the task');
      return task;
    } catch (error) {
      if (!(error instanceof AgentApiError) || isFatal(error)) throw error;
      log.info(
        { taskId: held.taskId, reason: error.message },
        'the task held before the restart is no longer ours; looking for other work',
      );
      await rm(join(dir, taskFile), { force: true });
    }
  }
  for (const t of await client.listTasks()) {
    try {
      const task = await client.claim(t.id);
      log.info(
        { taskId: task.id, transferId: task.transferId, kind: task.kind, items: task.itemIds.length },
        'claimed a task',
      );
      return task;
    } catch (error) {
      if (!(error instanceof AgentApiError) || isFatal(error)) throw error;
      // Another agent of the site won it: try the next one.
    }
  }
  return undefined;
}

/** `stopped`: still held (reclaimed after a restart); `released`: open again for any agent of the site. */
type Ended = 'completed' | 'failed' | 'lost' | 'stopped' | 'released' | 'revoked';

async function work(
  client: AgentApiClient,
  options: RunAgentOptions,
  task: TaskRecord,
  log: Logger,
): Promise<Ended> {
  const controller = new AbortController();
  const onStop = () => controller.abort(new Error('the agent is stopping (SIGTERM)'));
  options.signal.addEventListener('abort', onStop, { once: true });
  if (options.signal.aborted) onStop();
  const tally = new ProgressTally();
  const progress = () => tally.report();
  // The whole task in one log line at a steady interval (issue #19): bytes of the total, rate, ETA.
  let overall = new TransferProgress();
  // Once the data's plan is known, the line is of the data only: an import's check of the NAS
  // (whose deferred disks are checked during the upload, not reported) came before it.
  let planned = false;
  const logOverall = () => log.info({ progress: overall.snapshot() }, 'task progress');
  const overallTimer = setInterval(logOverall, options.progressLogEveryMs ?? 30_000);
  overallTimer.unref();
  let lostReason: string | undefined;
  const keepAlive = startKeepAlive({
    intervalMs: Math.max(200, (task.heartbeatSeconds * 1000) / 3),
    controller,
    maxFailures: 2,
    beat: async (signal) => {
      try {
        await client.heartbeat(task.id, progress(), signal);
      } catch (error) {
        // The API is away (serve restarting): the work goes on, the next beat tries again. If
        // the hold lapsed meanwhile, the answer when it is back (409) stops the work.
        if (error instanceof AgentApiUnreachableError && !signal.aborted) {
          log.warn({ reason: error.message }, 'heartbeat: the agent API does not answer; working on');
          return;
        }
        // Cancelled, finished, taken over or revoked: stop at once, not after more beats.
        if (error instanceof AgentApiError && [401, 403, 404, 409].includes(error.status)) {
          lostReason = error.message;
          controller.abort(error);
        }
        throw error;
      }
    },
  });
  const stopped = () => options.signal.aborted;
  try {
    const transfer = await whileUnreachable(
      'reading the transfer',
      () => client.transfer(task.transferId),
      controller.signal,
      log,
    );
    const result = await options.role.run({
      task,
      transfer,
      signal: controller.signal,
      log,
      onProgress: (p) => {
        tally.note(p);
        if (!(planned && p.stage === 'verifying'))
          overall.note(p, `${p.stage ?? 'data'}:${p.item}/${p.file}`);
      },
      // The data moved (not the check of a NAS), keyed as onProgress's events without a stage.
      onPlan: (files) => {
        planned = true;
        overall = new TransferProgress();
        overall.planFiles(files.map((f) => ({ key: `data:${f.key}`, bytes: f.bytes })));
      },
    });
    clearInterval(overallTimer);
    logOverall();
    const { outcomes, statement } = Array.isArray(result)
      ? { outcomes: result, statement: undefined }
      : result;
    await keepAlive.stop();
    if (controller.signal.aborted) return await aborted();
    await whileUnreachable(
      'reporting the result',
      () => client.complete(task.id, outcomes, statement),
      options.signal,
      log,
    );
    const ok = outcomes.filter((o) => o.ok).length;
    log.info({ ok, items: outcomes.length }, 'task completed');
    return 'completed';
  } catch (error) {
    await keepAlive.stop();
    if (controller.signal.aborted) return await aborted();
    if (isFatal(error)) return 'revoked';
    const code = codeOf(error);
    const message = error instanceof Error ? error.message : String(error);
    // A coded error is the work's own verdict; anything else may be a bug: with its stack.
    if (code !== undefined) log.warn({ code, reason: message }, 'task failed');
    else log.error({ err: error }, 'task failed');
    try {
      await client.fail(task.id, code ?? 'AGENT_FAILED', message.slice(0, 4000));
    } catch (failError) {
      log.warn(
        { reason: (failError as Error).message },
        'could not report the failure; the hold lapses and the task is retried',
      );
      return 'lost';
    }
    return 'failed';
  } finally {
    clearInterval(overallTimer);
    options.signal.removeEventListener('abort', onStop);
  }

  async function aborted(): Promise<Ended> {
    if (stopped()) {
      try {
        await client.release(task.id);
        log.info('stopped: task released; it resumes where it was at the next claim');
        return 'released';
      } catch (error) {
        log.warn(
          { reason: (error as Error).message },
          'stopped: could not release the task; it is reclaimed on restart',
        );
        return 'stopped';
      }
    }
    log.warn({ reason: lostReason ?? 'heartbeat failed' }, 'the task is no longer ours; work aborted');
    return lostReason && /revoked/.test(lostReason) ? 'revoked' : 'lost';
  }
}

function startInventory(
  options: RunAgentOptions,
  client: AgentApiClient,
  log: Logger,
): { stop(): Promise<void> } {
  const role = options.role;
  if (!role.inventory) return { stop: async () => {} };
  const controller = new AbortController();
  const every = options.inventoryEveryMs ?? 15 * 60_000;
  const report = async () => {
    try {
      const items = await role.inventory!(controller.signal);
      await client.reportInventory(items);
      log.info({ items: items.length }, "reported the site's inventory");
    } catch (error) {
      log.warn({ reason: (error as Error).message }, 'inventory report failed');
    }
  };
  let running = report();
  const timer =
    every > 0
      ? setInterval(() => {
          running = running.then(report);
        }, every)
      : undefined;
  return {
    async stop() {
      if (timer) clearInterval(timer);
      controller.abort();
      await running;
    },
  };
}
