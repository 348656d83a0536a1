import type { App } from '@slack/bolt';
import type { Transfer } from '../../core/index.ts';
import { approvalMessage, callbacks, esc, type ModalRef, mention, plainText } from '../blocks.ts';
import type { BotContext } from '../bot-context.ts';
import { publishHome } from '../chat-listeners.ts';
import { dmRequester } from '../dm-requester.ts';
import { explain } from '../explain.ts';
import { field, type StateValues } from './view-field.ts';

/**
 * The reject modal's submission: the service rejects with the reason (a refusal is shown on the
 * field); the approval request loses its buttons and the requester is told why.
 */
export function registerRejectSubmission(app: App, ctx: BotContext): void {
  app.view(callbacks.reject, async ({ ack, body, view, client }) => {
    const ref = JSON.parse(view.private_metadata) as ModalRef;
    const reason = field(view.state.values as StateValues, 'reason');
    let t: Transfer;
    try {
      t = await ctx.service.reject(ref.id, body.user.id, reason);
    } catch (error) {
      // A field's error is plain text in Slack: no mention markup there.
      await ack({
        response_action: 'errors',
        errors: { reason: plainText(await explain(ctx, ref.id, error)) },
      });
      return;
    }
    await ack();
    if (ref.channel && ref.ts)
      await client.chat.update({ channel: ref.channel, ts: ref.ts, ...approvalMessage(t) });
    // Opened from the Home tab: the tab refreshed on the click, before the decision; again now.
    if (ref.home) await publishHome(client, ctx, body.user.id);
    await dmRequester(
      ctx,
      client,
      t.requester,
      `Your transfer \`${t.id}\` was rejected by ${mention(body.user.id)}: ${esc(t.rejectReason ?? reason)}`,
    );
  });
}
