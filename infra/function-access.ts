/**
 * The workflow's Lambda functions and exactly what each may do: the stack grants this and no
 * more, and test/functions/ checks that every call the handlers make is covered by it.
 * Pure data (no CDK import), so that the functions' tests can read it cheaply.
 */
import type { Placeholder } from '../shared/workflow-definition.ts';

export type TableAction =
  | 'dynamodb:GetItem'
  | 'dynamodb:PutItem'
  | 'dynamodb:UpdateItem'
  | 'dynamodb:DeleteItem'
  | 'dynamodb:Query';
export type StatesAction =
  | 'states:StartExecution'
  | 'states:SendTaskSuccess'
  | 'states:SendTaskFailure'
  | 'states:SendTaskHeartbeat';

export interface FunctionAccess {
  /** The handler's source, relative to the project root. */
  readonly entry: string;
  /** The definition placeholder this function's ARN replaces. */
  readonly placeholder: Placeholder;
  /** On the table itself (transfers, tokens and tasks are items of one table). */
  readonly table: readonly TableAction[];
  /** On the table's GSI `gsi1` (listings); none of the workflow's functions lists. */
  readonly index: readonly TableAction[];
  /** On this stack's state machine only. */
  readonly states: readonly StatesAction[];
}

export const workflowFunctions = {
  /** onStep: reads and conditionally rewrites the transfer. */
  Step: {
    entry: 'functions/step.ts',
    placeholder: 'StepFunctionArn',
    table: ['dynamodb:GetItem', 'dynamodb:PutItem'],
    index: [],
    states: [],
  },
  /** onWait: keeps the token; if the event already happened, takes it back and completes the wait. */
  Await: {
    entry: 'functions/await.ts',
    placeholder: 'AwaitFunctionArn',
    table: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem'],
    index: [],
    states: ['states:SendTaskSuccess', 'states:SendTaskFailure'],
  },
  /** onAgentTask: moves the transfer and its items, keeps the token, enqueues the site's task. */
  AgentTask: {
    entry: 'functions/agent-task.ts',
    placeholder: 'AgentTaskFunctionArn',
    table: ['dynamodb:GetItem', 'dynamodb:PutItem'],
    index: [],
    states: ['states:SendTaskFailure'],
  },
} as const satisfies Record<string, FunctionAccess>;

export type WorkflowFunctionName = keyof typeof workflowFunctions;

/**
 * The agent API (functions/agent-api.ts), behind the HTTP API: agents' tasks (read, conditional
 * put), callback tokens (peek, take = delete), the agent registry (codes and revocation are
 * conditional updates), listings on `gsi1` (a site's live tasks, the agents); task callbacks on
 * this stack's state machine; and the admin token secret (GetSecretValue on that secret only).
 */
export const agentApiAccess = {
  entry: 'functions/agent-api.ts',
  table: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
  index: ['dynamodb:Query'],
  states: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'],
} as const satisfies Omit<FunctionAccess, 'placeholder'>;

/**
 * The Slack app (functions/slack.ts), behind `POST /slack/events`: the service layer's reads and
 * conditional writes, listings (status, list, App Home), the registry (inventories, enrollment
 * codes, request-id nonces), starting executions (a request) and task callbacks (approval, the
 * shipping steps, cancel).
 */
export const slackAccess = {
  entry: 'functions/slack.ts',
  table: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
  index: ['dynamodb:Query'],
  states: ['states:StartExecution', 'states:SendTaskSuccess', 'states:SendTaskFailure'],
} as const satisfies Omit<FunctionAccess, 'placeholder'>;

/**
 * What every function adds when the stack has a Slack app: the chat notifier reads and updates
 * the transfer's message refs (functions/store/dynamodb-message-refs.ts) and reads the Slack secret.
 */
export const slackChatTableAccess = [
  'dynamodb:GetItem',
  'dynamodb:UpdateItem',
] as const satisfies readonly TableAction[];
