/**
 * The agent API on AWS: one Lambda function behind the HTTP API (infra/sneakernet-stack.ts),
 * serving the same routes as `odt serve` through the shared, transport-independent handler
 * (local/agent-api/agent-api.ts, `createAgentApiHandler`).
 *
 * Authentication happens here, not in API Gateway: the routes have no IAM or JWT authorizer,
 * because agents authenticate with their own enrolled keys (every `/agent/...` request is signed,
 * with a timestamp and a single-use nonce; `POST /agents/enroll` spends a one-time code and is
 * signed by the certificate's key), which no API Gateway authorizer can check. `/admin/...` needs
 * `Authorization: Bearer <token>`, the token being the Secrets Manager secret named by
 * ADMIN_TOKEN_SECRET_ARN, read once per container (a failed read is retried on the next request).
 * Heartbeats become SendTaskHeartbeat, results SendTaskSuccess/Failure, through the service layer.
 * The handler checks a request's head (agent, signature headers, clock window; admin token) before
 * it parses or hashes the body, and refuses a body over the call's limit with 413, as `odt serve`
 * does (`agentBodyLimits`); API Gateway has read the body by then, up to its own 10 MB.
 *
 * Metrics (CloudWatch embedded metric format on stdout, namespace `Sneakernet/Agents`):
 * - `TaskHeartbeats` per accepted heartbeat, dimensions Service+Site;
 * - `StaleTaskHolds`: the same function, invoked every few minutes by an EventBridge schedule with
 *   `{ "action": "heartbeat-sweep" }`, counts claimed tasks whose holder's last heartbeat is older
 *   than half the heartbeat interval, per site (Service+Site) and in all (Service). infra/ alarms
 *   when the total is ≥ 1, and when the metric is missing (the sweep itself stopped).
 */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { z } from 'zod';
import type { AgentRegistry } from '../core/ports/agents.ts';
import type { Clock } from '../core/ports/clock.ts';
import { type Logger, silentLogger } from '../core/ports/logger.ts';
import type { TaskQueue } from '../core/ports/task-queue.ts';
import type { TransferService } from '../core/service/transfer-service.ts';
import { type AgentApiResponse, createAgentApiHandler } from '../shared/agent-api.ts';
import { ConfigError, config } from './config.ts';
import {
  createRuntime,
  invocationLogger,
  type LambdaContext,
  lambdaLogger,
  lambdaSecrets,
} from './runtime.ts';
import { cachedSecret } from './secrets.ts';

/** The part of an API Gateway HTTP API (payload format 2.0) event that the handler reads. */
export interface HttpApiEvent {
  readonly version: '2.0';
  readonly rawPath: string;
  readonly rawQueryString?: string;
  readonly headers?: Readonly<Record<string, string | undefined>>;
  readonly body?: string;
  readonly isBase64Encoded?: boolean;
  readonly requestContext: { readonly http: { readonly method: string } };
}

export interface HttpApiResult {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** The scheduled invocation (EventBridge rule input). */
export interface SweepEvent {
  readonly action: 'heartbeat-sweep';
}

export interface AgentApiDeps {
  readonly service: TransferService;
  readonly tasks: TaskQueue;
  readonly registry: AgentRegistry;
  readonly clock: Clock;
  readonly adminToken: () => Promise<string>;
  /** The workflow's HeartbeatSeconds (a hold is stale after half of it without a heartbeat). */
  readonly heartbeatSeconds: number;
  /** Where metric lines go (stdout on Lambda). */
  readonly emit?: (line: string) => void;
  /** Requests and their failures (a 5xx with its stack); default: nothing. */
  readonly logger?: Logger;
}

export const metricsNamespace = 'Sneakernet/Agents';
export const serviceDimension = 'agent-api';

/** One EMF line: the metrics, with the given dimension values (all of them one dimension set). */
export function emfLine(
  metrics: Record<string, number>,
  dimensions: Record<string, string>,
  now: Date,
): string {
  return JSON.stringify({
    _aws: {
      Timestamp: now.getTime(),
      CloudWatchMetrics: [
        {
          Namespace: metricsNamespace,
          Dimensions: [Object.keys(dimensions)],
          Metrics: Object.keys(metrics).map((Name) => ({ Name, Unit: 'Count' })),
        },
      ],
    },
    ...dimensions,
    ...metrics,
  });
}

// Not console.log: with Lambda's JSON log format, console lines are wrapped and EMF is lost.
const stdout = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

/** Reads the admin token once per container; a failed read is not cached. */
export function secretReader(
  client: Pick<SecretsManagerClient, 'send'>,
  secretArn: string,
): () => Promise<string> {
  return cachedSecret(client, secretArn, (value) => {
    const token = value?.trim();
    if (!token) throw new Error(`the admin token secret ${secretArn} has no string value`);
    return token;
  });
}

function toRequest(event: HttpApiEvent) {
  const query = event.rawQueryString ? `?${event.rawQueryString}` : '';
  const body = event.body
    ? Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8')
    : Buffer.alloc(0);
  const headers: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(event.headers ?? {})) headers[k.toLowerCase()] = v;
  return { method: event.requestContext.http.method, target: `${event.rawPath}${query}`, headers, body };
}

const toResult = (r: AgentApiResponse): HttpApiResult => ({
  statusCode: r.status,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(r.body),
});

/** Counts claimed tasks, per site with enrolled agents, whose holder is late (see the header). */
export async function sweepHeartbeats(d: AgentApiDeps): Promise<{ staleHolds: Record<string, number> }> {
  const now = d.clock.now();
  const emit = d.emit ?? stdout;
  const sites = [...new Set((await d.registry.list()).filter((a) => !a.revoked).map((a) => a.site))].sort();
  const half = (seconds: number) => seconds * 500;
  const staleHolds: Record<string, number> = {};
  for (const site of sites) {
    // listOpen at `now + half` lists the holds that will have lapsed by then, i.e. older than half.
    const later = await d.tasks.listOpen(site, new Date(now.getTime() + half(d.heartbeatSeconds)));
    staleHolds[site] = later.filter(
      (t) =>
        t.status === 'claimed' &&
        t.heartbeatAt !== undefined &&
        now.getTime() - Date.parse(t.heartbeatAt) > half(t.heartbeatSeconds),
    ).length;
    emit(emfLine({ StaleTaskHolds: staleHolds[site] }, { Service: serviceDimension, Site: site }, now));
  }
  const total = Object.values(staleHolds).reduce((a, b) => a + b, 0);
  emit(emfLine({ StaleTaskHolds: total }, { Service: serviceDimension }, now));
  return { staleHolds };
}

const isSweep = (event: unknown): event is SweepEvent =>
  typeof event === 'object' && event !== null && (event as SweepEvent).action === 'heartbeat-sweep';

/** The Lambda handler over `deps` (built once per container by `lambdaAgentApi`). */
export function agentApiHandler(deps: () => AgentApiDeps) {
  return async (
    event: HttpApiEvent | SweepEvent,
    context?: LambdaContext,
  ): Promise<HttpApiResult | { staleHolds: Record<string, number> }> => {
    const d = deps();
    if (isSweep(event)) return sweepHeartbeats(d);
    const emit = d.emit ?? stdout;
    // Per invocation (cheap: the handler holds no state), so that its lines carry the request id.
    const handle = createAgentApiHandler({
      service: d.service,
      tasks: d.tasks,
      registry: d.registry,
      clock: d.clock,
      adminToken: d.adminToken,
      logger: invocationLogger(d.logger ?? silentLogger, context, {}),
      onHeartbeat: (agent) =>
        emit(emfLine({ TaskHeartbeats: 1 }, { Service: serviceDimension, Site: agent.site }, d.clock.now())),
    });
    // A 5xx is logged by the handler, with its stack.
    return toResult(await handle(toRequest(event)));
  };
}

const secretEnv = z.object({
  ADMIN_TOKEN_SECRET_ARN: z
    .string()
    .trim()
    .regex(/^arn:[\w-]+:secretsmanager:[\w-]+:\d{12}:secret:.+$/, 'must be a Secrets Manager secret ARN'),
});

/** The secret's ARN from the environment; ConfigError naming the variable otherwise. */
export function adminSecretArn(env: Readonly<Record<string, string | undefined>>): string {
  const r = secretEnv.safeParse({ ADMIN_TOKEN_SECRET_ARN: env.ADMIN_TOKEN_SECRET_ARN });
  if (!r.success) {
    const value = env.ADMIN_TOKEN_SECRET_ARN;
    throw new ConfigError(
      `Function environment: ADMIN_TOKEN_SECRET_ARN ${value === undefined ? 'is not set' : `is invalid (${r.error.issues[0]?.message})`}.`,
    );
  }
  return r.data.ADMIN_TOKEN_SECRET_ARN;
}

let built: AgentApiDeps | undefined;

/** One set of dependencies per container, from the environment (reused while warm). */
export function lambdaAgentApi(): AgentApiDeps {
  if (!built) {
    const cfg = config();
    const logger = lambdaLogger();
    const rt = createRuntime(cfg, { logger });
    const read = secretReader(new SecretsManagerClient({}), adminSecretArn(process.env));
    built = {
      service: rt.service,
      tasks: rt.store.tasks,
      registry: rt.registry,
      clock: rt.clock,
      adminToken: async () => {
        const token = await read();
        lambdaSecrets.add(token);
        return token;
      },
      heartbeatSeconds: cfg.heartbeatSeconds,
      logger,
    };
  }
  return built;
}

export const handler = agentApiHandler(lambdaAgentApi);
