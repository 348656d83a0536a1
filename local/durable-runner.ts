import { randomUUID } from 'node:crypto';
import { StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { TaskTokenError, type WorkflowEngine } from '../core/index.ts';
import type { PendingTask, RunnerStore } from './runner-store.ts';

const callbackResource = 'arn:aws:states:::lambda:invoke.waitForTaskToken';
/** Node's timers overflow past about 24.8 days; longer waits are re-armed in steps. */
const maxTimer = 2 ** 31 - 1;

/** A plain Task's handler (a Lambda function of functions/, run in process). */
export type StepHandler = (payload: Record<string, unknown>) => Promise<unknown>;
/** A callback task's function: it receives the payload with the real `taskToken`. */
export type CallbackHandler = (payload: Record<string, unknown> & { taskToken: string }) => Promise<void>;

export interface DurableRunnerOptions {
  /** The workflow definition with its `${…}` placeholders substituted. */
  readonly definition: StateMachineDefinition;
  readonly store: RunnerStore;
  /** Handlers by Lambda ARN: plain Task `Resource`s and callback `FunctionName`s. */
  readonly steps: Readonly<Record<string, StepHandler>>;
  readonly callbacks: Readonly<Record<string, CallbackHandler>>;
  readonly now?: () => number;
  /** Test hook: shorter timeouts / heartbeats by state name, in ms (the definition stays as is). */
  readonly timeoutOverridesMs?: Readonly<Record<string, number>>;
  readonly heartbeatOverridesMs?: Readonly<Record<string, number>>;
  /** Test hook: Retry intervals by state name, in ms. */
  readonly retryIntervalOverridesMs?: Readonly<Record<string, number>>;
  readonly onEnd?: (executionId: string, status: 'succeeded' | 'failed', error?: string) => void;
  readonly log?: (msg: string, meta?: Record<string, unknown>) => void;
}

class StatesError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

/**
 * What a callback task still waiting ends with when the runner stops: neither retried nor caught
 * (the interpreter reads `isRetryable`/`isCatchable`, as of its own States.Runtime), so that no
 * Retry re-enters the task and no Catch moves the execution on; the stored task stays, and the
 * next start re-enters the wait with its token.
 */
class RunnerStoppedError extends StatesError {
  readonly isRetryable = false;
  readonly isCatchable = false;

  constructor() {
    super('States.Runtime', 'the runner stopped; the execution resumes at the next start');
  }
}

interface Waiter {
  resolve(output: unknown): void;
  reject(error: Error): void;
  timers: NodeJS.Timeout[];
}

/**
 * The embedded engine of `odt serve`: the very ASL that Step Functions runs, interpreted by
 * aws-local-stepfunctions, plus what that interpreter lacks: `.waitForTaskToken` with
 * HeartbeatSeconds and TimeoutSeconds, and persistence. Each entered state and its input, and each
 * waiting callback task with its token and deadlines, are stored; on start every open execution
 * re-enters its last state with the same token, so a SIGKILL loses nothing.
 * Limits: Retry counters restart on resume; Map/Parallel (unused here) would restart whole; one
 * writer process.
 */
export class DurableRunner implements WorkflowEngine {
  private readonly waiters = new Map<string, Waiter>();
  private readonly running = new Map<string, { abort(): void; done: Promise<void> }>();
  private readonly now: () => number;
  private stopped = false;

  constructor(private readonly options: DurableRunnerOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Re-enters every execution that was running when the process stopped. */
  resumeAll(): number {
    const open = this.options.store.listRunning();
    for (const rec of open) this.launch(rec.id, rec.state, rec.input);
    return open.length;
  }

  async start(executionId: string, input?: unknown): Promise<void> {
    if (this.options.store.getExecution(executionId)) return;
    const first = { transferId: executionId, ...(input as object | undefined) };
    this.options.store.putExecution({
      id: executionId,
      state: this.options.definition.StartAt,
      input: first,
      status: 'running',
      updatedAt: this.now(),
    });
    this.launch(executionId, this.options.definition.StartAt, first);
  }

  async sendTaskSuccess(token: string, output: Record<string, unknown>): Promise<void> {
    this.settle(token, { ok: true, output });
  }

  async sendTaskFailure(token: string, error: string, cause: string): Promise<void> {
    this.settle(token, { ok: false, error, cause });
  }

  async sendTaskHeartbeat(token: string): Promise<void> {
    const task = this.options.store.getTask(token);
    if (!task)
      throw new TaskTokenError('TaskTimedOut', 'The task is no longer waiting (it ended or timed out).');
    this.options.store.putTask({ ...task, lastBeat: this.now() });
    const waiter = this.waiters.get(token);
    if (waiter) this.arm(task.executionId, task.state, token, waiter);
  }

  /**
   * Stops all executions in this process without marking them ended (a restart resumes them).
   * Every callback task still waiting is settled (with RunnerStoppedError, after the abort, so the
   * interpreter goes no further): the interpreter clears its TimeoutSeconds timer of a task only
   * when the task settles, and one left armed keeps the process alive for weeks.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    const waiters = [...this.waiters.values()];
    this.waiters.clear();
    for (const r of this.running.values()) r.abort();
    for (const w of waiters) {
      for (const t of w.timers) clearTimeout(t);
      w.reject(new RunnerStoppedError());
    }
    await Promise.allSettled([...this.running.values()].map((r) => r.done));
    this.running.clear();
  }

  /** Resolves when the execution has ended (for tests and the sandbox). */
  async settled(executionId: string): Promise<void> {
    await this.running.get(executionId)?.done;
  }

  private settle(token: string, result: NonNullable<PendingTask['result']>): void {
    const task = this.options.store.getTask(token);
    if (!task)
      throw new TaskTokenError('TaskTimedOut', 'The task is no longer waiting (it ended or timed out).');
    const waiter = this.waiters.get(token);
    if (!waiter) {
      // Nobody listens yet (the execution is re-entering after a restart): keep the result.
      this.options.store.putTask({ ...task, result });
      return;
    }
    this.finishTask(token, waiter);
    if (result.ok) waiter.resolve(result.output);
    else waiter.reject(new StatesError(result.error, result.cause));
  }

  private finishTask(token: string, waiter: Waiter): void {
    for (const t of waiter.timers) clearTimeout(t);
    this.waiters.delete(token);
    this.options.store.deleteTask(token);
  }

  private launch(id: string, state: string, input: unknown): void {
    const definition = { ...this.options.definition, StartAt: state };
    // Validated as written at the first start; re-entered at another state some states become
    // unreachable, which the validator would refuse.
    const resumed = state !== this.options.definition.StartAt;
    const machine = new StateMachine(definition, {
      validationOptions: resumed ? { noValidate: true } : { checkArn: false, checkPaths: false },
    });
    const handlers: Record<string, (input: unknown) => Promise<unknown>> = {};
    for (const [name, s] of Object.entries(this.options.definition.States)) {
      if (s.Type !== 'Task') continue;
      handlers[name] =
        s.Resource === callbackResource
          ? (payload) =>
              this.callbackTask(
                id,
                name,
                payload as { FunctionName: string; Payload: Record<string, unknown> },
              )
          : (payload) => this.stepTask(s.Resource, payload as Record<string, unknown>);
    }
    const execution = machine.run(input as never, {
      overrides: {
        taskResourceLocalHandlers: handlers as never,
        ...(this.options.retryIntervalOverridesMs
          ? { retryIntervalOverrides: this.options.retryIntervalOverridesMs }
          : {}),
      },
      context: { Task: { Token: 'assigned-by-the-runner' } },
      noThrowOnAbort: true,
    });
    const record = (async () => {
      for await (const ev of execution.eventLogs) {
        if (ev.type === 'StateEntered' && !('index' in ev) && 'state' in ev) {
          const st = (ev as { state: { name: string; input: unknown } }).state;
          if (this.options.definition.States[st.name] && !this.stopped) {
            this.options.store.putExecution({
              id,
              state: st.name,
              input: st.input,
              status: 'running',
              updatedAt: this.now(),
            });
          }
        }
      }
    })();
    const done = execution.result.then(
      async () => {
        await record.catch(() => undefined);
        if (this.stopped) return;
        this.end(id, 'succeeded');
      },
      async (error: Error) => {
        await record.catch(() => undefined);
        if (this.stopped) return;
        this.end(id, 'failed', error.message);
      },
    );
    this.running.set(id, { abort: execution.abort, done });
  }

  private end(id: string, status: 'succeeded' | 'failed', error?: string): void {
    const rec = this.options.store.getExecution(id);
    if (rec)
      this.options.store.putExecution({ ...rec, status, ...(error ? { error } : {}), updatedAt: this.now() });
    this.running.delete(id);
    this.options.onEnd?.(id, status, error);
  }

  private async stepTask(resource: string, payload: Record<string, unknown>): Promise<unknown> {
    const handler = this.options.steps[resource];
    if (!handler) throw new StatesError('States.TaskFailed', `no local handler for ${resource}`);
    return handler(payload);
  }

  private callbackTask(
    id: string,
    state: string,
    params: { FunctionName: string; Payload: Record<string, unknown> },
  ): Promise<unknown> {
    if (this.stopped) return Promise.reject(new RunnerStoppedError());
    const handler = this.options.callbacks[params.FunctionName];
    if (!handler)
      return Promise.reject(
        new StatesError('States.TaskFailed', `no local handler for ${params.FunctionName}`),
      );
    const spec = this.options.definition.States[state] as { TimeoutSeconds?: number };
    const now = this.now();
    // Re-entering the same wait after a restart keeps its token (it is stored in the TokenStore,
    // maybe already handed out); a fresh entry (retry, next round) gets a new one.
    let task = this.options.store.findTask(id, state);
    if (!task) {
      const timeoutMs = this.options.timeoutOverridesMs?.[state] ?? (spec.TimeoutSeconds ?? 60) * 1000;
      task = {
        token: `${id}:${state}:${randomUUID()}`,
        executionId: id,
        state,
        deadline: now + timeoutMs,
        lastBeat: now,
      };
      this.options.store.putTask(task);
    }
    const token = task.token;
    return new Promise<unknown>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, timers: [] };
      this.waiters.set(token, waiter);
      const early = task.result;
      if (early) {
        this.finishTask(token, waiter);
        if (early.ok) resolve(early.output);
        else reject(new StatesError(early.error, early.cause));
        return;
      }
      this.arm(id, state, token, waiter);
      handler({ ...params.Payload, taskToken: token }).catch((error: Error) => {
        if (!this.waiters.has(token)) return;
        this.finishTask(token, waiter);
        reject(new StatesError(error.name || 'States.TaskFailed', error.message));
      });
    });
  }

  /** (Re)sets the timeout and heartbeat timers of a waiting task from its stored deadlines. */
  private arm(_id: string, state: string, token: string, waiter: Waiter): void {
    for (const t of waiter.timers) clearTimeout(t);
    waiter.timers = [];
    const task = this.options.store.getTask(token);
    if (!task) return;
    const spec = this.options.definition.States[state] as { HeartbeatSeconds?: number };
    const fire = (name: string, message: string) => {
      if (!this.waiters.has(token)) return;
      this.finishTask(token, waiter);
      waiter.reject(new StatesError(name, message));
    };
    this.timer(task.deadline, () => fire('States.Timeout', `${state} timed out`), waiter.timers);
    const beatMs =
      this.options.heartbeatOverridesMs?.[state] ??
      (spec.HeartbeatSeconds ? spec.HeartbeatSeconds * 1000 : undefined);
    if (beatMs !== undefined) {
      this.timer(
        task.lastBeat + beatMs,
        () => fire('States.HeartbeatTimeout', `${state} missed its heartbeat`),
        waiter.timers,
      );
    }
  }

  /** Calls `fn` at `at`; a delay past Node's timer limit is covered by a chain of shorter timers. */
  private timer(at: number, fn: () => void, list: NodeJS.Timeout[]): void {
    const delay = at - this.now();
    if (delay > maxTimer) list.push(setTimeout(() => this.timer(at, fn, list), maxTimer));
    else list.push(setTimeout(fn, Math.max(0, delay)));
  }
}
