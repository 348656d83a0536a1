import type { App } from '@slack/bolt';
import type { ShippingEvent, Transfer } from '../../core/index.ts';
import { actions, shippingMessage } from '../blocks.ts';
import type { BotContext } from '../bot-context.ts';
import { answerClick } from '../chat-listeners.ts';
import { dmRequester } from '../dm-requester.ts';
import { explain } from '../explain.ts';
import { clicked } from './transfer-click.ts';

/** The shipping steps with a plain button. */
const steps: readonly [string, ShippingEvent][] = [
  [actions.applianceSent, 'appliance-sent'],
  [actions.applianceConnected, 'appliance-connected'],
  [actions.received, 'received'],
];

/**
 * NAS sent, NAS connected, NAS received: the step is reported to the service (which decides who
 * may) and the shipping message updated; when the next step is the customer's, they are told what
 * it is.
 */
export function registerShippingStepButtons(app: App, ctx: BotContext): void {
  for (const [actionId, event] of steps) {
    app.action(actionId, async ({ ack, body, action, client }) => {
      await ack();
      const { id, b } = clicked(body, action);
      const channel = b.channel?.id ?? ctx.approversChannel;
      let t: Transfer;
      try {
        t = await ctx.service.event(id, event, b.user.id);
      } catch (error) {
        await answerClick(client, b.channel?.id, b.user.id, await explain(ctx, id, error));
        return;
      }
      if (b.message) await client.chat.update({ channel, ts: b.message.ts, ...shippingMessage(t) });
      // The customer's next step is theirs: say what it is and where the button is.
      if (event === 'appliance-sent')
        await dmRequester(
          ctx,
          client,
          t.requester,
          `The NAS for your transfer \`${t.id}\` is on its way. When it is connected at your site, press *NAS connected* on this app's Home tab.`,
        );
    });
  }
}
