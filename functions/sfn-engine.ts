import {
  ExecutionAlreadyExists,
  InvalidToken,
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  type SFNClient,
  StartExecutionCommand,
  TaskDoesNotExist,
  TaskTimedOut,
} from '@aws-sdk/client-sfn';
import { TaskTokenError, type WorkflowEngine } from '../core/ports/workflow.ts';

/** The SDK's exception of a callback the engine refuses, as the code of our TaskTokenError. */
function tokenError(error: unknown): TaskTokenError['code'] | undefined {
  if (error instanceof TaskTimedOut) return 'TaskTimedOut';
  if (error instanceof TaskDoesNotExist) return 'TaskDoesNotExist';
  if (error instanceof InvalidToken) return 'InvalidToken';
  return undefined;
}

/** Step Functions' limits on SendTaskFailure (characters). */
const maxErrorLength = 256;
const maxCauseLength = 32_768;

export interface SfnEngineOptions {
  /** A configured client (region, credentials); the engine reads no environment. */
  readonly client: SFNClient;
  readonly stateMachineArn: string;
}

/** The workflow engine on AWS Step Functions: one execution per transfer, named by its id. */
export class SfnEngine implements WorkflowEngine {
  constructor(private readonly options: SfnEngineOptions) {}

  /** Starts the transfer's execution; an execution of that name already existing is success. */
  async start(transferId: string): Promise<void> {
    try {
      await this.options.client.send(
        new StartExecutionCommand({
          stateMachineArn: this.options.stateMachineArn,
          name: transferId,
          input: JSON.stringify({ transferId }),
        }),
      );
    } catch (error) {
      if (error instanceof ExecutionAlreadyExists) return;
      throw error;
    }
  }

  sendTaskSuccess(token: string, output: Record<string, unknown>): Promise<void> {
    return this.callback(
      'SendTaskSuccess',
      new SendTaskSuccessCommand({ taskToken: token, output: JSON.stringify(output) }),
    );
  }

  sendTaskFailure(token: string, error: string, cause: string): Promise<void> {
    return this.callback(
      'SendTaskFailure',
      new SendTaskFailureCommand({
        taskToken: token,
        error: error.slice(0, maxErrorLength),
        cause: cause.slice(0, maxCauseLength),
      }),
    );
  }

  sendTaskHeartbeat(token: string): Promise<void> {
    return this.callback('SendTaskHeartbeat', new SendTaskHeartbeatCommand({ taskToken: token }));
  }

  private async callback(
    what: string,
    command: SendTaskSuccessCommand | SendTaskFailureCommand | SendTaskHeartbeatCommand,
  ): Promise<void> {
    try {
      // One union-typed call would not type-check against the client's overloads.
      await this.options.client.send(command as SendTaskSuccessCommand);
    } catch (error) {
      const code = tokenError(error);
      if (!code) throw error;
      const why =
        code === 'InvalidToken'
          ? 'the task token is not valid'
          : 'the workflow task is no longer waiting (it ended, was cancelled or timed out)';
      throw new TaskTokenError(code, `${what} refused: ${why} (${code}).`, { cause: error });
    }
  }
}
