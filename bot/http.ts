/** The bot over plain HTTP (Bolt's HTTPReceiver): Slack posts commands and interactions to /slack/events. */
import { HTTPReceiver } from '@slack/bolt';
import { type BotService, createBotApp } from './app.ts';
import type { BotEnv } from './config.ts';

export async function startHttpBot(service: BotService, env: BotEnv, port: number) {
  const receiver = new HTTPReceiver({ signingSecret: env.signingSecret, processBeforeResponse: true });
  const app = createBotApp({ service, ...env, receiver });
  await app.start(port);
  return app;
}
