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
import type { Approvers, ChatNotifier } from '../core/index.ts';
import { type Logger, silentLogger } from '../core/ports/logger.ts';
import type { ControlPlane } from '../local/control-plane.ts';
import { SlackApprovers } from './approvers-group.ts';
import { boltLogger } from './bolt-logger.ts';
import { type BotEnv, botEnv } from './config.ts';
import { startHttpBot } from './http.ts';
import { SqliteMessageRefs } from './message-refs.ts';
import { createSlackChat, type SlackChat } from './slack-chat.ts';
import { startSocketBot } from './socket.ts';

export interface ServeSlack {
  /** The notifier to hand to the control plane (before it starts). */
  readonly chat: ChatNotifier;
  /**
   * Who may approve, for the control plane too: the listed user ids, and the members of the listed
   * user groups read with the bot token (refreshed on Slack's group events through the bot).
   */
  readonly approvers: Approvers;
  /** Connects the bot to Slack once the control plane runs; says how (for the startup line). */
  connect(plane: ControlPlane): Promise<string>;
  /** Disconnects, sends the progress updates still waiting for their interval, closes the refs. */
  stop(): Promise<void>;
}

/**
 * Undefined when Slack is not configured. Throws, naming the variable, when it is half configured
 * (e.g. the tokens without ODT_APPROVERS_CHANNEL). Bolt, the Web API client and the notifier log
 * through `log` (default: nothing).
 */
export function serveSlack(
  stateDir: string,
  approvers: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  httpPort = 3000,
  log: Logger = silentLogger,
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
  const base = botEnv(env);
  const logger = boltLogger(log);
  const warn = (meta: Record<string, unknown>, message: string) => log.warn(meta, message);
  // Few retries: a Slack outage must not hold a transfer's queue (or a decision) for long.
  const client = new webApi.WebClient(base.token, {
    ...(base.apiUrl ? { slackApiUrl: base.apiUrl } : {}),
    retryConfig: { retries: 2, factor: 2, minTimeout: 500, maxTimeout: 5000 },
    logger,
  });
  const slackApprovers = new SlackApprovers(approvers, { client, log: warn });
  const config: BotEnv = { ...base, approvers: slackApprovers };
  const refs = SqliteMessageRefs.open(join(stateDir, 'slack.db'));
  const chat: SlackChat = createSlackChat({
    client,
    approversChannel: config.approversChannel,
    refs,
    log: warn,
  });
  let app: App | undefined;
  return {
    chat,
    approvers: slackApprovers,
    async connect(plane) {
      const extras = {
        registry: plane.registry,
        nonces: plane.registry,
        messageRefs: refs,
        agentApiUrl: plane.agentApi.url,
        logger,
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
