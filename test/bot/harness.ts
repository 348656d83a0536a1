/**
 * Test harness: the bot on Bolt's own HTTPReceiver, an embedded control plane in a temp state
 * dir, and the fake Slack Web API. Requests are signed as Slack signs them.
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type App, HTTPReceiver } from '@slack/bolt';
import { type BotOptions, createBotApp } from '../../bot/app.ts';
import { type ControlPlane, startControlPlane } from '../../local/control-plane.ts';
import { type FakeSlackApi, type SlackCall, startFakeSlackApi } from '../peers/slack/fake-slack-api.ts';
import { defaultInventory, enrollExportAgent } from './inventory.ts';

export const SECRET = 'test-signing-secret';
export const APPROVERS = ['UAPPROVER1', 'UAPPROVER2'];
export const CHANNEL = 'CAPPROVERS';
export const REQUESTER = 'UCUSTOMER1';
/** The customer site whose export agent reports `defaultInventory`. */
export const SITE = 'acme-dc1';

export interface Harness {
  readonly slack: FakeSlackApi;
  readonly plane: ControlPlane;
  readonly url: string;
  /** POSTs a signed form body; `at` is the signing time in seconds. */
  post(
    body: string,
    opts?: { at?: number; secret?: string; headers?: Record<string, string> },
  ): Promise<Response>;
  command(text: string, user?: string): Promise<Response>;
  interaction(
    payload: Record<string, unknown>,
    opts?: { headers?: Record<string, string> },
  ): Promise<Response>;
  close(): Promise<void>;
}

export function sign(secret: string, ts: number, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${ts}:${body}`).digest('hex')}`;
}

/**
 * POSTs `body` to the bot's events URL signed as Slack signs it (with SECRET unless `secret`);
 * `at` is the signing time in seconds, default now.
 */
export function signedPost(
  url: string,
  body: string,
  opts: { at?: number; secret?: string; contentType?: string; headers?: Record<string, string> } = {},
): Promise<Response> {
  const at = opts.at ?? Math.floor(Date.now() / 1000);
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': opts.contentType ?? 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': String(at),
      'x-slack-signature': sign(opts.secret ?? SECRET, at, body),
      ...opts.headers,
    },
    body,
  });
}

let events = 0;
/** The JSON body of an Events API delivery (event_callback) of `event` in the fake workspace. */
export function eventCallback(event: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    token: 'legacy',
    team_id: 'TFAKE',
    api_app_id: 'AODT',
    type: 'event_callback',
    event_id: `Ev${Date.now()}${++events}`,
    event_time: Math.floor(Date.now() / 1000),
    event: { event_ts: `${Date.now() / 1000}`, ...event },
    ...extra,
  });
}

/**
 * Posts "approve <id>?" to the approvers' channel straight to the fake Web API, as the bot would
 * post the approval request; returns its ts (for a click on it).
 */
export async function postApprovalMessage(slack: FakeSlackApi, id: string): Promise<string> {
  const res = await fetch(`${slack.url}chat.postMessage`, {
    method: 'POST',
    headers: { authorization: 'Bearer xoxb-test', 'content-type': 'application/json' },
    body: JSON.stringify({ channel: CHANNEL, text: `approve ${id}?` }),
  });
  return ((await res.json()) as { ts: string }).ts;
}

/**
 * Submits the request modal as `user`; returns the new transfer's id and its approval message in
 * the approvers' channel. Throws when the submission is refused or no approval request is posted.
 */
export async function requestTransfer(
  h: Harness,
  user = REQUESTER,
): Promise<{ id: string; message: { channel: string; ts: string } }> {
  const res = await h.interaction(submission(user, 'odt_request_modal', requestValues()));
  if (res.status !== 200) throw new Error(`the request modal's submission answered ${res.status}`);
  const posted = h.slack
    .ok('chat.postMessage')
    .filter((c) => c.args.channel === CHANNEL && c.args.thread_ts === undefined)
    .at(-1);
  if (!posted)
    throw new Error(`no approval request posted (Slack errors: ${JSON.stringify(h.slack.failed())})`);
  const id = (await h.plane.service.list()).at(-1)!.id;
  return { id, message: { channel: CHANNEL, ts: posted.response.ts as string } };
}

/** What `user` was told ephemerally, oldest first. */
export const ephemeralsTo = (slack: FakeSlackApi, user: string): SlackCall[] =>
  slack.ok('chat.postEphemeral').filter((c) => c.args.user === user);

/** The bot's direct messages to `user`, oldest first. */
export const dmsTo = (slack: FakeSlackApi, user: string): SlackCall[] =>
  slack.ok('chat.postMessage').filter((c) => c.args.channel === user);

let triggers = 0;
export const trigger = (): string => `${Date.now()}.${++triggers}.abcdef`;

export interface HarnessOptions {
  /** Bot options over the harness's own. */
  readonly bot?: Partial<BotOptions>;
  /**
   * What the export agent of site `acme-dc1` reports (enrolled over the agent API); default
   * `defaultInventory`; false: no agent, no inventory.
   */
  readonly inventory?: readonly unknown[] | false;
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const stateDir = mkdtempSync(join(tmpdir(), 'odt-bot-'));
  const slack = await startFakeSlackApi();
  const plane = await startControlPlane({ stateDir, approvers: APPROVERS, port: 0, agentPort: 0 });
  if (opts.inventory !== false) await enrollExportAgent(plane, SITE, opts.inventory ?? defaultInventory);
  const { app, url } = await startTestBot(plane.service, slack, {
    registry: plane.registry,
    agentApiUrl: plane.agentApi.url,
    ...opts.bot,
  });
  const post: Harness['post'] = (body, opts = {}) => signedPost(url, body, opts);
  return {
    slack,
    plane,
    url,
    post,
    command: (text, user = REQUESTER) => post(new URLSearchParams(commandFields(text, user)).toString()),
    interaction: (payload, opts = {}) =>
      post(new URLSearchParams({ payload: JSON.stringify(payload) }).toString(), opts),
    async close() {
      await app.stop();
      await plane.close();
      await slack.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/**
 * The bot on Bolt's HTTPReceiver as the tests run it: answers after the listener (as on Lambda),
 * the fake Web API, no auth.test, the test signing secret. Returns the app and its events URL.
 */
export async function startTestBot(
  service: BotOptions['service'],
  slack: FakeSlackApi,
  extras: Partial<BotOptions> = {},
): Promise<{ app: App; url: string }> {
  const app = createBotApp({
    service,
    token: 'xoxb-test',
    approvers: APPROVERS,
    approversChannel: CHANNEL,
    receiver: new HTTPReceiver({ signingSecret: SECRET, processBeforeResponse: true }),
    botId: 'BBOT',
    botUserId: 'UBOT',
    tokenVerificationEnabled: false,
    clientOptions: { slackApiUrl: slack.url, retryConfig: { retries: 0 } },
    logLevel: 'error' as never,
    ...extras,
  });
  const server = (await app.start(0)) as unknown as Server;
  return { app, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack/events` };
}

/** The form fields of a `/odt` slash command as Slack sends them. */
export function commandFields(text: string, user = REQUESTER): Record<string, string> {
  return {
    token: 'legacy',
    team_id: 'TFAKE',
    team_domain: 'fake',
    channel_id: 'CGENERAL',
    channel_name: 'general',
    user_id: user,
    user_name: user.toLowerCase(),
    command: '/odt',
    text,
    api_app_id: 'AODT',
    response_url: 'https://hooks.slack.test/commands/1',
    trigger_id: trigger(),
  };
}

/** What every interaction payload of the fake workspace carries: its type, team, user and app. */
const interaction = (type: string, user: string): Record<string, unknown> => ({
  type,
  team: { id: 'TFAKE', domain: 'fake' },
  user: { id: user, username: user.toLowerCase(), team_id: 'TFAKE' },
  api_app_id: 'AODT',
  token: 'legacy',
  trigger_id: trigger(),
});

/**
 * A block_actions payload for a button on a message, or on the Home tab (`'home'`: no channel,
 * no message; the view instead).
 */
export function buttonClick(
  user: string,
  actionId: string,
  value: string,
  where: { channel: string; ts: string } | 'home',
): Record<string, unknown> {
  const on =
    where === 'home'
      ? {
          container: { type: 'view', view_id: `VHOME${user}` },
          view: { id: `VHOME${user}`, type: 'home', blocks: [], hash: '1.1', state: { values: {} } },
        }
      : {
          container: { type: 'message', message_ts: where.ts, channel_id: where.channel },
          channel: { id: where.channel, name: 'approvers' },
          message: { type: 'message', ts: where.ts, text: '' },
          response_url: 'https://hooks.slack.test/actions/1',
        };
  return {
    ...interaction('block_actions', user),
    ...on,
    actions: [
      { type: 'button', action_id: actionId, block_id: 'b', value, action_ts: `${Date.now() / 1000}` },
    ],
  };
}

/** A block_suggestion payload: the request modal's items select of `site` opened, `value` typed. */
export function itemsSuggestion(
  view: Record<string, unknown>,
  value: string,
  site = SITE,
  user = REQUESTER,
): Record<string, unknown> {
  const { trigger_id: _none, ...fields } = interaction('block_suggestion', user);
  return {
    ...fields,
    container: { type: 'view', view_id: view.id },
    action_id: 'odt_req_items',
    block_id: `items:${site}`,
    value,
    view: { ...view, state: { values: {} } },
  };
}

type Values = Record<string, Record<string, unknown>>;

/** A view_submission payload. */
export function submission(
  user: string,
  callbackId: string,
  values: Values,
  privateMetadata = '',
): Record<string, unknown> {
  return {
    ...interaction('view_submission', user),
    view: {
      id: `V${Date.now()}${triggers}`,
      team_id: 'TFAKE',
      type: 'modal',
      callback_id: callbackId,
      private_metadata: privateMetadata,
      hash: '1.abc',
      state: { values },
      title: { type: 'plain_text', text: 'x' },
      blocks: [],
    },
  };
}

export const text = (v: string) => ({ value: { type: 'plain_text_input', value: v } });

/** The option value of an inventory item, as the request modal's items select carries it. */
export const itemValue = (
  name: string,
  inventory: readonly { kind: string; name: string; path: string }[] = defaultInventory,
): string => {
  const item = inventory.find((i) => i.name === name);
  return item ? `${item.kind}:${item.path}` : `vm:/DC0/vm/${name}`;
};

export interface RequestOverrides {
  readonly site?: string;
  /** Names of `inventory`'s items (others become values no inventory has). */
  readonly items?: readonly string[];
  /** The inventory the items are picked from; default `defaultInventory`. */
  readonly inventory?: readonly { kind: string; name: string; path: string }[];
  readonly vdc?: string;
  readonly network?: string;
  readonly catalog?: string;
  readonly provider_site?: string;
  /** Link speed in Mbit/s as typed; default '100'. */
  readonly link?: string;
  /** Per item name: the ticked checkboxes ('deploy', 'powerOn'); default: as the modal starts. */
  readonly choices?: Readonly<Record<string, readonly string[]>>;
}

/** The request modal's state values as Slack sends them on submission. */
export const requestValues = (over: RequestOverrides = {}): Values => {
  const site = over.site ?? SITE;
  const items = over.items ?? ['web-01', 'db-01'];
  const value = (name: string) => itemValue(name, over.inventory);
  const values: Values = {
    site: {
      odt_req_site: {
        type: 'static_select',
        selected_option: { text: { type: 'plain_text', text: site }, value: site },
      },
    },
    [`items:${site}`]: {
      odt_req_items: {
        type: 'multi_external_select',
        selected_options: items.map((n) => ({ text: { type: 'plain_text', text: n }, value: value(n) })),
      },
    },
    vdc: text(over.vdc ?? 'acme-vdc'),
    catalog: text(over.catalog ?? ''),
    network: text(over.network ?? ''),
    provider_site: text(over.provider_site ?? ''),
    link: { odt_req_link: { type: 'number_input', value: over.link ?? '100' } },
  };
  for (const [name, ticked] of Object.entries(over.choices ?? {}))
    values[`item:${value(name)}`] = {
      odt_req_item_opts: { type: 'checkboxes', selected_options: ticked.map((v) => ({ value: v })) },
    };
  return values;
};

/** Concatenated visible text of blocks, for assertions. */
export function visible(blocks: unknown): string {
  return JSON.stringify(blocks ?? [])
    .match(/"text":"((?:[^"\\]|\\.)*)"/g)!
    .map((m) => JSON.parse(m.slice(7)) as string)
    .join('\n');
}
