/**
 * The Slack app as deployed on AWS (functions/slack.ts): API Gateway HTTP API events (payload 2.0)
 * signed as Slack signs them, through Bolt's AwsLambdaReceiver, over DynamoDB (dynalite), a Step
 * Functions endpoint stand-in, the fake Slack Web API and a Secrets Manager stand-in.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime } from '../../functions/runtime.ts';
import { LambdaSlackChat, slackSecretReader } from '../../functions/slack-chat.ts';
import { DynamoMessageRefs } from '../../functions/store/dynamodb-message-refs.ts';
import { APPROVERS, buttonClick, CHANNEL, commandFields, postApprovalMessage } from '../bot/harness.ts';
import {
  request,
  type SlackFunction,
  signedSlackEvent,
  slackSecretArn,
  startSlackFunction,
} from './support.ts';

const SIGNING = 'lambda-signing-secret';
const APPROVER = APPROVERS[0]!;

let fn: SlackFunction;
beforeAll(async () => {
  fn = await startSlackFunction({
    tableName: 'odt-slack-lambda',
    approvers: APPROVER,
    approversChannel: CHANNEL,
    signingSecret: SIGNING,
  });
});
afterAll(() => fn?.close());

const event = (body: string, opts: { secret?: string; at?: number } = {}) =>
  signedSlackEvent(body, opts.secret ?? SIGNING, opts.at);
const command = (text: string, user = 'UCUSTOMER1') =>
  new URLSearchParams(commandFields(text, user)).toString();

describe('the Slack function', () => {
  it('answers a signed /odt with help, ephemerally', async () => {
    const res = await fn.handler(event(command('help')), {});
    expect(res.statusCode).toBe(200);
    const body = JSON.parse(res.body) as { response_type: string; text: string };
    expect(body.response_type).toBe('ephemeral');
    expect(body.text).toContain('/odt request');
  });

  it('refuses a forged signature and a stale timestamp with 401', async () => {
    expect((await fn.handler(event(command('list'), { secret: 'wrong' }), {})).statusCode).toBe(401);
    const stale = Math.floor(Date.now() / 1000) - 6 * 60;
    expect((await fn.handler(event(command('list'), { at: stale }), {})).statusCode).toBe(401);
  });

  it('an approval click sends the task success to Step Functions, once, even when replayed', async () => {
    const runtime = createRuntime(fn.cfg(), { dynamodb: fn.db.client(), secrets: fn.secrets });
    const t = await runtime.service.request({ ...request(), requester: 'UCUSTOMER1' });
    expect(fn.sfn.calls.some((c) => c.op === 'StartExecution')).toBe(true);
    await runtime.service.onWait(t.id, 'approval', 'token-approval-1');
    const ts = await postApprovalMessage(fn.slack, t.id);
    const click = new URLSearchParams({
      payload: JSON.stringify(buttonClick(APPROVER, 'odt_approve', t.id, { channel: CHANNEL, ts })),
    }).toString();
    const signed = event(click);
    expect((await fn.handler(signed, {})).statusCode).toBe(200);
    const successes = () => fn.sfn.calls.filter((c) => c.op === 'SendTaskSuccess');
    expect(successes().map((c) => c.body.taskToken)).toEqual(['token-approval-1']);
    expect((await runtime.service.get(t.id)).phase).toBe('approved');
    expect(JSON.stringify(fn.slack.message(CHANNEL, ts)?.blocks)).toContain(`Approved by <@${APPROVER}>`);
    // The thread is remembered in DynamoDB, where every function's notifier finds it.
    const ref = await new DynamoMessageRefs(fn.db.client(), fn.db.tableName).get(t.id);
    expect(ref).toMatchObject({ channel: CHANNEL, threadTs: ts });
    // The same signed request again (another container would see the same DynamoDB nonce).
    expect((await fn.handler(signed, {})).statusCode).toBe(200);
    expect(successes()).toHaveLength(1);
  });
});

describe('the functions’ Slack chat', () => {
  it('posts a phase change, skips progress inside the interval, and never throws on a bad secret', async () => {
    let now = 1_000_000;
    const refs = new DynamoMessageRefs(fn.db.client(), fn.db.tableName, () => now);
    const log: string[] = [];
    const chat = new LambdaSlackChat({
      slack: { secretArn: slackSecretArn, approversChannel: CHANNEL, apiUrl: fn.slack.url },
      secret: slackSecretReader(fn.secrets, slackSecretArn),
      refs,
      now: () => now,
      log: (_m, msg) => log.push(msg),
    });
    const runtime = createRuntime(fn.cfg(), { dynamodb: fn.db.client(), secrets: fn.secrets, chat });
    const t = await runtime.service.request({ ...request(), requester: 'UCUSTOMER1' });
    const exporting = {
      ...t,
      phase: 'exporting' as const,
      items: t.items.map((i) => ({ ...i, result: { ...i.result, state: 'exporting' as const } })),
    };
    const before = fn.slack.ok('chat.postMessage').length;
    await chat.transferChanged(exporting);
    expect(fn.slack.ok('chat.postMessage').length).toBe(before + 1);
    const ref = await refs.get(t.id);
    expect(ref?.progressTs).toBeDefined();
    const item = t.items[0]!.id;
    const updates = () => fn.slack.ok('chat.update').filter((c) => c.args.ts === ref?.progressTs).length;
    // lastUpdateAt is the real clock of SlackChat; move the chat's clock into the interval after it.
    now = (ref?.lastUpdateAt ?? 0) + 1000;
    await chat.progress(exporting, [{ itemId: item, bytesDone: 10, bytesTotal: 100 }]);
    expect(updates()).toBe(0);
    now = (ref?.lastUpdateAt ?? 0) + 6000;
    await chat.progress(exporting, [{ itemId: item, bytesDone: 50, bytesTotal: 100 }]);
    expect(updates()).toBe(1);
    expect(JSON.stringify(fn.slack.message(CHANNEL, ref!.progressTs!)?.blocks)).toContain('50');

    const broken = new LambdaSlackChat({
      slack: { secretArn: slackSecretArn, approversChannel: CHANNEL, apiUrl: fn.slack.url },
      secret: slackSecretReader({ send: async () => ({ SecretString: '{"botToken":""}' }) }, slackSecretArn),
      refs,
      log: (_m, msg) => log.push(msg),
    });
    await expect(broken.transferChanged(exporting)).resolves.toBeUndefined();
    expect(log.some((l) => l.includes('no Slack client'))).toBe(true);
  });
});

describe('the Slack secret', () => {
  it('a placeholder value is refused with how to set it, and read again once it is set (warm containers recover)', async () => {
    let value = JSON.stringify({ botToken: 'set-me', signingSecret: 'x' });
    let reads = 0;
    const read = slackSecretReader(
      {
        send: async () => {
          reads++;
          return { SecretString: value };
        },
      },
      slackSecretArn,
    );
    await expect(read()).rejects.toThrow(/botToken is not a bot token.*put-secret-value/);
    value = JSON.stringify({ botToken: 'xoxb-real', signingSecret: 'real' });
    await expect(read()).resolves.toEqual({ botToken: 'xoxb-real', signingSecret: 'real' });
    await read();
    expect(reads).toBe(2);
  });
});
