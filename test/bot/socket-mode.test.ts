/**
 * The bot's Socket Mode entry point (what `odt serve` uses when SLACK_BOT_TOKEN and SLACK_APP_TOKEN
 * are set), against Slack's side of Socket Mode (test/peers/slack/fake-socket-mode.ts) and the fake
 * Web API behind it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '@slack/bolt';
import { afterEach, describe, expect, it } from 'vitest';
import { startSocketBot } from '../../bot/socket.ts';
import { type ControlPlane, startControlPlane } from '../../local/control-plane.ts';
import { type FakeSlackApi, startFakeSlackApi } from '../peers/slack/fake-slack-api.ts';
import { type FakeSocketMode, startFakeSocketMode } from '../peers/slack/fake-socket-mode.ts';
import { APPROVERS, CHANNEL, REQUESTER } from './harness.ts';

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function setUp(appToken = 'xapp-test') {
  const stateDir = mkdtempSync(join(tmpdir(), 'odt-socket-'));
  const api: FakeSlackApi = await startFakeSlackApi();
  const socket: FakeSocketMode = await startFakeSocketMode({ api, appTokens: ['xapp-test'] });
  const plane: ControlPlane = await startControlPlane({
    stateDir,
    approvers: APPROVERS,
    port: 0,
    agentPort: 0,
  });
  cleanup.push(async () => {
    await plane.close();
    await socket.close();
    await api.close();
    rmSync(stateDir, { recursive: true, force: true });
  });
  const start = () =>
    startSocketBot(
      plane.service,
      {
        token: 'xoxb-test',
        signingSecret: '',
        appToken,
        approvers: APPROVERS,
        approversChannel: CHANNEL,
        apiUrl: socket.url,
      },
      { clientOptions: { retryConfig: { retries: 0 } }, logLevel: 'error' as never },
    );
  return { api, socket, plane, start };
}

let triggers = 0;
const slashCommand = (text: string, user = REQUESTER) => ({
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
  trigger_id: `${Date.now()}.${++triggers}.socket`,
});

describe('Socket Mode', () => {
  it('connects with the app-level token and answers /odt over the WebSocket', async () => {
    const { api, socket, start } = await setUp();
    const app: App = await start();
    cleanup.push(() => app.stop() as Promise<void>);
    await socket.connected();
    expect(socket.connections()).toBe(1);
    // Bolt checked the bot token with auth.test through the same base URL.
    expect(api.ok('auth.test').length).toBeGreaterThan(0);

    const help = await socket.send('slash_commands', slashCommand('help'));
    expect(help.response_type).toBe('ephemeral');
    expect(String(help.text)).toContain('/odt request');

    const unknown = await socket.send('slash_commands', slashCommand('frobnicate'));
    expect(String(unknown.text)).toContain('frobnicate');

    await socket.send('slash_commands', slashCommand('request'));
    // The ack goes first; the modal opens right after, through the Web API.
    await expect.poll(() => api.ok('views.open').length).toBe(1);
    const opened = api.ok('views.open')[0]!;
    expect((opened.args.view as { callback_id: string }).callback_id).toBe('odt_request_modal');
  });

  it('a button click arrives as an interactive envelope and moves the transfer', async () => {
    const { api, socket, plane, start } = await setUp();
    const app = await start();
    cleanup.push(() => app.stop() as Promise<void>);
    await socket.connected();
    const t = await plane.service.request({
      site: 'acme-dc1',
      requester: REQUESTER,
      items: [{ kind: 'vm', source: 'web-01', target: { vdc: 'acme-vdc' } }],
    });
    const approver = APPROVERS[0]!;
    const posted = await app.client.chat.postMessage({ channel: CHANNEL, text: `approve ${t.id}?` });
    const ts = posted.ts!;
    await socket.send('interactive', {
      type: 'block_actions',
      team: { id: 'TFAKE', domain: 'fake' },
      user: { id: approver, username: 'approver', team_id: 'TFAKE' },
      api_app_id: 'AODT',
      token: 'legacy',
      trigger_id: `${Date.now()}.2.socket`,
      container: { type: 'message', message_ts: ts, channel_id: CHANNEL },
      channel: { id: CHANNEL, name: 'approvers' },
      message: { type: 'message', ts, text: '' },
      actions: [{ type: 'button', action_id: 'odt_approve', block_id: 'b', value: t.id, action_ts: '1' }],
    });
    await expect.poll(async () => (await plane.service.get(t.id)).phase).toBe('approved');
    await expect.poll(() => api.ok('chat.postMessage').some((c) => c.args.channel === REQUESTER)).toBe(true);
    expect(JSON.stringify(api.message(CHANNEL, ts)?.blocks)).toContain(`Approved by <@${approver}>`);
  });

  it('a wrong app-level token is refused with the reason, and nothing connects', async () => {
    const { api, socket, start } = await setUp('xapp-wrong');
    await expect(start()).rejects.toThrow(/invalid_auth/);
    expect(socket.connections()).toBe(0);
    // Bolt's own check of the bot token runs beside it; let it end before the peers close.
    await expect.poll(() => api.ok('auth.test').length).toBe(1);
  });
});
