import { z } from 'zod';
import { type Logger, silentLogger } from '../core/ports/logger.ts';
import type { WorkflowWait } from '../core/ports/workflow.ts';
import type { TransferService } from '../core/service/transfer-service.ts';
import { parseOrThrow } from '../core/validate.ts';
import { loggedCall } from '../shared/logger.ts';
import { invocationLogger, type LambdaContext, lambdaLogger, lambdaService } from './runtime.ts';

/** The waits for people (the agent tasks' waits, export and import, go through agent-task.ts). */
export const personWaits = [
  'approval',
  'appliance-sent',
  'appliance-connected',
  'export-decision',
  'shipped',
  'received',
  'wipe',
] as const satisfies readonly WorkflowWait[];

/** A callback wait (`lambda:invoke.waitForTaskToken`, Payload {transferId, wait, taskToken}). */
export const awaitEvent = z.object({
  transferId: z.string().min(1),
  wait: z.enum(personWaits),
  taskToken: z.string().min(1),
});

/** Stores the token (or completes the wait at once if its event already happened); returns nothing. */
export const awaitHandler =
  (service: () => TransferService, logger: () => Logger = () => silentLogger) =>
  async (event: unknown, context?: LambdaContext): Promise<void> => {
    const e = parseOrThrow(awaitEvent, event, 'The wait event');
    const log = invocationLogger(logger(), context, { transferId: e.transferId });
    await loggedCall(log, { wait: e.wait }, 'workflow wait', () =>
      service().onWait(e.transferId, e.wait, e.taskToken),
    );
  };

export const handler = awaitHandler(lambdaService, lambdaLogger);
