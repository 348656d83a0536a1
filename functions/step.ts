import { z } from 'zod';
import { type Logger, silentLogger } from '../core/ports/logger.ts';
import type { TransferService } from '../core/service/transfer-service.ts';
import { parseOrThrow } from '../core/validate.ts';
import { loggedCall } from '../shared/logger.ts';
import { invocationLogger, type LambdaContext, lambdaLogger, lambdaService } from './runtime.ts';

/** The plain steps of the workflow (`Resource: ${StepFunctionArn}`, Parameters {transferId, action}). */
export const stepEvent = z.object({
  transferId: z.string().min(1),
  action: z.string().min(1),
});

/**
 * Returns the step's result (the definition stores it at `$.step`). Typed errors propagate: their
 * `name` is the errorType that the definition's Retry/Catch match (e.g. ConflictError is retried).
 */
export const stepHandler =
  (service: () => TransferService, logger: () => Logger = () => silentLogger) =>
  async (event: unknown, context?: LambdaContext): Promise<Record<string, unknown>> => {
    const { transferId, action } = parseOrThrow(stepEvent, event, 'The step event');
    const log = invocationLogger(logger(), context, { transferId });
    return loggedCall(log, { action }, 'workflow step', () => service().onStep(transferId, action));
  };

export const handler = stepHandler(lambdaService, lambdaLogger);
