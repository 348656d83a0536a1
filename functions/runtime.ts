import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SFNClient } from '@aws-sdk/client-sfn';
import { approversFromEntries } from '../bot/approvers-group.ts';
import type { Approvers } from '../core/ports/approvers.ts';
import type { ChatNotifier } from '../core/ports/chat.ts';
import { type Clock, systemClock } from '../core/ports/clock.ts';
import { type Logger, silentLogger } from '../core/ports/logger.ts';
import type { WorkflowEngine } from '../core/ports/workflow.ts';
import { JsonLinesChat } from '../core/service/json-lines-chat.ts';
import { TransferService } from '../core/service/transfer-service.ts';
import { createLogger, SecretMask } from '../shared/logger.ts';
import { config, type FunctionConfig } from './config.ts';
import { SfnEngine } from './sfn-engine.ts';
import { lambdaSlackChat, lambdaSlackClient, slackSecretReader } from './slack-chat.ts';
import { DynamoAgentRegistry } from './store/dynamodb-agent-registry.ts';
import { DynamoStore } from './store/dynamodb-store.ts';

/** What tests (or another entry point) replace; everything else comes from the configuration. */
export interface RuntimeOverrides {
  readonly dynamodb?: DynamoDBClient;
  readonly workflow?: WorkflowEngine;
  readonly chat?: ChatNotifier;
  readonly clock?: Clock;
  readonly secrets?: Pick<SecretsManagerClient, 'send'>;
  /** Default: nothing is logged (the handlers pass `lambdaLogger()`). */
  readonly logger?: Logger;
}

/** The service layer over DynamoDB and Step Functions, as the workflow's functions use it. */
export function createService(cfg: FunctionConfig, overrides: RuntimeOverrides = {}): TransferService {
  return createRuntime(cfg, overrides).service;
}

export interface Runtime {
  readonly service: TransferService;
  /** Who may approve: the service's, and the Slack bot's (which tells it of group changes). */
  readonly approvers: Approvers;
  readonly store: DynamoStore;
  /** Enrolled agents, codes, nonces, inventories: the same table (functions/agent-api.ts). */
  readonly registry: DynamoAgentRegistry;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** The service and the adapters under it, over one DynamoDB client. */
export function createRuntime(cfg: FunctionConfig, overrides: RuntimeOverrides = {}): Runtime {
  const client = overrides.dynamodb ?? new DynamoDBClient({});
  const store = new DynamoStore({ client, tableName: cfg.tableName });
  const clock = overrides.clock ?? systemClock;
  const logger = overrides.logger ?? silentLogger;
  const warn = (meta: Record<string, unknown>, message: string) => logger.warn(meta, message);
  const secrets = overrides.secrets ?? new SecretsManagerClient({});
  const secret = cfg.slack ? slackSecretReader(secrets, cfg.slack.secretArn) : undefined;
  // User groups among APPROVERS are read with the bot token of the Slack secret, per container
  // (config.ts refuses a group without SLACK_SECRET_ARN).
  const approvers = approversFromEntries(
    cfg.approvers,
    cfg.slack && secret ? { client: lambdaSlackClient(cfg.slack, secret), log: warn } : undefined,
  );
  const service = new TransferService({
    transfers: store.transfers,
    tokens: store.tokens,
    tasks: store.tasks,
    workflow:
      overrides.workflow ??
      new SfnEngine({ client: new SFNClient({}), stateMachineArn: cfg.stateMachineArn }),
    // With a Slack app configured, people follow the transfer in Slack; otherwise in the logs.
    chat:
      overrides.chat ??
      (cfg.slack
        ? lambdaSlackChat(cfg.slack, client, cfg.tableName, secrets, secret, warn)
        : new JsonLinesChat((line) => console.log(line), { source: 'chat' })),
    clock,
    approvers,
    newId: () => `tr-${randomUUID()}`,
    heartbeatSeconds: cfg.heartbeatSeconds,
  });
  return {
    service,
    approvers,
    store,
    registry: new DynamoAgentRegistry({ client, tableName: cfg.tableName }),
    clock,
    logger,
  };
}

/** Secrets the container has read (the admin token, the Slack secret): masked in every log line. */
export const lambdaSecrets = new SecretMask();

let logger: Logger | undefined;

/**
 * The container's logger: JSON lines on stdout, which Lambda sends to CloudWatch Logs as they are
 * (its JSON log format filters them by their `level`), at ODT_LOG_LEVEL (default info).
 */
export function lambdaLogger(): Logger {
  logger ??= createLogger({
    level: config().logLevel ?? 'info',
    destination: process.stdout,
    secrets: lambdaSecrets,
  });
  return logger;
}

let service: TransferService | undefined;

/** One service per Lambda container, built on the first invocation (reused while warm). */
export function lambdaService(): TransferService {
  service ??= createService(config(), { logger: lambdaLogger() });
  return service;
}

/** The part of Lambda's context object the handlers log. */
export interface LambdaContext {
  readonly awsRequestId?: string;
}

/** The invocation's logger: the request id and the given keys (e.g. the transfer's id) on every line. */
export const invocationLogger = (
  log: Logger,
  context: LambdaContext | undefined,
  bindings: Readonly<Record<string, unknown>>,
): Logger =>
  log.child({ ...(context?.awsRequestId ? { requestId: context.awsRequestId } : {}), ...bindings });
