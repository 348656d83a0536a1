/**
 * The bot over plain HTTP (Bolt's HTTPReceiver): Slack posts commands, interactions, options
 * requests and events to `/slack/events`, each signed with the app's signing secret and dated
 * within five minutes of the clock (bot/request-window.ts). Used by `odt serve` when
 * SLACK_SIGNING_SECRET is set instead of an app-level token, behind a public HTTPS endpoint (a
 * reverse proxy) that forwards to the port.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type App, HTTPReceiver } from '@slack/bolt';
import { systemClock } from '../core/ports/clock.ts';
import { createBotApp } from './app.ts';
import type { BotService } from './bot-context.ts';
import type { BotEnv } from './config.ts';
import { withRequestWindow } from './request-window.ts';
import type { SocketBotExtras } from './socket.ts';

export async function startHttpBot(
  service: BotService,
  env: BotEnv,
  port: number,
  extras: SocketBotExtras = {},
): Promise<{ app: App; url: string }> {
  if (!env.signingSecret) {
    throw new Error('SLACK_SIGNING_SECRET is not set: the HTTP entry point checks every request with it.');
  }
  // Acknowledge first, then work: a long-running process can finish after the response.
  const receiver = new HTTPReceiver({
    signingSecret: env.signingSecret,
    processBeforeResponse: false,
    ...(extras.logger ? { logger: extras.logger } : {}),
  });
  const clientOptions = { ...extras.clientOptions, ...(env.apiUrl ? { slackApiUrl: env.apiUrl } : {}) };
  const app = createBotApp({ ...extras, ...env, service, receiver, clientOptions });
  // Slack's five minutes both ways before Bolt's check of the signature (issue #18).
  withRequestWindow(receiver, { clock: extras.clock ?? systemClock, logger: app.logger });
  const server = (await app.start(port)) as unknown as Server;
  const { port: bound } = server.address() as AddressInfo;
  return { app, url: `http://127.0.0.1:${bound}/slack/events` };
}
