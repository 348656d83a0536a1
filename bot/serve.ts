/**
 * Slack inside `odt serve`: with SLACK_BOT_TOKEN and SLACK_APP_TOKEN the bot connects over Socket
 * Mode (no public URL); with SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET instead it listens for
 * Slack's signed HTTP requests on a port (HTTP entry point, bot/http.ts). Either way the control
 * plane's chat notifier posts progress and reports to the approvers' channel. Message refs live in `<state>/slack.db`, so a restarted `odt serve` keeps
 * updating the same messages. The bot gets the control plane's agent registry (the request modal's
 * inventories, `/odt agent enroll`, replay protection) and its agent API URL.
 */
import { join } from 'node:path';
import { type App, webApi } from '@slack/bolt';
import type { ChatNotifier } from '../core/index.ts';
import type { ControlPlane } from '../local/control-plane.ts';
import { type BotEnv, botEnv } from './config.ts';
import { startHttpBot } from './http.ts';
import { SqliteMessageRefs } from './message-refs.ts';
import { createSlackChat, type SlackChat } from './slack-chat.ts';
import { startSocketBot } from './socket.ts';

export interface ServeSlack {
  /** The notifier to hand to the control plane (before it starts). */
  readonly chat: ChatNotifier;
  /** Connects the bot to Slack once the control plane runs; says how (for the startup line). */
  connect(plane: ControlPlane): Promise<string>;
  /** Disconnects, sends the progress updates still waiting for their interval, closes the refs. */
  stop(): Promise<void>;
}

/**
 * Undefined when Slack is not configured. Throws, naming the variable, when it is half configured
 * (e.g. the tokens without ODT_APPROVERS_CHANNEL).
 */
export function serveSlack(
  stateDir: string,
  approvers: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  httpPort = 3000,
): ServeSlack | undefined {
  if (!env.SLACK_BOT_TOKEN && !env.SLACK_APP_TOKEN && !env.SLACK_SIGNING_SECRET) return undefined;
  if (!env.SLACK_BOT_TOKEN)
    throw new Error(
      'SLACK_BOT_TOKEN is not set: Slack needs the bot token (xoxb-) with an app token or a signing secret.',
    );
  if (!env.SLACK_APP_TOKEN && !env.SLACK_SIGNING_SECRET)
    throw new Error(
      'Slack needs SLACK_APP_TOKEN (xapp-, Socket Mode, no public URL) or SLACK_SIGNING_SECRET (HTTP on --slack-port); neither is set.',
    );
  const socketMode = Boolean(env.SLACK_APP_TOKEN);
  const config: BotEnv = { ...botEnv(env), approvers };
  const refs = SqliteMessageRefs.open(join(stateDir, 'slack.db'));
  const chat: SlackChat = createSlackChat({
    // Few retries: a Slack outage must not hold a transfer's queue (or shutdown) for long.
    client: new webApi.WebClient(config.token, {
      ...(config.apiUrl ? { slackApiUrl: config.apiUrl } : {}),
      retryConfig: { retries: 2, factor: 2, minTimeout: 500, maxTimeout: 5000 },
    }),
    approversChannel: config.approversChannel,
    refs,
  });
  let app: App | undefined;
  return {
    chat,
    async connect(plane) {
      const extras = {
        registry: plane.registry,
        nonces: plane.registry,
        messageRefs: refs,
        agentApiUrl: plane.agentApi.url,
      };
      if (socketMode) {
        app = await startSocketBot(plane.service, config, extras);
        return 'Slack connected (Socket Mode)';
      }
      const http = await startHttpBot(plane.service, config, httpPort, extras);
      app = http.app;
      return `Slack requests at ${http.url}`;
    },
    async stop() {
      await app?.stop();
      await chat.flush();
      refs.close();
    },
  };
}
