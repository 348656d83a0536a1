import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import dynalite from 'dynalite';
import type { WorkflowEngine } from '../../core/ports/workflow.ts';
import { type FunctionConfig, parseConfig } from '../../functions/config.ts';
import { createSlackHandler, type SlackHandler } from '../../functions/slack.ts';
import { tableDefinition } from '../../functions/store/dynamodb-store.ts';
import { sign } from '../bot/harness.ts';
import {
  type FakeSlackApi,
  type FakeSlackOptions,
  startFakeSlackApi,
} from '../peers/slack/fake-slack-api.ts';
import { vmAndTemplateRequest } from '../support/vm-and-template-request.ts';

/** The request the function tests move (test/support/vm-and-template-request.ts). */
export const request = vmAndTemplateRequest;

export interface Dynalite {
  readonly endpoint: string;
  readonly tableName: string;
  /** A client of the server; `onCommand` sees each low-level command's name (e.g. GetItem). */
  client(onCommand?: (name: string) => void): DynamoDBClient;
  close(): Promise<void>;
}

/** A real DynamoDB-compatible server (dynalite, in memory) on a free loopback port, with the table. */
export async function startDynalite(tableName = 'odt-functions'): Promise<Dynalite> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clients: DynamoDBClient[] = [];
  const client = (onCommand?: (name: string) => void) => {
    const c = new DynamoDBClient({
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
    });
    if (onCommand)
      c.middlewareStack.add(
        (next, context) => (args) => {
          onCommand(String(context.commandName).replace(/Command$/, ''));
          return next(args);
        },
        { step: 'initialize', name: 'recordCommands' },
      );
    clients.push(c);
    return c;
  };
  const admin = client();
  await admin.send(new CreateTableCommand(tableDefinition(tableName)));
  for (;;) {
    const d = await admin.send(new DescribeTableCommand({ TableName: tableName }));
    if (d.Table?.TableStatus === 'ACTIVE') break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    endpoint,
    tableName,
    client,
    async close() {
      for (const c of clients) c.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * The configuration of the workflow's functions over `db`'s table: a state machine that is never
 * called (tests pass a RecordingEngine), `bob` the approver, 600 s heartbeats.
 */
export const functionConfig = (db: Dynalite): FunctionConfig => ({
  tableName: db.tableName,
  stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:T-transfer',
  approvers: ['bob'],
  heartbeatSeconds: 600,
});

export type EngineCall =
  | { op: 'start'; transferId: string }
  | { op: 'success'; token: string; output: Record<string, unknown> }
  | { op: 'failure'; token: string; error: string; cause: string }
  | { op: 'heartbeat'; token: string };

/** A WorkflowEngine that records what the service asks of it. */
export class RecordingEngine implements WorkflowEngine {
  readonly calls: EngineCall[] = [];
  async start(transferId: string) {
    this.calls.push({ op: 'start', transferId });
  }
  async sendTaskSuccess(token: string, output: Record<string, unknown>) {
    this.calls.push({ op: 'success', token, output });
  }
  async sendTaskFailure(token: string, error: string, cause: string) {
    this.calls.push({ op: 'failure', token, error, cause });
  }
  async sendTaskHeartbeat(token: string) {
    this.calls.push({ op: 'heartbeat', token });
  }
}

export interface SfnCall {
  /** The operation, e.g. SendTaskSuccess (from X-Amz-Target). */
  readonly op: string;
  readonly body: Record<string, unknown>;
}

/**
 * A stand-in for the Step Functions endpoint (JSON 1.0 protocol): records each call and answers
 * with `respond` — an object for success, or `{ error: 'TaskTimedOut' }` for an error.
 */
export async function startFakeSfn(
  respond: (call: SfnCall) => Record<string, unknown> | { error: string } = () => ({}),
) {
  const calls: SfnCall[] = [];
  const read = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };
  const server = createServer(async (req, res) => {
    const op = String(req.headers['x-amz-target'] ?? '').replace(/^AWSStepFunctions\./, '');
    const call = { op, body: JSON.parse((await read(req)) || '{}') as Record<string, unknown> };
    calls.push(call);
    const answer = respond(call);
    const isError = 'error' in answer && typeof answer.error === 'string';
    res.writeHead(isError ? 400 : 200, { 'content-type': 'application/x-amz-json-1.0' });
    res.end(
      JSON.stringify(
        isError ? { __type: `com.amazonaws.swf.base.model#${answer.error}`, message: 'fake' } : answer,
      ),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * An API Gateway HTTP API event (payload 2.0) of a Slack request, signed as Slack signs it: a form
 * body (commands, interactions) or, with `application/json`, an Events API callback.
 */
export function signedSlackEvent(
  body: string,
  signingSecret: string,
  at = Math.floor(Date.now() / 1000),
  contentType = 'application/x-www-form-urlencoded',
) {
  return {
    version: '2.0',
    routeKey: 'POST /slack/events',
    rawPath: '/slack/events',
    rawQueryString: '',
    headers: {
      'content-type': contentType,
      'x-slack-request-timestamp': String(at),
      'x-slack-signature': sign(signingSecret, at, body),
    },
    requestContext: { http: { method: 'POST', path: '/slack/events' } },
    body,
    isBase64Encoded: false,
  };
}

export const slackSecretArn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:odt-slack-AbCdEf';

/** The Slack function (functions/slack.ts) with what it talks to, for one test file. */
export interface SlackFunction {
  readonly db: Dynalite;
  readonly sfn: Awaited<ReturnType<typeof startFakeSfn>>;
  readonly slack: FakeSlackApi;
  /** A Secrets Manager stand-in holding the Slack secret at `slackSecretArn` (any other id fails). */
  readonly secrets: { send(command: GetSecretValueCommand): Promise<{ SecretString: string }> };
  /** The function's configuration from its environment variables. */
  cfg(): FunctionConfig;
  readonly handler: SlackHandler;
  /** Stops the stand-ins and restores process.env. */
  close(): Promise<void>;
}

/**
 * The Slack function over dynalite, a Step Functions endpoint that starts executions, the fake
 * Slack Web API and a Secrets Manager stand-in; the AWS variables it reads are set in process.env
 * until `close()`.
 */
export async function startSlackFunction(o: {
  readonly tableName: string;
  readonly approvers: string;
  readonly approversChannel: string;
  readonly signingSecret: string;
  readonly slack?: FakeSlackOptions;
}): Promise<SlackFunction> {
  const saved = { ...process.env };
  const db = await startDynalite(o.tableName);
  const sfn = await startFakeSfn((call) =>
    call.op === 'StartExecution' ? { executionArn: 'arn:x', startDate: 1 } : {},
  );
  const slack = await startFakeSlackApi(o.slack);
  const secretString = JSON.stringify({ botToken: 'xoxb-test', signingSecret: o.signingSecret });
  const secrets = {
    async send(command: GetSecretValueCommand) {
      if (!(command instanceof GetSecretValueCommand) || command.input.SecretId !== slackSecretArn)
        throw new Error(`the Secrets Manager stand-in holds ${slackSecretArn} only`);
      return { SecretString: secretString };
    },
  };
  const cfg = () =>
    parseConfig({
      TABLE_NAME: db.tableName,
      STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:123456789012:stateMachine:Sneakernet-transfer',
      APPROVERS: o.approvers,
      SLACK_SECRET_ARN: slackSecretArn,
      APPROVERS_CHANNEL: o.approversChannel,
      SLACK_API_URL: slack.url,
    });
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_ENDPOINT_URL_SFN: sfn.endpoint,
  });
  const handler = await createSlackHandler(cfg(), { dynamodb: db.client(), secrets });
  return {
    db,
    sfn,
    slack,
    secrets,
    cfg,
    handler,
    async close() {
      process.env = saved;
      await slack.close();
      await sfn.close();
      await db.close();
    },
  };
}
