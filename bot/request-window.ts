/**
 * Slack's five minutes, both ways (issue #18). Slack dates every signed request
 * (X-Slack-Request-Timestamp) and asks apps to refuse one more than five minutes from the local
 * clock; Bolt's receivers refuse only old ones, so a request dated ahead was accepted, and one
 * dated far ahead stayed fresh after the replay guard had forgotten its id. The two signed entry
 * points put this check in front of Bolt's own (which still verifies the signature): `odt serve`'s
 * HTTP receiver (bot/http.ts) and the Lambda (functions/slack.ts). Socket Mode has nothing to
 * check: Slack signs no requests there, the app-level token authenticates the WebSocket.
 */
import type { HTTPReceiver, Logger } from '@slack/bolt';
import type { AwsHandler } from '@slack/bolt/dist/receivers/AwsLambdaReceiver.js';
import type { Clock } from '../core/ports/clock.ts';

/** How far a request's timestamp may be from the local clock, either way (Slack's rule). */
export const slackRequestWindowMs = 5 * 60_000;

const timestampHeader = 'x-slack-request-timestamp';
const refusedMessage = 'refused a Slack request dated outside five minutes of this clock';

/**
 * Why a request dated `timestamp` (the header's Unix seconds) is refused at `now`, or undefined
 * when it is inside the window. Compared to the millisecond, as Slack's sample compares the
 * absolute difference: a request first seen at t is then admissible until t + 2 × the window at
 * most, which is how long the replay guard keeps its id (bot/replay-guard.ts).
 */
export function requestWindowRefusal(timestamp: string, now: Date): string | undefined {
  if (!/^\d{1,12}$/.test(timestamp)) {
    return `X-Slack-Request-Timestamp '${timestamp.slice(0, 24)}' is not Unix seconds`;
  }
  const offMs = Number(timestamp) * 1000 - now.getTime();
  if (Math.abs(offMs) <= slackRequestWindowMs) return undefined;
  const off = `${Math.round(Math.abs(offMs) / 1000)} s ${offMs > 0 ? 'ahead of' : 'behind'}`;
  return `X-Slack-Request-Timestamp ${timestamp} is ${off} this clock (${now.toISOString()}), more than five minutes; if every request is refused, check this host's clock (NTP)`;
}

export interface RequestWindowOptions {
  readonly clock: Clock;
  /** Where a refusal is logged (Bolt's logger, as the receiver's own refusals are). */
  readonly logger?: Pick<Logger, 'warn'>;
}

/**
 * Puts the window in front of an HTTPReceiver: a request whose timestamp is outside it gets 401
 * and never reaches Bolt. One without the header goes on to Bolt, which refuses it (unless it is
 * Slack's unsigned `ssl_check`). Returns the receiver.
 */
export function withRequestWindow(receiver: HTTPReceiver, options: RequestWindowOptions): HTTPReceiver {
  const bolt = receiver.requestListener;
  // Bolt's server calls `requestListener` at each request, so replacing it covers every route.
  receiver.requestListener = (req, res) => {
    const timestamp = req.headers[timestampHeader];
    const refusal =
      typeof timestamp === 'string' ? requestWindowRefusal(timestamp, options.clock.now()) : undefined;
    if (refusal === undefined) {
      bolt(req, res);
      return;
    }
    options.logger?.warn({ refusal }, refusedMessage);
    req.resume();
    res.writeHead(401).end();
  };
  return receiver;
}

/** The same in front of the AwsLambdaReceiver's handler: 401 outside the window, else Bolt's. */
export function lambdaWithRequestWindow(handler: AwsHandler, options: RequestWindowOptions): AwsHandler {
  return async (event, context) => {
    const name = Object.keys(event.headers ?? {}).find((h) => h.toLowerCase() === timestampHeader);
    const timestamp: unknown = name === undefined ? undefined : event.headers[name];
    const refusal =
      typeof timestamp === 'string' ? requestWindowRefusal(timestamp, options.clock.now()) : undefined;
    if (refusal === undefined) return handler(event, context);
    options.logger?.warn({ refusal }, refusedMessage);
    return { statusCode: 401, body: '' };
  };
}
