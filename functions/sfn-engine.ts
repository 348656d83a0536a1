import {
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  type SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { TaskTokenError, type WorkflowEngine } from '../core/ports/workflow.ts';

const tokenErrors: Record<string, TaskTokenError['code']> = {
  TaskTimedOut: 'TaskTimedOut',
  TaskDoesNotExist: 'TaskDoesNotExist',
  InvalidToken: 'InvalidToken',
};

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
      if (errorName(error) === 'ExecutionAlreadyExists') return;
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
      const code = tokenErrors[errorName(error) ?? ''];
      if (!code) throw error;
      const why =
        code === 'InvalidToken'
          ? 'the task token is not valid'
          : 'the workflow task is no longer waiting (it ended, was cancelled or timed out)';
      throw new TaskTokenError(code, `${what} refused: ${why} (${code}).`, { cause: error });
    }
  }
}

function errorName(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined;
}
