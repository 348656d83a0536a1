import type { Transfer } from '../core/index.ts';
import { mention } from './blocks.ts';
import type { BotContext } from './bot-context.ts';

/** Whether `user` may report a shipping step of `t`: approvers always, the requester for `party` steps. */
export const mayReport = async (
  ctx: Pick<BotContext, 'approvers'>,
  t: Transfer,
  user: string,
  who: 'approver' | 'party',
): Promise<boolean> => (who === 'party' && t.requester === user) || (await ctx.approvers.has(user));

/** What someone who may not report "shipped back" of `t` is told. */
export const shippedRefusal = (t: Transfer): string =>
  `Only ${mention(t.requester)} (who asked for \`${t.id}\`) or an approver may report that the NAS was shipped back; nothing changed.`;
