/**
 * The bot on AWS Lambda (AwsLambdaReceiver). The receiver answers only after the listener ends and
 * Bolt JS has no lazy listeners, so every listener here acks and does one quick service call.
 * The service wiring for AWS (DynamoDB stores, Step Functions) is passed in by the handler module
 * that the CDK stack bundles; not wired yet.
 */
import { AwsLambdaReceiver } from '@slack/bolt';
import { type BotService, createBotApp } from './app.ts';
import { type BotEnv, botEnv } from './config.ts';

export function lambdaHandler(service: BotService, env: BotEnv = botEnv()) {
  const receiver = new AwsLambdaReceiver({ signingSecret: env.signingSecret });
  createBotApp({ service, ...env, receiver });
  let handler: Awaited<ReturnType<AwsLambdaReceiver['start']>> | undefined;
  type Handler = Awaited<ReturnType<AwsLambdaReceiver['start']>>;
  return async (event: Parameters<Handler>[0], context: Parameters<Handler>[1]) => {
    handler ??= await receiver.start();
    return handler(event, context);
  };
}
