import type { App } from '@slack/bolt';
import { isSlackUser, section } from './blocks.ts';
import { messageOf } from './explain.ts';

const somethingWentWrong =
  ':warning: Something went wrong on our side, so your last `/odt` command or click may not have taken effect. Check with `/odt status`, try again in a minute, and tell an ODT administrator if it keeps failing.';

/**
 * The one place errors end up: logged (the error, never the payload), and the person whose
 * command or click failed is told, instead of silence or Slack's generic failure alone. Rethrown
 * so that the receiver answers as it would without this handler.
 */
export function registerErrorHandler(app: App): void {
  app.error(async ({ error, logger, body }: { error: Error; logger: App['logger']; body: unknown }) => {
    // The error with its stack, never the payload (STYLE.md 7).
    logger.error({ err: error }, 'a Slack listener failed');
    const b = body as { user?: { id?: string }; user_id?: string } | undefined;
    const user = b?.user?.id ?? b?.user_id;
    if (user && isSlackUser(user)) {
      await app.client.chat
        .postMessage({ channel: user, text: somethingWentWrong, blocks: [section(somethingWentWrong)] })
        .catch((e: unknown) =>
          logger.warn({ user, reason: messageOf(e) }, 'could not tell the user of the failure'),
        );
    }
    throw error;
  });
}
