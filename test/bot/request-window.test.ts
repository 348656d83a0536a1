/**
 * Slack's five minutes, both ways (issue #18), through `odt serve`'s HTTP entry point
 * (bot/http.ts): a correctly signed request dated more than five minutes from the bot's clock is
 * refused with 401 whichever way it is off (Bolt alone refused only old ones), and a replay inside
 * the window is dropped even at its far edge, because request ids are kept for the whole window,
 * past and future. The clock is injected; Bolt's own check (the real clock) sees every request
 * here as fresh, so what is refused is refused by the window.
 *
 * Socket Mode has nothing to check: Slack signs no requests there (the app-level token
 * authenticates the WebSocket), so it has no timestamps and no test here.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startHttpBot } from '../../bot/http.ts';
import type { Clock } from '../../core/ports/clock.ts';
import { type ControlPlane, startControlPlane } from '../../local/control-plane.ts';
import { type FakeSlackApi, startFakeSlackApi } from '../peers/slack/fake-slack-api.ts';
import {
  APPROVERS,
  buttonClick,
  CHANNEL,
  commandFields,
  postApprovalMessage,
  REQUESTER,
  SECRET,
  signedPost,
} from './harness.ts';

let cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

const minute = 60_000;

/** A clock the test moves; it starts on a whole second, as Slack's timestamps are. */
function testClock(): Clock & { ms: number } {
  const c = { ms: Math.floor(Date.now() / 1000) * 1000, now: () => new Date(c.ms) };
  return c;
}

/** The control plane and the fake Web API, and `odt serve`'s HTTP bot over them on `clock`. */
async function serve(
  clock: Clock,
  opts: { nonces: boolean },
): Promise<{ plane: ControlPlane; slack: FakeSlackApi; url: string }> {
  const stateDir = mkdtempSync(join(tmpdir(), 'odt-window-'));
  const slack = await startFakeSlackApi();
  const plane = await startControlPlane({ stateDir, approvers: APPROVERS, port: 0, agentPort: 0 });
  const env = {
    token: 'xoxb-test',
    signingSecret: SECRET,
    appToken: undefined,
    approvers: APPROVERS,
    approversChannel: CHANNEL,
    apiUrl: slack.url,
  };
  const { app, url } = await startHttpBot(plane.service, env, 0, {
    ...(opts.nonces ? { nonces: plane.registry } : {}),
    clock,
    tokenVerificationEnabled: false,
    botId: 'BBOT',
    botUserId: 'UBOT',
    logLevel: 'error' as never,
  });
  cleanup.push(async () => {
    await app.stop();
    await plane.close();
    await slack.close();
    rmSync(stateDir, { recursive: true, force: true });
  });
  return { plane, slack, url };
}

/** `/odt help`, whose answer is the HTTP response itself: a body means the request acted. */
const help = () => new URLSearchParams(commandFields('help')).toString();
const seconds = (ms: number) => Math.floor(ms / 1000);

describe('the request window of odt serve over HTTP (issue #18)', () => {
  it('refuses a correctly signed approval dated six minutes ahead with 401, and nothing acts', async () => {
    const clock = testClock();
    const { plane, slack, url } = await serve(clock, { nonces: true });
    const t = await plane.service.request({
      site: 'acme-dc1',
      requester: REQUESTER,
      items: [{ kind: 'vm', source: 'web-01', target: { vdc: 'acme-vdc' } }],
    });
    const ts = await postApprovalMessage(slack, t.id);
    const calls = slack.calls.length;
    const click = buttonClick(APPROVERS[0]!, 'odt_approve', t.id, { channel: CHANNEL, ts });
    const body = new URLSearchParams({ payload: JSON.stringify(click) }).toString();

    const res = await signedPost(url, body, { at: seconds(clock.ms + 6 * minute) });

    expect(res.status).toBe(401);
    expect(await res.text()).toBe('');
    expect((await plane.service.get(t.id)).phase).toBe(t.phase);
    expect(slack.calls).toHaveLength(calls);
  });

  it('accepts one dated four minutes ahead, and one four minutes old', async () => {
    const clock = testClock();
    const { url } = await serve(clock, { nonces: true });

    const ahead = await signedPost(url, help(), { at: seconds(clock.ms + 4 * minute) });
    const old = await signedPost(url, help(), { at: seconds(clock.ms - 4 * minute) });

    expect(ahead.status).toBe(200);
    expect(await ahead.text()).toContain('/odt request');
    expect(old.status).toBe(200);
    expect(await old.text()).toContain('/odt request');
  });

  it('refuses one dated far ahead, and again once the ids of its time would have expired', async () => {
    const clock = testClock();
    const { url } = await serve(clock, { nonces: true });
    const body = help();
    const at = seconds(clock.ms + 30 * minute);

    expect((await signedPost(url, body, { at })).status).toBe(401);
    clock.ms += 11 * minute;
    expect((await signedPost(url, body, { at })).status).toBe(401);
  });

  for (const nonces of [true, false]) {
    it(`drops a replay at the far edge of the window (ids kept ${nonces ? 'in the registry' : 'in memory'})`, async () => {
      const clock = testClock();
      const { url } = await serve(clock, { nonces });
      const body = help();
      // Dated the whole window ahead: admissible from now until ten minutes from now.
      const at = seconds(clock.ms) + 300;

      const first = await signedPost(url, body, { at });
      expect(first.status).toBe(200);
      expect(await first.text()).toContain('/odt request');

      // Ten minutes on, the timestamp is just inside the window: the id must still be known.
      clock.ms += 10 * minute;
      const replay = await signedPost(url, body, { at });
      expect(replay.status).toBe(200);
      expect(await replay.text()).toBe('');

      // A millisecond later the window refuses it; an id kept no longer than this is enough.
      clock.ms += 1;
      expect((await signedPost(url, body, { at })).status).toBe(401);
    });
  }
});
