/**
 * Issue #7: "Only members of the configured approvers group may approve". The approvers may name a
 * Slack user group (S…) beside user ids; its members come from usergroups.users.list on the fake
 * Web API, are kept at most 60 s, and are read again when Slack's subteam events arrive (delivered
 * here signed, as the Events API sends them). Clicks go through Bolt's own HTTP receiver, and on
 * AWS through the Slack function (AwsLambdaReceiver) over dynalite.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { webApi } from '@slack/bolt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { approversFromEntries, SlackApprovers } from '../../bot/approvers-group.ts';
import { serveSlack } from '../../bot/serve.ts';
import { parseConfig } from '../../functions/config.ts';
import { createRuntime } from '../../functions/runtime.ts';
import { type ControlPlane, startControlPlane } from '../../local/control-plane.ts';
import { type SlackFunction, signedSlackEvent, startSlackFunction } from '../functions/support.ts';
import { defaultScopes, type FakeSlackApi, startFakeSlackApi } from '../peers/slack/fake-slack-api.ts';
import {
  buttonClick,
  CHANNEL,
  commandFields,
  ephemeralsTo,
  eventCallback,
  postApprovalMessage,
  REQUESTER,
  SECRET,
  signedPost,
  startTestBot,
  visible,
} from './harness.ts';

const GROUP = 'S0APPROVE1';
const MEMBER = 'UMEMBER01';
const LEAVER = 'UMEMBER02';
const OUTSIDER = 'UOUTSIDE1';
const PLAIN = 'UPLAIN001';

let cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

interface Setup {
  readonly slack: FakeSlackApi;
  readonly plane: ControlPlane;
  readonly approvers: SlackApprovers;
  readonly logs: Record<string, unknown>[];
  /** A requested transfer and its approval message in the approvers' channel. */
  requested(): Promise<{ id: string; ts: string }>;
  /** Clicks Approve on that message as `user`. */
  approve(user: string, message: { id: string; ts: string }): Promise<void>;
  /** Delivers an Events API event, signed. */
  deliver(event: Record<string, unknown>): Promise<void>;
  /** What `user` was told ephemerally, latest last. */
  ephemeral(user: string): string[];
  /** `/odt <text>` as `user`: the ephemeral answer. */
  command(text: string, user: string): Promise<{ text: string; blocks: unknown[] }>;
}

async function setUp(opts: {
  entries: readonly string[];
  scopes?: readonly string[];
  usergroups?: Record<string, readonly string[]>;
}): Promise<Setup> {
  const stateDir = mkdtempSync(join(tmpdir(), 'odt-approvers-group-'));
  const slack = await startFakeSlackApi({
    tokens: { 'xoxb-test': opts.scopes ?? defaultScopes },
    usergroups: opts.usergroups ?? { [GROUP]: [MEMBER, LEAVER] },
  });
  const logs: Record<string, unknown>[] = [];
  const approvers = new SlackApprovers(opts.entries, {
    client: new webApi.WebClient('xoxb-test', { slackApiUrl: slack.url, retryConfig: { retries: 0 } }),
    log: (meta, msg) => logs.push({ ...meta, msg }),
  });
  const plane = await startControlPlane({ stateDir, approvers, port: 0, agentPort: 0 });
  const { app, url } = await startTestBot(plane.service, slack, { approvers });
  cleanup.push(async () => {
    await app.stop();
    await plane.close();
    await slack.close();
    rmSync(stateDir, { recursive: true, force: true });
  });
  const post = async (body: string, contentType: string) => {
    const res = await signedPost(url, body, { contentType });
    expect(res.status).toBe(200);
    return res;
  };
  return {
    slack,
    plane,
    approvers,
    logs,
    async requested() {
      const t = await plane.service.request({
        site: 'acme-dc1',
        requester: REQUESTER,
        items: [{ kind: 'vm', source: 'web-01', target: { vdc: 'acme-vdc' } }],
      });
      return { id: t.id, ts: await postApprovalMessage(slack, t.id) };
    },
    approve: async (user, message) => {
      await post(
        new URLSearchParams({
          payload: JSON.stringify(
            buttonClick(user, 'odt_approve', message.id, { channel: CHANNEL, ts: message.ts }),
          ),
        }).toString(),
        'application/x-www-form-urlencoded',
      );
    },
    deliver: async (event) => {
      await post(
        eventCallback(event, {
          authorizations: [{ team_id: 'TFAKE', user_id: 'UBOT', is_bot: true, is_enterprise_install: false }],
        }),
        'application/json',
      );
    },
    command: async (text, user) =>
      (await (
        await post(
          new URLSearchParams(commandFields(text, user)).toString(),
          'application/x-www-form-urlencoded',
        )
      ).json()) as { text: string; blocks: unknown[] },
    ephemeral: (user) => ephemeralsTo(slack, user).map((c) => String(c.args.text)),
  };
}

const groupReads = (slack: FakeSlackApi) => slack.calls.filter((c) => c.method === 'usergroups.users.list');

describe('a Slack user group as the approvers group', () => {
  it('a member of the group approves; the group is read with usergroups.users.list', async () => {
    const s = await setUp({ entries: [GROUP] });
    const m = await s.requested();
    await s.approve(MEMBER, m);
    expect((await s.plane.service.get(m.id)).phase).toBe('approved');
    expect(JSON.stringify(s.slack.message(CHANNEL, m.ts)?.blocks)).toContain(`Approved by <@${MEMBER}>`);
    expect(groupReads(s.slack).map((c) => [c.args.usergroup, c.response.ok])).toEqual([[GROUP, true]]);
    expect(s.ephemeral(MEMBER)).toEqual([]);
  });

  it('someone outside the group is refused ephemerally and nothing changes', async () => {
    const s = await setUp({ entries: [GROUP] });
    const m = await s.requested();
    await s.approve(OUTSIDER, m);
    expect((await s.plane.service.get(m.id)).phase).toBe('requested');
    expect(s.ephemeral(OUTSIDER)).toEqual([expect.stringContaining(`${OUTSIDER} is not an approver`)]);
    expect(s.slack.ok('chat.update')).toEqual([]);
  });

  it('a member removed from the group (subteam_members_changed delivered) is refused at the next click', async () => {
    const s = await setUp({ entries: [GROUP] });
    const first = await s.requested();
    await s.approve(MEMBER, first);
    expect((await s.plane.service.get(first.id)).phase).toBe('approved');

    // An admin takes LEAVER out of the group; until Slack's event arrives the 60 s cache still has them.
    s.slack.setUsergroup(GROUP, [MEMBER]);
    expect(await s.approvers.has(LEAVER)).toBe(true);
    await s.deliver({
      type: 'subteam_members_changed',
      subteam_id: GROUP,
      team_id: 'TFAKE',
      date_previous_update: 1_700_000_000,
      date_update: 1_700_000_100,
      added_users: [],
      added_users_count: '0',
      removed_users: [LEAVER],
      removed_users_count: '1',
    });
    // The event made the bot read the group again at once.
    expect(groupReads(s.slack)).toHaveLength(2);

    const second = await s.requested();
    await s.approve(LEAVER, second);
    expect((await s.plane.service.get(second.id)).phase).toBe('requested');
    expect(s.ephemeral(LEAVER)).toEqual([expect.stringContaining(`${LEAVER} is not an approver`)]);
    await s.approve(MEMBER, second);
    expect((await s.plane.service.get(second.id)).phase).toBe('approved');
  });

  it('a group disabled in Slack (subteam_updated with date_delete) refuses, saying so', async () => {
    const s = await setUp({ entries: [GROUP] });
    const m = await s.requested();
    s.slack.setUsergroup(GROUP, [MEMBER, LEAVER], { disabled: true });
    await s.deliver({
      type: 'subteam_updated',
      subteam: {
        id: GROUP,
        team_id: 'TFAKE',
        is_usergroup: true,
        name: 'Sneakernet approvers',
        handle: 'sneakernet-approvers',
        date_update: 1_700_000_200,
        date_delete: 1_700_000_200,
        users: [MEMBER, LEAVER],
        user_count: 2,
      },
    });
    await s.approve(MEMBER, m);
    expect((await s.plane.service.get(m.id)).phase).toBe('requested');
    expect(s.ephemeral(MEMBER)).toEqual([
      expect.stringContaining(`The approvers group ${GROUP} is disabled in Slack`),
    ]);
  });

  it('subteam_updated with the full member list replaces the members without another read', async () => {
    const s = await setUp({ entries: [GROUP] });
    expect(await s.approvers.has(MEMBER)).toBe(true);
    await s.deliver({
      type: 'subteam_updated',
      subteam: { id: GROUP, date_delete: 0, users: [OUTSIDER], user_count: 1 },
    });
    expect(groupReads(s.slack)).toHaveLength(1);
    expect(await s.approvers.has(OUTSIDER)).toBe(true);
    expect(await s.approvers.has(MEMBER)).toBe(false);
  });

  it('an unknown group refuses with a message naming the group and the fix, and is logged', async () => {
    const s = await setUp({ entries: ['S0NOSUCH1'] });
    const m = await s.requested();
    await s.approve(MEMBER, m);
    expect((await s.plane.service.get(m.id)).phase).toBe('requested');
    const [said] = s.ephemeral(MEMBER);
    expect(said).toContain('The approvers group S0NOSUCH1 cannot be read from Slack (no_such_subteam)');
    expect(said).toContain('Copy group ID');
    expect(said).toContain('Nothing changed');
    expect(s.logs).toContainEqual(expect.objectContaining({ group: 'S0NOSUCH1', error: 'no_such_subteam' }));
  });

  it('/odt list with an unreadable group: the person still sees their own transfers, and why only those', async () => {
    const s = await setUp({ entries: ['S0NOSUCH1'] });
    const mine = await s.requested();
    const answer = await s.command('list', REQUESTER);
    expect(answer.text).toBe('Your transfers: 1');
    expect(visible(answer.blocks)).toContain(mine.id);
    expect(visible(answer.blocks)).toContain(
      'Only your own transfers: The approvers group S0NOSUCH1 cannot be read',
    );
    expect((await s.command('list', MEMBER)).text).toBe('Your transfers: 0');
  });

  it('without the usergroups:read scope members are refused (never let through); plain user ids still approve', async () => {
    const s = await setUp({
      entries: [PLAIN, GROUP],
      scopes: defaultScopes.filter((sc) => sc !== 'usergroups:read'),
    });
    const m = await s.requested();
    await s.approve(MEMBER, m);
    expect((await s.plane.service.get(m.id)).phase).toBe('requested');
    const [said] = s.ephemeral(MEMBER);
    expect(said).toContain(`The approvers group ${GROUP} cannot be read from Slack (missing_scope)`);
    expect(said).toContain('add the bot scope usergroups:read');
    expect(s.logs).toContainEqual(expect.objectContaining({ group: GROUP, error: 'missing_scope' }));

    // A user id listed beside the group decides without asking Slack about the group.
    const reads = groupReads(s.slack).length;
    await s.approve(PLAIN, m);
    expect((await s.plane.service.get(m.id)).phase).toBe('approved');
    expect(groupReads(s.slack)).toHaveLength(reads);
  });

  it('keeps the members at most 60 s, then reads the group again; concurrent questions share one read', async () => {
    const slack = await startFakeSlackApi({ usergroups: { [GROUP]: [MEMBER] } });
    cleanup.push(() => slack.close());
    let now = 1_000_000;
    const approvers = new SlackApprovers([GROUP], {
      client: new webApi.WebClient('xoxb-test', { slackApiUrl: slack.url, retryConfig: { retries: 0 } }),
      now: () => now,
      log: () => {},
    });
    expect(await Promise.all([approvers.has(MEMBER), approvers.has(OUTSIDER)])).toEqual([true, false]);
    expect(groupReads(slack)).toHaveLength(1);
    slack.setUsergroup(GROUP, [OUTSIDER]);
    now += 59_999;
    expect(await approvers.has(MEMBER)).toBe(true);
    expect(groupReads(slack)).toHaveLength(1);
    now += 1;
    expect(await approvers.has(MEMBER)).toBe(false);
    expect(await approvers.has(OUTSIDER)).toBe(true);
    expect(groupReads(slack)).toHaveLength(2);
  });
});

describe('usergroups.users.list on the fake Web API (method reference)', () => {
  it('needs usergroup, answers no_such_subteam, and lists a disabled group only with include_disabled', async () => {
    const slack = await startFakeSlackApi({
      usergroups: { [GROUP]: [MEMBER], S0OFF0001: [LEAVER] },
      disabledUsergroups: ['S0OFF0001'],
    });
    cleanup.push(() => slack.close());
    const list = (args: Record<string, string>) =>
      fetch(`${slack.url}usergroups.users.list`, {
        method: 'POST',
        headers: { authorization: 'Bearer xoxb-test', 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(args).toString(),
      }).then((r) => r.json() as Promise<Record<string, unknown>>);
    expect(await list({ usergroup: GROUP })).toEqual({ ok: true, users: [MEMBER] });
    expect(await list({})).toMatchObject({ ok: false, error: 'invalid_arguments' });
    expect(await list({ usergroup: 'S0NOSUCH1' })).toEqual({ ok: false, error: 'no_such_subteam' });
    expect(await list({ usergroup: 'S0OFF0001' })).toEqual({ ok: false, error: 'no_such_subteam' });
    expect(await list({ usergroup: 'S0OFF0001', include_disabled: 'true' })).toEqual({
      ok: true,
      users: [LEAVER],
    });
  });
});

describe('the approvers group in odt serve', () => {
  it('serveSlack reads the group with the bot token, and the service and the bot share it', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'odt-approvers-serve-'));
    const slack = await startFakeSlackApi({ usergroups: { [GROUP]: [MEMBER] } });
    const served = serveSlack(
      stateDir,
      [PLAIN, GROUP],
      {
        SLACK_BOT_TOKEN: 'xoxb-test',
        SLACK_SIGNING_SECRET: SECRET,
        ODT_APPROVERS_CHANNEL: CHANNEL,
        SLACK_API_URL: slack.url,
      },
      0,
    )!;
    const plane = await startControlPlane({
      stateDir,
      approvers: served.approvers,
      port: 0,
      agentPort: 0,
      chat: served.chat,
    });
    cleanup.push(async () => {
      await served.stop();
      await plane.close();
      await slack.close();
      rmSync(stateDir, { recursive: true, force: true });
    });
    const line = await served.connect(plane);
    const url = line.replace(/^Slack requests at /, '');
    const t = await plane.service.request({
      site: 'acme-dc1',
      requester: REQUESTER,
      items: [{ kind: 'vm', source: 'web-01', target: { vdc: 'acme-vdc' } }],
    });
    expect(await plane.service.isApprover(OUTSIDER)).toBe(false);
    // Slack says OUTSIDER joined: the bot's listener updates what the service asks.
    slack.setUsergroup(GROUP, [MEMBER, OUTSIDER]);
    const body = eventCallback({
      type: 'subteam_members_changed',
      subteam_id: GROUP,
      added_users: [OUTSIDER],
    });
    const res = await signedPost(url, body, { contentType: 'application/json' });
    expect(res.status).toBe(200);
    // The HTTP entry point acknowledges first and works after: wait for the listener's read.
    await expect.poll(() => groupReads(slack).length).toBe(2);
    expect((await plane.service.approve(t.id, OUTSIDER)).phase).toBe('approved');
  });

  it('a user group without Slack is refused by name (it could never be read)', () => {
    expect(() => approversFromEntries([PLAIN, GROUP], undefined)).toThrow(
      `The approvers list is not valid: approvers: ${GROUP} is a Slack user group`,
    );
  });
});

describe('the approvers group on AWS (the Slack function)', () => {
  const SIGNING = 'lambda-signing-secret';
  let fn: SlackFunction;
  beforeAll(async () => {
    fn = await startSlackFunction({
      tableName: 'odt-approvers-group',
      approvers: `${PLAIN}, ${GROUP}`,
      approversChannel: CHANNEL,
      signingSecret: SIGNING,
      slack: { usergroups: { [GROUP]: [MEMBER, LEAVER] } },
    });
  });
  afterAll(() => fn?.close());

  const signed = (body: string, type: string) => signedSlackEvent(body, SIGNING, undefined, type);
  const click = async (user: string, id: string) => {
    const ts = await postApprovalMessage(fn.slack, id);
    const body = new URLSearchParams({
      payload: JSON.stringify(buttonClick(user, 'odt_approve', id, { channel: CHANNEL, ts })),
    }).toString();
    expect((await fn.handler(signed(body, 'application/x-www-form-urlencoded'), {})).statusCode).toBe(200);
  };

  it('refuses a user group in APPROVERS without the Slack secret, naming the variable', () => {
    expect(() =>
      parseConfig({
        TABLE_NAME: 't',
        STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:123456789012:stateMachine:Sneakernet-transfer',
        APPROVERS: GROUP,
      }),
    ).toThrow(/APPROVERS is invalid \(names a Slack user group .*set SLACK_SECRET_ARN/);
  });

  it('reads the group with the bot token of the Slack secret: a member approves, someone else is refused', async () => {
    const runtime = createRuntime(fn.cfg(), { dynamodb: fn.db.client(), secrets: fn.secrets });
    const a = await runtime.service.request({
      site: 'acme',
      providerSite: 'cloud',
      requester: REQUESTER,
      items: [{ kind: 'vm', source: 'web-01', target: { vdc: 'acme-vdc' } }],
    });
    await runtime.service.onWait(a.id, 'approval', 'token-group-1');
    await click(OUTSIDER, a.id);
    expect((await runtime.service.get(a.id)).phase).toBe('requested');
    const [refusal] = ephemeralsTo(fn.slack, OUTSIDER);
    expect(String(refusal?.args.text)).toContain(`${OUTSIDER} is not an approver`);

    await click(MEMBER, a.id);
    expect((await runtime.service.get(a.id)).phase).toBe('approved');
    expect(fn.sfn.calls.filter((c) => c.op === 'SendTaskSuccess').map((c) => c.body.taskToken)).toEqual([
      'token-group-1',
    ]);
    const reads = groupReads(fn.slack);
    expect(reads.length).toBeGreaterThan(0);
    expect(reads.every((c) => c.token === 'xoxb-test' && c.args.usergroup === GROUP)).toBe(true);

    // Slack tells the function that LEAVER left: the container's next decision refuses them.
    fn.slack.setUsergroup(GROUP, [MEMBER]);
    const event = eventCallback({
      type: 'subteam_members_changed',
      subteam_id: GROUP,
      removed_users: [LEAVER],
    });
    expect((await fn.handler(signed(event, 'application/json'), {})).statusCode).toBe(200);
    const b = await runtime.service.request({
      site: 'acme',
      providerSite: 'cloud',
      requester: REQUESTER,
      items: [{ kind: 'vm', source: 'web-02', target: { vdc: 'acme-vdc' } }],
    });
    await click(LEAVER, b.id);
    expect((await runtime.service.get(b.id)).phase).toBe('requested');
    await click(PLAIN, b.id);
    expect((await runtime.service.get(b.id)).phase).toBe('approved');
  });
});
