import type { App } from '@slack/bolt';
import type { Transfer } from '../../core/index.ts';
import { approvalRequest } from '../approval-request.ts';
import { actions, type ModalRef, mention, rejectModal } from '../blocks.ts';
import type { BotContext } from '../bot-context.ts';
import { answerClick } from '../chat-listeners.ts';
import { decided, explain } from '../explain.ts';
import { clicked } from './transfer-click.ts';

/**
 * Reject on an approval request: an approver of a transfer still waiting for a decision gets the
 * reason modal (its submission: bot/views/reject-submission.ts); anyone else is told why not.
 */
export function registerRejectButton(app: App, ctx: BotContext): void {
  app.action(actions.reject, async ({ ack, body, action, client }) => {
    await ack();
    const { id, b } = clicked(body, action);
    const channel = b.channel?.id;
    let isApprover: boolean;
    let t: Transfer;
    try {
      isApprover = await ctx.approvers.has(b.user.id);
      t = await ctx.service.get(id);
    } catch (error) {
      await answerClick(client, channel, b.user.id, await explain(ctx, id, error));
      return;
    }
    if (!isApprover) {
      await answerClick(
        client,
        channel,
        b.user.id,
        `${mention(b.user.id)} is not an approver; only approvers may reject.`,
      );
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
