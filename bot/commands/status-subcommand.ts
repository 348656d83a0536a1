import { listBlocks, statusBlocks } from '../blocks.ts';
import type { Subcommand } from './subcommand.ts';

/** `/odt status [id]`: one transfer (its requester's or an approver's), or the person's own. */
export const statusSubcommand: Subcommand = async ({ user, args, reply }, ctx) => {
  const id = args[0];
  if (!id) {
    const mine = (await ctx.service.list()).filter((t) => t.requester === user);
    await reply(`Your transfers: ${mine.length}`, listBlocks(mine, 'Your transfers'));
    return;
  }
  const t = await ctx.service.get(id);
  // A transfer names a customer's VMs and sites: its requester and the approvers see it.
  if (t.requester !== user && !(await ctx.approvers.has(user))) {
    await reply(
      `:no_entry: Transfer \`${t.id}\` is not yours; only its requester and the approvers see it. \`/odt status\` lists your transfers.`,
    );
    return;
  }
  await reply(`Transfer ${t.id}: ${t.phase}`, statusBlocks(t));
};
