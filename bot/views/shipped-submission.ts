import type { App } from '@slack/bolt';
import type { Transfer } from '../../core/index.ts';
import { callbacks, type ModalRef, shippingMessage } from '../blocks.ts';
import type { BotContext } from '../bot-context.ts';
import { publishHome } from '../chat-listeners.ts';
import { coded } from '../explain.ts';
import { mayReport } from '../may-report.ts';
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
      const current = await ctx.service.get(ref.id);
      if (!(await mayReport(ctx, current, body.user.id, 'party'))) {
        // Field errors are plain text: no mention markup.
        await ack({
          response_action: 'errors',
          errors: { tracking: 'Only the requester or an approver may report this; nothing changed.' },
        });
        return;
      }
      t = await ctx.service.event(ref.id, 'shipped', body.user.id, shipping);
    } catch (error) {
      const e = coded(error);
      if (e.code === undefined) throw error;
      await ack({ response_action: 'errors', errors: { tracking: e.message } });
      return;
    }
    await ack();
    if (ref.channel && ref.ts)
      await client.chat.update({ channel: ref.channel, ts: ref.ts, ...shippingMessage(t) });
    if (ref.home) await publishHome(client, ctx, body.user.id);
  });
}
