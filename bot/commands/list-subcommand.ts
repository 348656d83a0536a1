import { esc, listBlocks, section } from '../blocks.ts';
import type { Subcommand } from './subcommand.ts';

/**
 * `/odt list`: what the service lets the person see — approvers every transfer, anyone else their
 * own (others' name their VMs and sites). When the approvers group cannot be read, the person sees
 * their own transfers, and the reason is said with them.
 */
export const listSubcommand: Subcommand = async ({ user, reply }, ctx) => {
  const { transfers, all, approversUnreadable } = await ctx.service.listFor(user);
  if (all) {
    await reply(`Transfers: ${transfers.length}`, listBlocks(transfers, 'Transfers'));
    return;
  }
  const blocks = listBlocks(transfers, 'Your transfers');
  await reply(
    `Your transfers: ${transfers.length}`,
    approversUnreadable
      ? [...blocks, section(`:warning: Only your own transfers: ${esc(approversUnreadable)}`)]
      : blocks,
  );
};
