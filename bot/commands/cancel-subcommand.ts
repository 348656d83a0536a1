import { approvalMessage, esc, mention } from '../blocks.ts';
import { dmRequester } from '../dm-requester.ts';
import { messageOf } from '../explain.ts';
import type { Subcommand } from './subcommand.ts';

/**
 * `/odt cancel <id> [reason]`, by whoever the service lets cancel (the requester or an approver).
 * The approval request loses its buttons, and a requester who did not cancel is told who did and why.
 */
export const cancelSubcommand: Subcommand = async ({ user, args, reply, client }, ctx) => {
  const id = args[0];
  if (!id) {
    await reply('Which transfer? `/odt cancel <id>`');
    return;
  }
  // What the approval request shows now; the service decides who may cancel (a refusal: /odt).
  const current = await ctx.service.get(id);
  const reason = args.slice(1).join(' ') || 'cancelled in Slack';
  const t = await ctx.service.cancel(id, user, reason);
  await reply(`Transfer \`${t.id}\` is cancelled.`);
  // The approval request loses its buttons (when the bot knows where it is).
  const request = await ctx.messageRefs?.get(t.id);
  if (request?.threadTs && request.channel && current.phase === 'requested')
    await client.chat
      .update({ channel: request.channel, ts: request.threadTs, ...approvalMessage(t) })
      .catch((error: unknown) =>
        ctx.logger.warn(
          { transferId: t.id, reason: messageOf(error) },
          'could not update the approval request',
        ),
      );
  if (t.requester !== user)
    await dmRequester(
      ctx,
      client,
      t.requester,
      `Your transfer \`${t.id}\` was cancelled by ${mention(user)}: ${esc(reason)}`,
    );
};
