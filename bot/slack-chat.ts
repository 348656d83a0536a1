/**
 * The chat port on Slack: one progress message per transfer in the approvers' channel (in the
 * transfer's thread when the approval request's ts is known), updated in place with chat.update no
 * more often than every `minIntervalMs` per transfer, and the final report with its "Retry failed
 * items" button. Where the messages are, and when each was last updated, lives in `MessageRefs`, so
 * that after a restart the same message is updated and the throttle still holds.
 *
 * The service never waits for Slack: calls queue the work (serialised per transfer) and return; a
 * Slack error is logged, never thrown into the workflow.
 */
import type { webApi } from '@slack/bolt';
import {
  type ChatNotifier,
  type Clock,
  systemClock,
  type TaskProgress,
  type Transfer,
  type TransferPhase,
  transferTransitions,
} from '../core/index.ts';
import { isSlackUser, mention, section } from './blocks.ts';
import type { MessageRefs, TransferMessageRef } from './message-refs.ts';
import { type ItemProgress, progressMessage, reportMessage, reportRound } from './progress-blocks.ts';

/** The Web API methods the notifier calls. */
export type ChatClient = Pick<webApi.WebClient, 'chat'>;

/** Timers, passed in so that tests drive the throttle with a fake clock. */
export interface Timers {
  set(callback: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export const systemTimers: Timers = {
  set: (callback, ms) => setTimeout(callback, ms),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface SlackChatOptions {
  readonly client: ChatClient;
  /** Channel id of the approvers; progress and reports go to the transfer's thread there. */
  readonly approversChannel: string;
  readonly refs: MessageRefs;
  /** Default: the system clock. */
  readonly clock?: Clock;
  /** Default: setTimeout / clearTimeout. */
  readonly timers?: Timers;
  /** Minimum time between two updates of one progress message. Default 5,000 ms. */
  readonly minIntervalMs?: number;
  /** Where Slack errors go (a pino logger's `warn` fits). Default: one JSON line on stderr. */
  readonly log?: (meta: Record<string, unknown>, message: string) => void;
}

/**
 * Phases that end this notifier's work on a transfer: no progress message follows (a cancelled
 * transfer only goes on to be wiped). Not core's end phases: a completed or failed transfer may
 * still be wiped or retried, and its report stays in use.
 */
const final: ReadonlySet<TransferPhase> = new Set<TransferPhase>([
  'wiped',
  'cancelled',
  'rejected',
  'expired',
]);

/**
 * Phases in which a transfer has a progress message: the work has started (exporting and every
 * phase core's lifecycle can reach from it), apart from the final ones.
 */
const shown: ReadonlySet<TransferPhase> = (() => {
  const reached = new Set<TransferPhase>(['exporting']);
  for (const phase of reached) for (const next of transferTransitions[phase]) reached.add(next);
  return new Set([...reached].filter((phase) => !final.has(phase)));
})();

interface Entry {
  readonly id: string;
  transfer: Transfer;
  readonly progress: Map<string, ItemProgress>;
  ref?: TransferMessageRef;
  /** What the message shows now (its blocks as JSON), to skip updates that change nothing. */
  shown?: string;
  timer?: unknown;
  chain: Promise<void>;
  queued: number;
}

export class SlackChat implements ChatNotifier {
  private readonly entries = new Map<string, Entry>();
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly minIntervalMs: number;
  private readonly log: NonNullable<SlackChatOptions['log']>;

  constructor(private readonly options: SlackChatOptions) {
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? systemTimers;
    this.minIntervalMs = options.minIntervalMs ?? 5000;
    this.log =
      options.log ??
      ((meta, message) =>
        process.stderr.write(`${JSON.stringify({ level: 'warn', ...meta, msg: message })}\n`));
  }

  async transferChanged(transfer: Transfer): Promise<void> {
    this.enqueue(this.entry(transfer), (e) => this.sendProgress(e, false));
  }

  async progress(transfer: Transfer, progress: readonly TaskProgress[]): Promise<void> {
    const e = this.entry(transfer);
    for (const p of progress) e.progress.set(p.itemId, { progress: p, phase: e.transfer.phase });
    this.enqueue(e, (x) => this.sendProgress(x, false));
  }

  async report(transfer: Transfer): Promise<void> {
    const e = this.entry(transfer);
    this.enqueue(e, (x) => this.sendProgress(x, false));
    this.enqueue(e, (x) => this.postReport(x, transfer));
  }

  /** Resolves when no Slack call is queued or running (pending throttled updates stay pending). */
  async idle(): Promise<void> {
    for (;;) {
      const busy = [...this.entries.values()].filter((e) => e.queued > 0);
      if (busy.length === 0) return;
      await Promise.all(busy.map((e) => e.chain));
    }
  }

  /** Whether an update of this transfer's message waits for its throttle interval. */
  pending(transferId: string): boolean {
    return this.entries.get(transferId)?.timer !== undefined;
  }

  /** Sends every pending update now (shutdown), then waits for the queue to drain. */
  async flush(): Promise<void> {
    for (const e of this.entries.values()) {
      if (e.timer === undefined) continue;
      this.timers.clear(e.timer);
      e.timer = undefined;
      this.enqueue(e, (x) => this.sendProgress(x, true));
    }
    await this.idle();
  }

  private entry(transfer: Transfer): Entry {
    let e = this.entries.get(transfer.id);
    if (!e) {
      e = { id: transfer.id, transfer, progress: new Map(), chain: Promise.resolve(), queued: 0 };
      this.entries.set(transfer.id, e);
    }
    // Calls may arrive out of order (a heartbeat's read racing a transition): keep the newest.
    if (transfer.version >= e.transfer.version) e.transfer = transfer;
    return e;
  }

  private enqueue(e: Entry, work: (e: Entry) => Promise<void>): void {
    e.queued++;
    e.chain = e.chain
      .then(() => work(e))
      .catch((error: unknown) =>
        this.log(
          { transferId: e.id, err: (error as { data?: { error?: string } }).data?.error ?? String(error) },
          'slack chat: a Slack call failed; the next change tries again',
        ),
      )
      .finally(() => {
        e.queued--;
        const done = final.has(e.transfer.phase) || e.ref?.progressTs === undefined;
        if (e.queued === 0 && e.timer === undefined && done && this.entries.get(e.id) === e)
          this.entries.delete(e.id);
      });
  }

  private async loadRef(e: Entry): Promise<TransferMessageRef | undefined> {
    if (e.ref?.progressTs) return e.ref;
    e.ref = await this.options.refs.get(e.id);
    return e.ref;
  }

  private async sendProgress(e: Entry, force: boolean): Promise<void> {
    const ref = await this.loadRef(e);
    const message = progressMessage(e.transfer, e.progress);
    const key = JSON.stringify(message.blocks);
    const now = this.clock.now().getTime();
    if (!ref?.progressTs) {
      if (!shown.has(e.transfer.phase) && e.progress.size === 0) return;
      const channel = ref?.channel ?? this.options.approversChannel;
      const res = await this.options.client.chat.postMessage({
        channel,
        ...(ref?.threadTs ? { thread_ts: ref.threadTs } : {}),
        ...message,
      });
      e.ref = await this.options.refs.update(e.id, {
        channel: res.channel ?? channel,
        ...(res.ts ? { progressTs: res.ts } : {}),
        lastUpdateAt: now,
      });
      e.shown = key;
      return;
    }
    if (key === e.shown) return;
    const wait = (ref.lastUpdateAt ?? 0) + this.minIntervalMs - now;
    if (wait > 0 && !force) {
      // The newest state is rendered when the timer fires: a pending update is never dropped.
      e.timer ??= this.timers.set(() => {
        e.timer = undefined;
        this.enqueue(e, (x) => this.sendProgress(x, false));
      }, wait);
      return;
    }
    await this.options.client.chat.update({
      channel: ref.channel ?? this.options.approversChannel,
      ts: ref.progressTs,
      ...message,
    });
    e.ref = await this.options.refs.update(e.id, { lastUpdateAt: now });
    e.shown = key;
  }

  private async postReport(e: Entry, transfer: Transfer): Promise<void> {
    const ref = await this.options.refs.get(e.id);
    const key = String(reportRound(transfer));
    if (ref?.reportKey === key) return; // this round's report is out already (a re-run step)
    const channel = ref?.channel ?? this.options.approversChannel;
    const report = reportMessage(transfer);
    // In the thread, and broadcast to the channel: the report is what approvers look for.
    const res = await this.options.client.chat.postMessage(
      ref?.threadTs
        ? { channel, thread_ts: ref.threadTs, reply_broadcast: true, ...report }
        : { channel, ...report },
    );
    e.ref = await this.options.refs.update(e.id, {
      channel: res.channel ?? channel,
      ...(res.ts ? { reportTs: res.ts } : {}),
      reportKey: key,
    });
    if (!isSlackUser(transfer.requester)) return;
    const lead = `${mention(transfer.requester)}, your transfer \`${transfer.id}\` has its report: *${transfer.phase}*.`;
    await this.options.client.chat.postMessage({
      channel: transfer.requester,
      text: `Your transfer ${transfer.id} has its report: ${transfer.phase}`,
      // The report has room for one more block (it keeps one free for this).
      blocks: [section(lead), ...report.blocks],
    });
  }
}

/** The Slack chat notifier for `odt serve` (Socket Mode) and the Lambda bot. */
export function createSlackChat(options: SlackChatOptions): SlackChat {
  return new SlackChat(options);
}
