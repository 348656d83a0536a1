/**
 * The Slack function as CDK ships it: bundled by esbuild with the stack's options (ESM, node22,
 * the `require` banner), loaded from the bundle file, configured only by its environment, its AWS
 * SDK clients pointed by the SDK's endpoint variables at dynalite and a Secrets Manager stand-in
 * (JSON 1.1 protocol, `secretsmanager.GetSecretValue`). Catches what only a bundle breaks.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { esmBanner } from '../../infra/sneakernet-stack.ts';
import { commandFields } from '../bot/harness.ts';
import { type FakeSlackApi, startFakeSlackApi } from '../peers/slack/fake-slack-api.ts';
import { type Dynalite, signedSlackEvent, startDynalite } from './support.ts';

const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:odt-slack-AbCdEf';
const SIGNING = 'bundle-signing-secret';
const dir = mkdtempSync(join(tmpdir(), 'odt-slack-bundle-'));
const saved = { ...process.env };
let db: Dynalite;
let slack: FakeSlackApi;
let secrets: Server;
const secretCalls: string[] = [];

beforeAll(async () => {
  db = await startDynalite('odt-slack-bundle');
  slack = await startFakeSlackApi();
  secrets = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += String(c);
    });
    req.on('end', () => {
      secretCalls.push(String(req.headers['x-amz-target']));
      const id = (JSON.parse(body) as { SecretId: string }).SecretId;
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end(
        JSON.stringify({
          ARN: id,
          Name: 'odt-slack',
          SecretString: JSON.stringify({ botToken: 'xoxb-test', signingSecret: SIGNING }),
        }),
      );
    });
  });
  await new Promise<void>((r) => secrets.listen(0, '127.0.0.1', r));
  Object.assign(process.env, {
    TABLE_NAME: db.tableName,
    STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:123456789012:stateMachine:Sneakernet-transfer',
    APPROVERS: 'UAPPROVER1',
    SLACK_SECRET_ARN: SECRET_ARN,
    APPROVERS_CHANNEL: 'CAPPROVERS',
    SLACK_API_URL: slack.url,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_ENDPOINT_URL_DYNAMODB: db.endpoint,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: `http://127.0.0.1:${(secrets.address() as AddressInfo).port}`,
  });
}, 60_000);
afterAll(async () => {
  process.env = saved;
  await new Promise<void>((r) => secrets?.close(() => r()));
  await slack?.close();
  await db?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the bundled Slack function', () => {
  it('loads from its esbuild bundle and answers a signed /odt help', async () => {
    const outfile = join(dir, 'slack.mjs');
    await build({
      entryPoints: [join(import.meta.dirname, '../../functions/slack.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node22',
      mainFields: ['module', 'main'],
      banner: { js: esmBanner },
      outfile,
      logLevel: 'silent',
    });
    const { handler } = (await import(pathToFileURL(outfile).href)) as {
      handler: (e: unknown, c: unknown) => Promise<{ statusCode: number; body: string }>;
    };
    const body = new URLSearchParams(commandFields('help')).toString();
    const res = await handler(signedSlackEvent(body, SIGNING), {});
    expect(res.statusCode).toBe(200);
    expect((JSON.parse(res.body) as { text: string }).text).toContain('/odt request');
    expect(secretCalls).toEqual(['secretsmanager.GetSecretValue']);
  }, 60_000);
});
