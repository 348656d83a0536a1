import type { App } from '@slack/bolt';
import { OdtError, PermissionError, type Transfer } from '../../core/index.ts';
import { callbacks, type ModalRef, plainText, shippingMessage } from '../blocks.ts';
import type { BotContext } from '../bot-context.ts';
import { publishHome } from '../chat-listeners.ts';
import { refusalText } from '../explain.ts';
import { field, type StateValues } from './view-field.ts';

/**
 * The shipped-back modal's submission: carrier and tracking number are required; the service
 * records the step (a refusal is shown on the tracking field) and the shipping message is updated.
 */
export function registerShippedSubmission(app: App, ctx: BotContext): void {
  app.view(callbacks.shipped, async ({ ack, body, view, client }) => {
    const ref = JSON.parse(view.private_metadata) as ModalRef;
    const values = view.state.values as StateValues;
    const shipping = { carrier: field(values, 'carrier'), tracking: field(values, 'tracking') };
    const missing: Record<string, string> = {};
    if (!shipping.carrier) missing.carrier = 'name the carrier';
    if (!shipping.tracking) missing.tracking = 'give the tracking number';
    if (Object.keys(missing).length > 0) {
      await ack({ response_action: 'errors', errors: missing });
      return;
    }
    let t: Transfer;
    try {
      t = await ctx.service.event(ref.id, 'shipped', body.user.id, shipping);
    } catch (error) {
      if (!(error instanceof OdtError)) throw error;
      // Field errors are plain text: no mention markup.
      const why = error instanceof PermissionError ? plainText(refusalText(error)) : error.message;
      await ack({ response_action: 'errors', errors: { tracking: why } });
      return;
    }
    await ack();
    if (ref.channel && ref.ts)
      await client.chat.update({ channel: ref.channel, ts: ref.ts, ...shippingMessage(t) });
    if (ref.home) await publishHome(client, ctx, body.user.id);
  });
}
