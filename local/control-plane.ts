import { randomBytes } from 'node:crypto';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CodedError, errnoOf } from '../core/errors.ts';
import {
  type Approvers,
  type ChatNotifier,
  type Clock,
  fixedApprovers,
  JsonLinesChat,
  systemClock,
  TransferService,
  type WorkflowWait,
} from '../core/index.ts';
import { type Logger, silentLogger } from '../core/ports/logger.ts';
import { type AgentApi, startAgentApi } from '../shared/agent-api.ts';
import { loggedCall } from '../shared/logger.ts';
import { localArns, localDefinition } from '../shared/workflow-definition.ts';
import { adminToken } from './admin-token.ts';
import { type ControlApi, startControlApi } from './control-api.ts';
import { DurableRunner } from './durable-runner.ts';
import { SqliteOperators } from './operators.ts';
import { SqliteRunnerStore } from './sqlite-runner-store.ts';
import { lockStateDir } from './state-lock.ts';
import { SqliteAgentRegistry } from './store/agent-registry.ts';
import { SqliteStore } from './store/sqlite-store.ts';

export interface ControlPlaneOptions {
  /** Where the SQLite file, the admin token and the logs live. Default `./.odt`. */
  readonly stateDir: string;
  /** Port of the admin API on 127.0.0.1 (default: any free port; written to serve.json as `url`). */
  readonly port?: number;
  /** Port of the agent API (default: any free port; written to serve.json as `agentUrl`). */
  readonly agentPort?: number;
  /** Address the agent API listens on (default 127.0.0.1; `0.0.0.0` for agents on other machines). */
  readonly agentHost?: string;
  /**
   * Who may approve; from `--approvers` or `ODT_APPROVERS`: a fixed list of ids or names, or an
   * Approvers that reads them (with Slack, user groups: bot/approvers-group.ts).
   */
  readonly approvers: readonly string[] | Approvers;
  readonly clock?: Clock;
  /** Also tell this chat (e.g. Slack) of every change; events.log is written in any case. */
  readonly chat?: ChatNotifier;
  readonly heartbeatSeconds?: number;
  /** Where the control plane logs (local/logger.ts). Default: nowhere. */
  readonly logger?: Logger;
  /** Test hooks, by state name, in ms (the definition itself is never changed). */
  readonly timeoutOverridesMs?: Readonly<Record<string, number>>;
  readonly heartbeatOverridesMs?: Readonly<Record<string, number>>;
  readonly retryIntervalOverridesMs?: Readonly<Record<string, number>>;
}

export interface ControlPlane {
  readonly service: TransferService;
  readonly runner: DurableRunner;
  readonly api: ControlApi;
  readonly agentApi: AgentApi;
  readonly registry: SqliteAgentRegistry;
  /** The CLI's operators and their tokens (`odt operator add`). */
  readonly operators: SqliteOperators;
  readonly resumed: number;
  close(): Promise<void>;
}

/** A port the admin or agent API cannot listen on: busy (EADDRINUSE) or not allowed (EACCES). */
export class PortInUseError extends CodedError<'PORT_IN_USE'> {
  constructor(
    readonly api: 'admin' | 'agent',
    readonly port: number,
    cause: unknown,
  ) {
    const why = errnoOf(cause) === 'EACCES' ? 'may not be used by this user' : 'is in use';
    super('PORT_IN_USE', `port ${port} of the ${api} API ${why}`, { cause });
    this.name = 'PortInUseError';
  }
}

async function listening<T>(api: 'admin' | 'agent', port: number, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    const errno = errnoOf(error);
    if (errno === 'EADDRINUSE' || errno === 'EACCES') throw new PortInUseError(api, port, error);
    throw error;
  }
}

/** The events log, and a second chat (e.g. Slack) when one is given: both are told of each change. */
function alsoTo(log: ChatNotifier, other: ChatNotifier | undefined): ChatNotifier {
  if (!other) return log;
  return {
    transferChanged: async (t) =>
      void (await Promise.all([log.transferChanged(t), other.transferChanged(t)])),
    progress: async (t, p) => void (await Promise.all([log.progress(t, p), other.progress(t, p)])),
    report: async (t) => void (await Promise.all([log.report(t), other.report(t)])),
  };
}

/**
 * `odt serve`: the control plane in one process — the SQLite store, the durable runner executing
 * the workflow definition, the service layer, and its HTTP API on localhost. Open transfers
 * resume where they were.
 */
export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  // Before the store is opened: a second serve on the folder must not resume its workflows.
  const lock = lockStateDir(options.stateDir);
  try {
    return await startLocked(options, lock.release);
  } catch (error) {
    lock.release();
    throw error;
  }
}

async function startLocked(options: ControlPlaneOptions, unlock: () => void): Promise<ControlPlane> {
  const stores = SqliteStore.open(options.stateDir);
  const clock = options.clock ?? systemClock;
  const log = options.logger ?? silentLogger;
  let service: TransferService | undefined;
  const svc = () => service!;
  // The workflow's functions run in this process: each call is logged with its transfer's id.
  const transferLog = (p: Record<string, unknown>) => log.child({ transferId: String(p.transferId) });
  const runner = new DurableRunner({
    definition: localDefinition(),
    store: new SqliteRunnerStore(stores.db),
    steps: {
      [localArns.StepFunctionArn]: (p) =>
        loggedCall(transferLog(p), { action: p.action }, 'workflow step', () =>
          svc().onStep(String(p.transferId), String(p.action)),
        ),
    },
    callbacks: {
      [localArns.AwaitFunctionArn]: (p) =>
        loggedCall(transferLog(p), { wait: p.wait }, 'workflow wait', () =>
          svc().onWait(String(p.transferId), p.wait as WorkflowWait, p.taskToken),
        ),
      [localArns.AgentTaskFunctionArn]: (p) =>
        loggedCall(transferLog(p), { kind: p.kind }, 'workflow agent task', () =>
          svc().onAgentTask(String(p.transferId), p.kind as 'export' | 'import', p.taskToken),
        ),
    },
    onEnd: (transferId, status, error) => {
      if (status === 'succeeded') log.info({ transferId }, 'workflow ended');
      else log.warn({ transferId, reason: error }, 'workflow failed');
    },
    ...(options.timeoutOverridesMs ? { timeoutOverridesMs: options.timeoutOverridesMs } : {}),
    ...(options.heartbeatOverridesMs ? { heartbeatOverridesMs: options.heartbeatOverridesMs } : {}),
    ...(options.retryIntervalOverridesMs
      ? { retryIntervalOverridesMs: options.retryIntervalOverridesMs }
      : {}),
  });
  service = new TransferService({
    transfers: stores.transfers,
    tokens: stores.tokens,
    tasks: stores.tasks,
    workflow: runner,
    chat: alsoTo(
      new JsonLinesChat((line) => appendFileSync(join(options.stateDir, 'events.log'), `${line}\n`)),
      options.chat,
    ),
    clock,
    approvers: Array.isArray(options.approvers)
      ? fixedApprovers(options.approvers as readonly string[])
      : (options.approvers as Approvers),
    newId: () =>
      `tr-${clock.now().toISOString().slice(0, 10).replaceAll('-', '')}-${randomBytes(3).toString('hex')}`,
    ...(options.heartbeatSeconds ? { heartbeatSeconds: options.heartbeatSeconds } : {}),
  });
  const registry = new SqliteAgentRegistry(stores.db);
  const operators = new SqliteOperators(stores.db);
  // Both ports first: a busy port ends the start before any workflow resumes.
  let api: ControlApi | undefined;
  let agentApi: AgentApi | undefined;
  try {
    api = await listening('admin', options.port ?? 0, () =>
      startControlApi({
        service: service!,
        registry,
        operators,
        logger: log.child({ api: 'admin' }),
        adminToken: adminToken(options.stateDir),
        ...(options.port !== undefined ? { port: options.port } : {}),
      }),
    );
    agentApi = await listening('agent', options.agentPort ?? 0, () =>
      startAgentApi({
        service: service!,
        tasks: stores.tasks,
        registry,
        adminToken: adminToken(options.stateDir),
        clock,
        logger: log.child({ api: 'agent' }),
        ...(options.agentPort !== undefined ? { port: options.agentPort } : {}),
        ...(options.agentHost !== undefined ? { host: options.agentHost } : {}),
      }),
    );
  } catch (error) {
    await api?.close();
    await runner.stop();
    stores.close();
    throw error;
  }
  if (operators.count() === 0)
    log.warn(
      'no operators yet: a decision through the admin token takes its --as on trust; `odt operator add <name> --out <file>` gives each person a token the server checks',
    );
  const resumed = runner.resumeAll();
  writeFileSync(
    join(options.stateDir, 'serve.json'),
    `${JSON.stringify({ url: api.url, agentUrl: agentApi.url, pid: process.pid })}\n`,
  );
  log.info({ url: api.url, agentUrl: agentApi.url, resumed }, 'control plane started');
  return {
    service,
    runner,
    api,
    agentApi,
    registry,
    operators,
    resumed,
    async close() {
      await agentApi.close();
      await api.close();
      await runner.stop();
      stores.close();
      unlock();
    },
  };
}

export { adminToken };
