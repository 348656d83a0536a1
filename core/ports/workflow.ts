import { CodedError } from '../errors.ts';

/**
 * The workflow engine as the service layer sees it: Step Functions on AWS, the embedded durable
 * runner in `odt serve`. Tokens come from the engine and are kept in the TokenStore.
 */
export interface WorkflowEngine {
  /** Starts the workflow of one transfer; idempotent by transfer id. */
  start(transferId: string): Promise<void>;
  sendTaskSuccess(token: string, output: Record<string, unknown>): Promise<void>;
  /** `error` is matched by the definition's Catch (e.g. TransferCancelled). */
  sendTaskFailure(token: string, error: string, cause: string): Promise<void>;
  sendTaskHeartbeat(token: string): Promise<void>;
}

/** The waits of the workflow definition, by the name its callback tasks pass. */
export const workflowWaits = [
  'approval',
  'appliance-sent',
  'appliance-connected',
  'export-decision',
  'shipped',
  'received',
  'wipe',
  'export',
  'import',
  'make-key',
  'destroy-key',
] as const;
export type WorkflowWait = (typeof workflowWaits)[number];

/**
 * A callback the engine no longer accepts: the task ended, timed out, or the token is not one of
 * its own. `name` is the Step Functions error code; both engines throw this class.
 */
export class TaskTokenError extends CodedError<'TaskDoesNotExist' | 'TaskTimedOut' | 'InvalidToken'> {
  constructor(
    code: 'TaskDoesNotExist' | 'TaskTimedOut' | 'InvalidToken',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.name = code;
  }
}
