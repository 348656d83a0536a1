import type { App } from '@slack/bolt';
import { actions, type ModalRef, shippedModal } from '../blocks.ts';
import type { BotContext } from '../bot-context.ts';
import { answerClick } from '../chat-listeners.ts';
import { explain } from '../explain.ts';
import { clicked } from './transfer-click.ts';

/**
 * Shipped back: whoever the service lets report it (the requester or an approver) gets the carrier
 * and tracking modal (its submission: bot/views/shipped-submission.ts); anyone else is told who may.
 */
export function registerShippedButton(app: App, ctx: BotContext): void {
  app.action(actions.shipped, async ({ ack, body, action, client }) => {
    await ack();
    const { id, b } = clicked(body, action);
    try {
      await ctx.service.authorize(id, 'shipped', b.user.id);
    } catch (error) {
      await answerClick(client, b.channel?.id, b.user.id, await explain(ctx, id, error));
      return;
    }
    const ref: ModalRef = {
      id,
      ...(b.channel ? { channel: b.channel.id } : {}),
      ...(b.message ? { ts: b.message.ts } : {}),
      ...(b.view?.type === 'home' ? { home: true } : {}),
    };
    await client.views.open({ trigger_id: b.trigger_id, view: shippedModal(ref) as never });
  });
}
