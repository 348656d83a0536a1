import type { App } from '@slack/bolt';
import { PermissionError } from '../../core/index.ts';
import { type Block, helpText, section } from '../blocks.ts';
import type { BotContext } from '../bot-context.ts';
import { problem } from '../explain.ts';
import { agentSubcommand } from './agent-subcommand.ts';
import { cancelSubcommand } from './cancel-subcommand.ts';
import { listSubcommand } from './list-subcommand.ts';
import { requestSubcommand } from './request-subcommand.ts';
import { statusSubcommand } from './status-subcommand.ts';
import type { Subcommand } from './subcommand.ts';

// A Map, not an object literal: `/odt constructor` must not find Object.prototype's.
const subcommands: ReadonlyMap<string, Subcommand> = new Map<string, Subcommand>([
  ['request', requestSubcommand],
  ['agent', agentSubcommand],
  ['status', statusSubcommand],
  ['list', listSubcommand],
  ['cancel', cancelSubcommand],
  ['help', ({ reply }) => reply(helpText)],
]);

/**
 * `/odt <subcommand> …`: dispatches to the subcommand's handler; an unknown one gets the help. A
 * service refusal (OdtError: who may, what is missing) is shown to the person (ephemerally); anything else goes
 * to app.error.
 */
export function registerOdtCommand(app: App, ctx: BotContext): void {
  app.command('/odt', async ({ command, ack, respond, client }) => {
    const [sub = 'help', ...args] = command.text.trim().split(/\s+/).filter(Boolean);
    // One ack per request (a second one throws in Bolt's HTTP receiver and is dropped unseen in
    // Socket Mode): what is said after it goes to the command's response_url.
    let acked = false;
    const reply = async (text: string, blocks: Block[] = [section(text)]) => {
      const message = { response_type: 'ephemeral' as const, text, blocks };
      if (acked) {
        await respond(message);
        return;
      }
      acked = true;
      await ack(message);
    };
    const acknowledge = async () => {
      acked = true;
      await ack();
    };
    try {
      const run = subcommands.get(sub.toLowerCase());
      if (!run) {
        await reply(`I do not know \`${sub}\`.\n\n${helpText}`);
        return;
      }
      await run(
        { user: command.user_id, args, triggerId: command.trigger_id, client, reply, acknowledge },
        ctx,
      );
    } catch (error) {
      const mark = error instanceof PermissionError ? ':no_entry:' : ':warning:';
      await reply(`${mark} ${problem(args[0] ?? '', error)}`);
    }
  });
}
