/**
 * The bot's side of the live messages: the "Retry failed items" button of a report, the App Home
 * tab, and remembering each transfer's thread (the approval request) so that the Slack chat
 * notifier posts progress and the report there.
 */
import type { App } from '@slack/bolt';
import { OdtError, PermissionError, type Transfer, type TransferService } from '../core/index.ts';
import { type Block, esc, mention, section, utcMinute } from './blocks.ts';
import { refusalText } from './explain.ts';
import { homeView } from './home.ts';
import type { MessageRefs } from './message-refs.ts';
import { canRetry, parseRetryValue, reportMessage, retriedReport, retryAction } from './progress-blocks.ts';

type WebClient = App['client'];

export interface ChatListenerOptions {
  /** Decides who may retry (`authorize`, `retry`) and who sees which transfers (`listFor`). */
  readonly service: Pick<TransferService, 'authorize' | 'listFor' | 'retry'>;
  readonly approversChannel: string;
  /** Where the transfer threads are remembered for the notifier; without it, nothing is recorded. */
  readonly refs?: MessageRefs;
}

interface ActionBody {
  type?: string;
  user?: { id: string };
  channel?: { id: string };
  message?: { ts: string; thread_ts?: string; blocks?: Block[] };
  view?: { type?: string };
  actions?: { action_id?: string; value?: string }[];
}

const retryNote = /^retry \d+ failed item/;

/** Runs one task per key at a time: a double click is decided after the first click's write. */
class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();
  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const before = this.tails.get(key) ?? Promise.resolve();
    const result = before.then(work, work);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    try {
      return await result;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

/**
 * An ephemeral note to `user` in the channel of their click; a DM when the click came from the Home
 * tab (no channel: the person may not be in the approvers' channel, where an ephemeral would fail).
 */
export const answerClick = (client: WebClient, channel: string | undefined, user: string, text: string) =>
  channel
    ? client.chat.postEphemeral({ channel, user, text, blocks: [section(text)] })
    : client.chat.postMessage({ channel: user, text, blocks: [section(text)] });

export async function publishHome(
  client: WebClient,
  options: Pick<ChatListenerOptions, 'service'>,
  user: string,
): Promise<void> {
  // Approvers see every transfer, with the queue; anyone else their own. An unreadable approvers
  // group shows no queue (its own refusal says why on the next click).
  const { transfers, all } = await options.service.listFor(user);
  await client.views.publish({
    user_id: user,
    view: homeView(user, transfers, all) as never,
  });
}

export function registerChatListeners(app: App, options: ChatListenerOptions): void {
  const { service, approversChannel, refs } = options;
  const lock = new KeyedLock();

  app.use(async ({ body, next, client }) => {
    const b = body as ActionBody;
    const action = b.type === 'block_actions' ? b.actions?.[0] : undefined;
    if (
      refs &&
      action?.action_id?.startsWith('odt_') &&
      action.value &&
      b.channel?.id === approversChannel &&
      b.message
    ) {
      // The approval request is the thread's root and the shipping steps are replies in it; a
      // message outside any thread (the shipping steps after an approval from the Home tab) starts one.
      const root = b.message.thread_ts ?? b.message.ts;
      const id = action.value.split(':')[0]!;
      if (root && /^[a-z0-9][a-z0-9-]{2,62}$/.test(id)) {
        const known = await refs.get(id);
        if (!known?.threadTs) await refs.update(id, { channel: approversChannel, threadTs: root });
      }
    }
    await next();
    // A click on the Home tab changes what it should show.
    if (action && b.view?.type === 'home' && b.user) await publishHome(client, options, b.user.id);
  });

  app.event('app_home_opened', async ({ event, client }) => {
    if (event.tab !== 'home') return;
    await publishHome(client, options, event.user);
  });

  app.action(retryAction, async ({ ack, body, action, client }) => {
    await ack();
    const b = body as ActionBody;
    const user = b.user!.id;
    const parsed = parseRetryValue((action as { value?: string }).value ?? '');
    if (!parsed) {
      await answerClick(
        client,
        b.channel?.id,
        user,
        'This button is not valid; use `/odt status <id>` to see the transfer.',
      );
      return;
    }
    const { id, round } = parsed;
    const text = await lock.run(id, async (): Promise<string> => {
      // The service decides who may retry; the round and what is left to retry are this button's.
      let t: Transfer;
      try {
        t = await service.authorize(id, 'retry', user);
      } catch (error) {
        if (error instanceof PermissionError) return refusalText(error);
        if (!(error instanceof OdtError)) throw error;
        if (error.code === 'NOT_FOUND')
          return `Transfer \`${id}\` does not exist any more; \`/odt list\` lists transfers.`;
        return esc(error.message);
      }
      const earlier = t.history.slice(round).find((h) => retryNote.test(h.note ?? ''));
      if (earlier)
        return `The retry of the failed items of \`${t.id}\` was already requested by ${mention(earlier.actor)} at ${utcMinute(earlier.at)} UTC; nothing changed.`;
      const failed = t.items.filter((i) => i.result.state === 'failed').length;
      if (!canRetry(t))
        return `Transfer \`${t.id}\` is now *${t.phase}* with ${failed} failed item(s); there is nothing to retry.`;
      let after: Transfer;
      try {
        after = await service.retry(id, user);
      } catch (error) {
        if (!(error instanceof OdtError)) throw error;
        return error.message;
      }
      if (b.channel && b.message) {
        const shown = b.message.blocks ?? reportMessage(t).blocks;
        await client.chat.update({
          channel: b.channel.id,
          ts: b.message.ts,
          text: `Retry of the failed items of ${t.id} requested`,
          blocks: retriedReport(after, shown, user),
        });
      }
      return `Retrying ${failed} failed item(s) of \`${t.id}\`; the progress message shows how it goes.`;
    });
    await answerClick(client, b.channel?.id, user, text);
  });
}
