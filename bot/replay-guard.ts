/**
 * Slack retries (X-Slack-Retry-Num) and replays of a request already handled are acknowledged
 * and dropped: the first delivery acted.
 */
import type { App } from '@slack/bolt';
import type { AgentRegistry } from '../core/ports/agents.ts';
import { type Clock, systemClock } from '../core/ports/clock.ts';
import { slackRequestWindowMs } from './request-window.ts';

/**
 * How long a request id is kept: the window past and future (issue #18). A request is admitted
 * while its timestamp is within the window either way of the clock, so one first seen dated the
 * whole window ahead stays admissible for twice the window; its id must be known that long.
 */
export const replayRetentionMs = 2 * slackRequestWindowMs;

/** In-memory request ids, for a bot without `nonces`: a replayed or retried request acts once. */
class Seen {
  private readonly seen = new Map<string, number>();
  constructor(private readonly clock: Clock) {}
  firstTime(key: string): boolean {
    const now = this.clock.now().getTime();
    for (const [k, at] of this.seen) if (now - at > replayRetentionMs) this.seen.delete(k);
    if (this.seen.has(key)) return false;
    this.seen.set(key, now);
    return true;
  }
}

/**
 * Registers the global middleware that drops retries and replays. Request ids (trigger_id,
 * event_id) are remembered in `nonces` (across restarts and containers) or, without it, in memory,
 * for `replayRetentionMs` of `clock` (default the system clock).
 */
export function registerReplayGuard(
  app: App,
  nonces?: Pick<AgentRegistry, 'useNonce'>,
  clock: Clock = systemClock,
): void {
  const seen = new Seen(clock);
  // The registry keeps a nonce for twice the window it is given (a request may be that much old
  // or new): `replayRetentionMs`.
  const firstTime = (key: string): Promise<boolean> | boolean =>
    nonces ? nonces.useNonce('slack', key, clock.now(), slackRequestWindowMs) : seen.firstTime(key);
  app.use(async (args) => {
    const body = args.body as { trigger_id?: string; event_id?: string };
    const ack = (args as unknown as { ack?: () => Promise<void> }).ack;
    const id = body.trigger_id ?? body.event_id;
    const duplicate = (args.context.retryNum ?? 0) > 0 || (id !== undefined && !(await firstTime(id)));
    if (duplicate) {
      if (ack) await ack();
      return;
    }
    await args.next();
  });
}
