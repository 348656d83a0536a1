/**
 * The Slack app on AWS: one Lambda function behind the HTTP API's `POST /slack/events`
 * (infra/sneakernet-stack.ts), Bolt's AwsLambdaReceiver checking Slack's signature with the
 * signing secret from Secrets Manager (SLACK_SECRET_ARN: `{ "botToken", "signingSecret" }`),
 * behind the check that the request is dated within five minutes of the clock either way
 * (bot/request-window.ts).
 *
 * The same bot as `odt serve` runs (bot/app.ts) over the same service layer, here on DynamoDB and
 * Step Functions: a request starts an execution, an approval sends the task token's success. The
 * agent registry gives the request modal its sites and inventories, `/odt agent enroll` its codes,
 * and keeps Slack request ids (replays across containers act once). The receiver answers when the
 * listener ends (Bolt has no lazy listeners): every listener acks and then makes a few quick calls,
 * and the chat notifier finishes its Slack calls before the function returns.
 */

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { AwsLambdaReceiver } from '@slack/bolt';
import type { AwsEvent, AwsResponse } from '@slack/bolt/dist/receivers/AwsLambdaReceiver.js';
import { createBotApp } from '../bot/app.ts';
import { boltLogger } from '../bot/bolt-logger.ts';
import { lambdaWithRequestWindow } from '../bot/request-window.ts';
import { ConfigError, config, type FunctionConfig } from './config.ts';
import { createRuntime, lambdaLogger, lambdaSecrets, type RuntimeOverrides } from './runtime.ts';
import { slackSecretReader } from './slack-chat.ts';
import { DynamoMessageRefs } from './store/dynamodb-message-refs.ts';

export type SlackHandler = (event: AwsEvent, context: unknown) => Promise<AwsResponse>;

/** Builds the handler: configuration checked, secret read, bot wired (once per container). */
export async function createSlackHandler(
  cfg: FunctionConfig,
  overrides: RuntimeOverrides = {},
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<SlackHandler> {
  if (!cfg.slack) {
    throw new ConfigError(
      'Function environment: SLACK_SECRET_ARN is not set (the Slack function needs the Slack app secret).',
    );
  }
  const secrets = overrides.secrets ?? new SecretsManagerClient({});
  const secret = await slackSecretReader(secrets, cfg.slack.secretArn)();
  lambdaSecrets.add(secret.signingSecret);
  lambdaSecrets.add(secret.botToken);
  const dynamodb = overrides.dynamodb ?? new DynamoDBClient({});
  const runtime = createRuntime(cfg, { ...overrides, dynamodb, secrets });
  const logger = boltLogger(runtime.logger);
  const receiver = new AwsLambdaReceiver({ signingSecret: secret.signingSecret, logger });
  const app = createBotApp({
    logger,
    service: runtime.service,
    token: secret.botToken,
    // The same Approvers as the service's: Slack's group events reach the one the service asks.
    approvers: runtime.approvers,
    approversChannel: cfg.slack.approversChannel,
    receiver,
    registry: runtime.registry,
    nonces: runtime.registry,
    clock: runtime.clock,
    // An approval records the transfer's thread, where the functions' notifier posts progress.
    messageRefs: new DynamoMessageRefs(dynamodb, cfg.tableName),
    ...(env.AGENT_API_URL ? { agentApiUrl: env.AGENT_API_URL } : {}),
    // The bot token was checked when the secret was read; skip auth.test on every cold start.
    tokenVerificationEnabled: false,
    ...(cfg.slack.apiUrl ? { clientOptions: { slackApiUrl: cfg.slack.apiUrl } } : {}),
  });
  const handle = lambdaWithRequestWindow(await receiver.start(), {
    clock: runtime.clock,
    logger: app.logger,
  });
  return (event, context) => handle(event, context);
}

let built: Promise<SlackHandler> | undefined;

export const handler: SlackHandler = async (event, context) => {
  built ??= createSlackHandler(config(), { logger: lambdaLogger() }).catch((error: unknown) => {
    built = undefined;
    throw error;
  });
  return (await built)(event, context);
};
