import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import type { ChatNotifier } from '../core/ports/chat.ts';
import { type Clock, systemClock } from '../core/ports/clock.ts';
import type { WorkflowEngine } from '../core/ports/workflow.ts';
import { TransferService } from '../core/service/transfer-service.ts';
import { config, type FunctionConfig } from './config.ts';
import { JsonLogChat } from './log-chat.ts';
import { SfnEngine } from './sfn-engine.ts';
import { DynamoStore } from './store/dynamodb-store.ts';

/** What tests (or another entry point) replace; everything else comes from the configuration. */
export interface RuntimeOverrides {
  readonly dynamodb?: DynamoDBClient;
  readonly workflow?: WorkflowEngine;
  readonly chat?: ChatNotifier;
  readonly clock?: Clock;
}

/** The service layer over DynamoDB and Step Functions, as the workflow's functions use it. */
export function createService(cfg: FunctionConfig, overrides: RuntimeOverrides = {}): TransferService {
  const store = new DynamoStore({
    client: overrides.dynamodb ?? new DynamoDBClient({}),
    tableName: cfg.tableName,
  });
  return new TransferService({
    transfers: store.transfers,
    tokens: store.tokens,
    tasks: store.tasks,
    workflow:
      overrides.workflow ??
      new SfnEngine({ client: new SFNClient({}), stateMachineArn: cfg.stateMachineArn }),
    chat: overrides.chat ?? new JsonLogChat(),
    clock: overrides.clock ?? systemClock,
    approvers: new Set(cfg.approvers),
    newId: () => `tr-${randomUUID()}`,
    heartbeatSeconds: cfg.heartbeatSeconds,
  });
}

let service: TransferService | undefined;

/** One service per Lambda container, built on the first invocation (reused while warm). */
export function lambdaService(): TransferService {
  service ??= createService(config());
  return service;
}
