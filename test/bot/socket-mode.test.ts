/**
 * The bot's Socket Mode entry point (what `odt serve` uses when SLACK_BOT_TOKEN and SLACK_APP_TOKEN
 * are set), against Slack's side of Socket Mode (test/peers/slack/fake-socket-mode.ts) and the fake
 * Web API behind it.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '@slack/bolt';
import { afterEach, describe, expect, it } from 'vitest';
import { startSocketBot } from '../../bot/socket.ts';
import { type ControlPlane, startControlPlane } from '../../local/control-plane.ts';
import { type FakeSlackApi, startFakeSlackApi } from '../peers/slack/fake-slack-api.ts';
import { type FakeSocketMode, startFakeSocketMode } from '../peers/slack/fake-socket-mode.ts';
import { repoRoot } from '../support/cli.ts';
import { APPROVERS, CHANNEL, commandFields, REQUESTER, SECRET, sign } from './harness.ts';

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

const slashCommand = (text: string, user = REQUESTER) => commandFields(text, user);

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

/** Runs `odt serve` as its own process with `env`; resolves with its output once `until` shows. */
function serve(stateDir: string, env: Record<string, string>, until: RegExp) {
  const child = spawn(
    process.execPath,
    [
      join(repoRoot, 'bin/odt.mjs'),
      'serve',
      '--state-dir',
      stateDir,
      '--port',
      '0',
      '--agent-port',
      '0',
      '--slack-port',
      '0',
      '--approvers',
      APPROVERS.join(','),
    ],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (c) => {
    out += String(c);
  });
  child.stderr.on('data', (c) => {
    out += String(c);
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const ready = new Promise<string>((resolve, reject) => {
    const timer = setInterval(() => {
      if (until.test(out)) {
        clearInterval(timer);
        resolve(out);
      }
    }, 20);
    void exited.then((code) => {
      clearInterval(timer);
      if (until.test(out)) resolve(out);
      else reject(new Error(`odt serve exited ${code}: ${out}`));
    });
  });
  return { child, ready, exited, output: () => out };
}

describe('odt serve with Slack', () => {
  it('connects over Socket Mode when both tokens are set, answers /odt, and stops cleanly', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'odt-serve-slack-'));
    const api = await startFakeSlackApi();
    const socket = await startFakeSocketMode({ api });
    cleanup.push(async () => {
      await socket.close();
      await api.close();
      rmSync(stateDir, { recursive: true, force: true });
    });
    const s = serve(
      stateDir,
      {
        SLACK_BOT_TOKEN: 'xoxb-test',
        SLACK_APP_TOKEN: 'xapp-test',
        SLACK_API_URL: socket.url,
        ODT_APPROVERS_CHANNEL: CHANNEL,
      },
      /Slack connected \(Socket Mode\)/,
    );
    cleanup.push(async () => {
      s.child.kill('SIGKILL');
    });
    await s.ready;
    await socket.connected();
    const help = await socket.send('slash_commands', slashCommand('help'));
    expect(String(help.text)).toContain('/odt request');
    await socket.send('slash_commands', slashCommand('request'));
    await expect.poll(() => api.ok('views.open').length).toBe(1);
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
    expect(s.output()).toContain('odt serve: stopped');
  }, 30_000);

  it('listens for signed HTTP requests with a signing secret instead of an app token', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'odt-serve-slack-'));
    const api = await startFakeSlackApi();
    cleanup.push(async () => {
      await api.close();
      rmSync(stateDir, { recursive: true, force: true });
    });
    const s = serve(
      stateDir,
      {
        SLACK_BOT_TOKEN: 'xoxb-test',
        SLACK_APP_TOKEN: '',
        SLACK_SIGNING_SECRET: SECRET,
        SLACK_API_URL: api.url,
        ODT_APPROVERS_CHANNEL: CHANNEL,
      },
      /Slack requests at http:\/\/\S+/,
    );
    cleanup.push(async () => {
      s.child.kill('SIGKILL');
    });
    const url = /Slack requests at (http:\/\/\S+)/.exec(await s.ready)![1]!;
    const body = new URLSearchParams(slashCommand('help')).toString();
    const at = Math.floor(Date.now() / 1000);
    const post = (signature: string) =>
      fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-slack-request-timestamp': String(at),
          'x-slack-signature': signature,
        },
        body,
      });
    const ok = await post(sign(SECRET, at, body));
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { text: string }).text).toContain('/odt request');
    expect((await post(sign('forged', at, body))).status).toBe(401);
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
  }, 30_000);

  it('refuses half a Slack configuration, naming what is missing', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'odt-serve-slack-'));
    cleanup.push(async () => rmSync(stateDir, { recursive: true, force: true }));
    const s = serve(stateDir, { SLACK_BOT_TOKEN: 'xoxb-test', SLACK_APP_TOKEN: '' }, /(?!)/);
    await expect(s.ready).rejects.toThrow(/SLACK_APP_TOKEN .* or SLACK_SIGNING_SECRET .*neither is set/);
    expect(await s.exited).not.toBe(0);
  }, 30_000);
});
