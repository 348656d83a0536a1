import type { App } from '@slack/bolt';
import type { Transfer } from '../../core/index.ts';
import { approvalRequest } from '../approval-request.ts';
import { actions, approvalMessage, mention, shippingMessage } from '../blocks.ts';
import type { BotContext } from '../bot-context.ts';
import { answerClick } from '../chat-listeners.ts';
import { dmRequester } from '../dm-requester.ts';
import { explain } from '../explain.ts';
import { clicked } from './transfer-click.ts';

/**
 * Approve on an approval request: the service decides (approvers, four eyes); the request loses
 * its buttons, the shipping steps are posted in its thread, and the requester hears what is next.
 */
export function registerApproveButton(app: App, ctx: BotContext): void {
  app.action(actions.approve, async ({ ack, body, action, client }) => {
    await ack();
    const { id, b } = clicked(body, action);
    let t: Transfer;
    try {
      t = await ctx.service.approve(id, b.user.id);
    } catch (error) {
      await answerClick(client, b.channel?.id, b.user.id, await explain(ctx, id, error));
      return;
    }
    // Approved: a Slack error from here on goes to app.error, never to the approver as a refusal.
    const request = await approvalRequest(ctx, id, b);
    if (request.ts)
      await client.chat.update({ channel: request.channel, ts: request.ts, ...approvalMessage(t) });
    await client.chat.postMessage({
      channel: request.channel,
      ...(request.ts ? { thread_ts: request.ts } : {}),
      ...shippingMessage(t),
    });
    await dmRequester(
      ctx,
      client,
      t.requester,
      `Your transfer \`${t.id}\` was approved by ${mention(b.user.id)}. Next, the NAS is sent to you; when it is connected at your site, press *NAS connected* on this app's Home tab.`,
    );
  });
}
