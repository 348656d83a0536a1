/**
 * The chat port for the Lambda functions: the Slack notifier (bot/slack-chat.ts) over the
 * DynamoDB message refs, made to finish its Slack calls before the function returns (a frozen
 * container runs no timer). A progress update inside the throttle interval is skipped rather
 * than scheduled: the agent's next heartbeat brings a newer one. Phase changes and reports are
 * always sent. Slack being unreachable or the secret unreadable is logged, never thrown into the
 * workflow.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { webApi } from '@slack/bolt';
import type { MessageRefs } from '../bot/message-refs.ts';
import { createSlackChat, type SlackChat } from '../bot/slack-chat.ts';
import type { Transfer } from '../core/model/transfer.ts';
import type { ChatNotifier } from '../core/ports/chat.ts';
import type { TaskProgress } from '../core/ports/task-queue.ts';
import type { SlackConfig } from './config.ts';
import { cachedSecret } from './secrets.ts';
import { DynamoMessageRefs } from './store/dynamodb-message-refs.ts';

/** The Slack app's secret: a JSON object in Secrets Manager. */
export interface SlackSecret {
  readonly botToken: string;
  readonly signingSecret: string;
}

/** Reads and checks the secret once per container (a failed read or bad value is read again next time). */
export function slackSecretReader(
  client: Pick<SecretsManagerClient, 'send'>,
  secretArn: string,
): () => Promise<SlackSecret> {
  return cachedSecret(client, secretArn, (raw) => {
    let value: Partial<SlackSecret>;
    try {
      value = JSON.parse(raw ?? '') as Partial<SlackSecret>;
    } catch {
      value = {};
    }
    const missing = (['botToken', 'signingSecret'] as const).filter(
      (k) => typeof value[k] !== 'string' || value[k] === '',
    );
    if (missing.length > 0 || !value.botToken?.startsWith('xoxb-')) {
      throw new Error(
        `the Slack secret ${secretArn} must be JSON {"botToken": "xoxb-…", "signingSecret": "…"} ` +
          `(from the Slack app's OAuth and Basic Information pages); ${missing.length > 0 ? `missing ${missing.join(', ')}` : 'botToken is not a bot token'}. ` +
          `Set it with: aws secretsmanager put-secret-value --secret-id ${secretArn} --secret-string '{"botToken":"xoxb-…","signingSecret":"…"}'`,
      );
    }
    return value as SlackSecret;
  });
}

/** A Web API client with `token`, at the configured API URL (SLACK_API_URL) if any. */
const webClient = (slack: SlackConfig, token: string): InstanceType<typeof webApi.WebClient> =>
  new webApi.WebClient(token, slack.apiUrl ? { slackApiUrl: slack.apiUrl } : {});

export interface LambdaSlackChatOptions {
  readonly slack: SlackConfig;
  readonly secret: () => Promise<SlackSecret>;
  readonly refs: MessageRefs;
  readonly minIntervalMs?: number;
  readonly now?: () => number;
  readonly log?: (meta: Record<string, unknown>, message: string) => void;
}

export class LambdaSlackChat implements ChatNotifier {
  private chat: Promise<SlackChat> | undefined;
  private readonly minIntervalMs: number;
  private readonly now: () => number;
  private readonly log: NonNullable<LambdaSlackChatOptions['log']>;

  constructor(private readonly options: LambdaSlackChatOptions) {
    this.minIntervalMs = options.minIntervalMs ?? 5000;
    this.now = options.now ?? Date.now;
    this.log =
      options.log ??
      ((meta, message) => console.log(JSON.stringify({ level: 'warn', ...meta, msg: message })));
  }

  private async slack(): Promise<SlackChat | undefined> {
    this.chat ??= this.options.secret().then((s) =>
      createSlackChat({
        client: webClient(this.options.slack, s.botToken),
        approversChannel: this.options.slack.approversChannel,
        refs: this.options.refs,
        minIntervalMs: this.minIntervalMs,
        log: this.log,
      }),
    );
    try {
      return await this.chat;
    } catch (error) {
      this.chat = undefined;
      this.log({ err: String(error) }, 'slack chat: no Slack client; the message was not sent');
      return undefined;
    }
  }

  /** Runs the queued work, then sends what it left waiting for the throttle: nothing is left behind. */
  private async settle(chat: SlackChat): Promise<void> {
    await chat.idle();
    await chat.flush();
  }

  async transferChanged(transfer: Transfer): Promise<void> {
    const chat = await this.slack();
    if (!chat) return;
    await chat.transferChanged(transfer);
    await this.settle(chat);
  }

  async progress(transfer: Transfer, progress: readonly TaskProgress[]): Promise<void> {
    const ref = await this.options.refs.get(transfer.id);
    if (ref?.lastUpdateAt !== undefined && this.now() - ref.lastUpdateAt < this.minIntervalMs) return;
    const chat = await this.slack();
    if (!chat) return;
    await chat.progress(transfer, progress);
    await this.settle(chat);
  }

  async report(transfer: Transfer): Promise<void> {
    const chat = await this.slack();
    if (!chat) return;
    await chat.report(transfer);
    await this.settle(chat);
  }
}

/** The Slack chat of a function whose configuration names a Slack app. */
export function lambdaSlackChat(
  slack: SlackConfig,
  dynamodb: DynamoDBClient,
  tableName: string,
  secrets: Pick<SecretsManagerClient, 'send'>,
  secret: () => Promise<SlackSecret> = slackSecretReader(secrets, slack.secretArn),
  log?: LambdaSlackChatOptions['log'],
): LambdaSlackChat {
  return new LambdaSlackChat({
    slack,
    secret,
    refs: new DynamoMessageRefs(dynamodb, tableName),
    ...(log ? { log } : {}),
  });
}

/**
 * A Web API client with the bot token of the Slack secret, made on first use (once per container;
 * a failed secret read is tried again at the next use). The approvers group is read with it.
 */
export function lambdaSlackClient(
  slack: SlackConfig,
  secret: () => Promise<SlackSecret>,
): () => Promise<InstanceType<typeof webApi.WebClient>> {
  return async () => webClient(slack, (await secret()).botToken);
}
