import { esc, listBlocks, section } from '../blocks.ts';
import type { Subcommand } from './subcommand.ts';

/**
 * `/odt list`: approvers see every transfer; anyone else their own (others' name their VMs and
 * sites). An approvers group that cannot be read counts as "not an approver" here: the person
 * still sees their own transfers, and the reason is said with them.
 */
export const listSubcommand: Subcommand = async ({ user, reply }, ctx) => {
  let unreadable: string | undefined;
  const isApprover = await ctx.approvers.has(user).catch((error: unknown) => {
    unreadable = (error as Error).message;
    return false;
  });
  const all = await ctx.service.list();
  if (isApprover) {
    await reply(`Transfers: ${all.length}`, listBlocks(all, 'Transfers'));
    return;
  }
  const mine = all.filter((t) => t.requester === user);
  const blocks = listBlocks(mine, 'Your transfers');
  await reply(
    `Your transfers: ${mine.length}`,
    unreadable ? [...blocks, section(`:warning: Only your own transfers: ${esc(unreadable)}`)] : blocks,
  );
};
