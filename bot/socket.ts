/**
 * The bot in Socket Mode (for `odt serve`): used when SLACK_BOT_TOKEN and SLACK_APP_TOKEN (xapp-)
 * are set; no public URL needed, one long-running process.
 */
import { type App, SocketModeReceiver } from '@slack/bolt';
import { type BotOptions, createBotApp } from './app.ts';
import type { BotService } from './bot-context.ts';
import { type BotEnv, botEnv } from './config.ts';

/** Options of the bot other than the service, the environment and the receiver. */
export type SocketBotExtras = Omit<BotOptions, 'service' | 'receiver' | keyof BotEnv>;

/**
 * Connects to Slack over Socket Mode (`apps.connections.open`, then the WebSocket) and resolves
 * once connected. `env.apiUrl` (SLACK_API_URL) points both the Web API client and the connection
 * call elsewhere than Slack: tests, or an egress proxy.
 */
export async function startSocketBot(
  service: BotService,
  env: BotEnv = botEnv(),
  extras: SocketBotExtras = {},
): Promise<App> {
  if (!env.appToken) {
    throw new Error(
      'SLACK_APP_TOKEN is not set: Socket Mode needs an app-level token (xapp-…) with connections:write.',
    );
  }
  const clientOptions = {
    ...extras.clientOptions,
    ...(env.apiUrl ? { slackApiUrl: env.apiUrl } : {}),
  };
  const receiver = new SocketModeReceiver({
    appToken: env.appToken,
    installerOptions: { clientOptions },
    ...(extras.logLevel ? { logLevel: extras.logLevel } : {}),
    ...(extras.logger ? { logger: extras.logger } : {}),
  });
  const app = createBotApp({ ...extras, ...env, service, receiver, clientOptions });
  await app.start();
  return app;
}
