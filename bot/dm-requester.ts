import { isSlackUser, section } from './blocks.ts';
import type { BotContext, WebClient } from './bot-context.ts';
import { messageOf } from './explain.ts';

/**
 * A DM to a transfer's requester. A requester that is no Slack user (a transfer asked for with
 * the CLI) gets none; a failed DM is logged, never reported to the clicker as if their step failed.
 */
export async function dmRequester(
  ctx: Pick<BotContext, 'logger'>,
  client: WebClient,
  user: string,
  text: string,
): Promise<void> {
  if (!isSlackUser(user)) return;
  await client.chat.postMessage({ channel: user, text, blocks: [section(text)] }).catch((error: unknown) => {
    ctx.logger.warn({ user, reason: messageOf(error) }, 'could not send the requester a DM');
  });
}
