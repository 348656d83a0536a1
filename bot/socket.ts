/**
 * The bot in Socket Mode (for `odt serve`): used when SLACK_BOT_TOKEN and SLACK_APP_TOKEN (xapp-)
 * are set; no public URL needed, one long-running process.
 */
import type { App } from '@slack/bolt';
import { type BotService, createBotApp } from './app.ts';
import { type BotEnv, botEnv } from './config.ts';

export function socketModeConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.SLACK_BOT_TOKEN && env.SLACK_APP_TOKEN);
}

export async function startSocketBot(service: BotService, env: BotEnv = botEnv()): Promise<App | undefined> {
  if (!env.appToken) return undefined;
  const app = createBotApp({ service, ...env, socketMode: true, appToken: env.appToken });
  await app.start();
  return app;
}
