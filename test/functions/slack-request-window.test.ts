/**
 * Slack's five minutes, both ways (issue #18), through the Slack function (functions/slack.ts):
 * a correctly signed request dated more than five minutes from the function's clock is refused
 * with 401, and a replay inside the window is dropped even at its far edge, because request ids
 * stay in DynamoDB's nonce items for the whole window, past and future. The clock is the runtime's
 * (injected); Bolt's own check (the real clock) sees every request here as fresh.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../../core/ports/clock.ts';
import { createSlackHandler, type SlackHandler } from '../../functions/slack.ts';
import { APPROVERS, CHANNEL, commandFields } from '../bot/harness.ts';
import { type SlackFunction, signedSlackEvent, startSlackFunction } from './support.ts';

const SIGNING = 'lambda-window-secret';
const minute = 60_000;

let fn: SlackFunction;
beforeAll(async () => {
  fn = await startSlackFunction({
    tableName: 'odt-slack-window',
    approvers: APPROVERS[0]!,
    approversChannel: CHANNEL,
    signingSecret: SIGNING,
  });
});
afterAll(() => fn?.close());

/** The function on a clock the test moves, over the same table and stand-ins. */
async function handlerOn(): Promise<{ clock: Clock & { ms: number }; handler: SlackHandler }> {
  const clock = { ms: Math.floor(Date.now() / 1000) * 1000, now: () => new Date(clock.ms) };
  const handler = await createSlackHandler(fn.cfg(), {
    dynamodb: fn.db.client(),
    secrets: fn.secrets,
    clock,
  });
  return { clock, handler };
}

/** `/odt help`, whose answer is the response body: a body means the request acted. */
const help = () => new URLSearchParams(commandFields('help')).toString();
const seconds = (ms: number) => Math.floor(ms / 1000);

describe('the request window of the Slack function (issue #18)', () => {
  it('refuses a correctly signed request dated six minutes ahead with 401', async () => {
    const { clock, handler } = await handlerOn();
    const res = await handler(signedSlackEvent(help(), SIGNING, seconds(clock.ms + 6 * minute)), {});
    expect(res).toMatchObject({ statusCode: 401, body: '' });
  });

  it('accepts one dated four minutes ahead, and one four minutes old', async () => {
    const { clock, handler } = await handlerOn();
    const ahead = await handler(signedSlackEvent(help(), SIGNING, seconds(clock.ms + 4 * minute)), {});
    const old = await handler(signedSlackEvent(help(), SIGNING, seconds(clock.ms - 4 * minute)), {});
    expect(ahead.statusCode).toBe(200);
    expect(ahead.body).toContain('/odt request');
    expect(old.statusCode).toBe(200);
    expect(old.body).toContain('/odt request');
  });

  it('refuses one dated far ahead, and again once the ids of its time would have expired', async () => {
    const { clock, handler } = await handlerOn();
    const event = signedSlackEvent(help(), SIGNING, seconds(clock.ms + 30 * minute));
    expect((await handler(event, {})).statusCode).toBe(401);
    clock.ms += 11 * minute;
    expect((await handler(event, {})).statusCode).toBe(401);
  });

  it('drops a replay at the far edge of the window, in another container', async () => {
    const { clock, handler } = await handlerOn();
    // Another container over the same table, on the same clock.
    const other = await createSlackHandler(fn.cfg(), {
      dynamodb: fn.db.client(),
      secrets: fn.secrets,
      clock,
    });
    // Dated the whole window ahead: admissible from now until ten minutes from now.
    const event = signedSlackEvent(help(), SIGNING, seconds(clock.ms) + 300);

    const first = await handler(event, {});
    expect(first.statusCode).toBe(200);
    expect(first.body).toContain('/odt request');

    // Ten minutes on, the timestamp is just inside the window: the id must still be known.
    clock.ms += 10 * minute;
    expect(await other(event, {})).toMatchObject({ statusCode: 200, body: '' });

    // A millisecond later the window refuses it; an id kept no longer than this is enough.
    clock.ms += 1;
    expect((await other(event, {})).statusCode).toBe(401);
  });
});
