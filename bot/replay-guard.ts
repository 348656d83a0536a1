/**
 * Slack retries (X-Slack-Retry-Num) and replays of a request already handled are acknowledged
 * and dropped: the first delivery acted.
 */
import type { App } from '@slack/bolt';
import type { AgentRegistry } from '../core/ports/agents.ts';

/** Slack signs a request for five minutes (Bolt refuses older ones); an id is kept that long. */
const replayWindowMs = 5 * 60_000;

/** In-memory request ids, for a bot without `nonces`: a replayed or retried request acts once. */
class Seen {
  private readonly seen = new Map<string, number>();
  constructor(private readonly ttlMs = 2 * replayWindowMs) {}
  firstTime(key: string): boolean {
    const now = Date.now();
    for (const [k, at] of this.seen) if (now - at > this.ttlMs) this.seen.delete(k);
    if (this.seen.has(key)) return false;
    this.seen.set(key, now);
    return true;
  }
}

/**
 * Registers the global middleware that drops retries and replays. Request ids (trigger_id,
 * event_id) are remembered in `nonces` (across restarts and containers) or, without it, in memory.
 */
export function registerReplayGuard(app: App, nonces?: Pick<AgentRegistry, 'useNonce'>): void {
  const seen = new Seen();
  const firstTime = (key: string): Promise<boolean> | boolean =>
    nonces ? nonces.useNonce('slack', key, new Date(), replayWindowMs) : seen.firstTime(key);
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
