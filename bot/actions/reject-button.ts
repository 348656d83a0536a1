import type { App } from '@slack/bolt';
import type { Transfer } from '../../core/index.ts';
import { approvalRequest } from '../approval-request.ts';
import { actions, type ModalRef, rejectModal } from '../blocks.ts';
import type { BotContext } from '../bot-context.ts';
import { answerClick } from '../chat-listeners.ts';
import { decided, explain } from '../explain.ts';
import { clicked } from './transfer-click.ts';

/**
 * Reject on an approval request: someone the service lets reject (an approver, not of their own
 * request) gets the reason modal while the transfer still waits for a decision (its submission:
 * bot/views/reject-submission.ts); anyone else is told why not.
 */
export function registerRejectButton(app: App, ctx: BotContext): void {
  app.action(actions.reject, async ({ ack, body, action, client }) => {
    await ack();
    const { id, b } = clicked(body, action);
    const channel = b.channel?.id;
    let t: Transfer;
    try {
      t = await ctx.service.authorize(id, 'reject', b.user.id);
    } catch (error) {
      await answerClick(client, channel, b.user.id, await explain(ctx, id, error));
      return;
    }
    if (t.phase !== 'requested') {
      const why =
        decided(t) ??
        `Transfer \`${t.id}\` is ${t.phase} and no longer waits for a decision; nothing changed.`;
      await answerClick(client, channel, b.user.id, why);
      return;
    }
    const request = await approvalRequest(ctx, id, b);
    const ref: ModalRef = {
      id,
      channel: request.channel,
      ...(request.ts ? { ts: request.ts } : {}),
      ...(b.view?.type === 'home' ? { home: true } : {}),
    };
    await client.views.open({ trigger_id: b.trigger_id, view: rejectModal(ref) as never });
  });
}
