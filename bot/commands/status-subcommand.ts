import { NotAllowedError, type Transfer } from '../../core/index.ts';
import { listBlocks, statusBlocks } from '../blocks.ts';
import type { Subcommand } from './subcommand.ts';

/**
 * `/odt status [id]`: one transfer, when the service lets the person see it (its requester and the
 * approvers: a transfer names a customer's VMs and sites), or the person's own.
 */
export const statusSubcommand: Subcommand = async ({ user, args, reply }, ctx) => {
  const id = args[0];
  if (!id) {
    const mine = (await ctx.service.list()).filter((t) => t.requester === user);
    await reply(`Your transfers: ${mine.length}`, listBlocks(mine, 'Your transfers'));
    return;
  }
  let t: Transfer;
  try {
    t = await ctx.service.authorize(id, 'view', user);
  } catch (error) {
    if (!(error instanceof NotAllowedError)) throw error;
    // Not who asked for it: a stranger learns neither that nor anything else of it.
    await reply(
      `:no_entry: Transfer \`${error.transferId}\` is not yours; only its requester and the approvers see it. \`/odt status\` lists your transfers.`,
    );
    return;
  }
  await reply(`Transfer ${t.id}: ${t.phase}`, statusBlocks(t));
};
