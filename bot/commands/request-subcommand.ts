import { openRequestModal } from '../request-modal.ts';
import type { Subcommand } from './subcommand.ts';

/** `/odt request`: opens the request modal (bot/request-modal.ts). */
export const requestSubcommand: Subcommand = async ({ acknowledge, client, triggerId }, ctx) => {
  await acknowledge();
  await openRequestModal(client, triggerId, ctx.requestModal);
};
