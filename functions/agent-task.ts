import { z } from 'zod';
import { type Logger, silentLogger } from '../core/ports/logger.ts';
import { taskKinds } from '../core/ports/task-queue.ts';
import type { TransferService } from '../core/service/transfer-service.ts';
import { parseOrThrow } from '../core/validate.ts';
import { loggedCall } from '../shared/logger.ts';
import { invocationLogger, type LambdaContext, lambdaLogger, lambdaService } from './runtime.ts';

/** Agent work (`lambda:invoke.waitForTaskToken`, Payload {transferId, kind, taskToken}). */
export const agentTaskEvent = z.object({
  transferId: z.string().min(1),
  kind: z.enum(taskKinds),
  taskToken: z.string().min(1),
});

/** Queues the task for the right site's agents and keeps the token; returns nothing. */
export const agentTaskHandler =
  (service: () => TransferService, logger: () => Logger = () => silentLogger) =>
  async (event: unknown, context?: LambdaContext): Promise<void> => {
    const e = parseOrThrow(agentTaskEvent, event, 'The agent task event');
    const log = invocationLogger(logger(), context, { transferId: e.transferId });
    await loggedCall(log, { kind: e.kind }, 'workflow agent task', () =>
      service().onAgentTask(e.transferId, e.kind, e.taskToken),
    );
  };

export const handler = agentTaskHandler(lambdaService, lambdaLogger);
