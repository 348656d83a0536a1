import type { BotContext } from './bot-context.ts';

/**
 * Where the approval request of transfer `id` is: the clicked message, else (a click on the Home
 * tab) the one recorded when the request was posted, so that the channel never shows stale buttons.
 */
export async function approvalRequest(
  ctx: Pick<BotContext, 'approversChannel' | 'messageRefs'>,
  id: string,
  b: { channel?: { id: string }; message?: { ts: string } },
): Promise<{ channel: string; ts?: string }> {
  if (b.message) return { channel: b.channel?.id ?? ctx.approversChannel, ts: b.message.ts };
  const ref = await ctx.messageRefs?.get(id);
  return { channel: ref?.channel ?? ctx.approversChannel, ...(ref?.threadTs ? { ts: ref.threadTs } : {}) };
}
