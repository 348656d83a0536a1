/**
 * Replays across processes: a signed Slack request that already acted is dropped by another bot
 * process over the same store (a restarted `odt serve`, or another Lambda container), because the
 * request's id is kept in the agent registry's nonce table, not in memory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type ControlPlane, startControlPlane } from '../../local/control-plane.ts';
import { type FakeSlackApi, startFakeSlackApi } from '../peers/slack/fake-slack-api.ts';
import {
  APPROVERS,
  buttonClick,
  CHANNEL,
  dmsTo,
  postApprovalMessage,
  REQUESTER,
  signedPost,
  startTestBot,
} from './harness.ts';

let cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function bot(plane: ControlPlane, slack: FakeSlackApi): Promise<string> {
  const { app, url } = await startTestBot(plane.service, slack, { nonces: plane.registry });
  cleanup.push(() => app.stop());
  return url;
}

const deliver = (url: string, body: string, at: number) => signedPost(url, body, { at });

describe('replay protection', () => {
  it('a request replayed to another bot process over the same store acts once', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'odt-replay-'));
    const slack = await startFakeSlackApi();
    const plane = await startControlPlane({ stateDir, approvers: APPROVERS, port: 0, agentPort: 0 });
    cleanup.push(async () => {
      await plane.close();
      await slack.close();
      rmSync(stateDir, { recursive: true, force: true });
    });
    const first = await bot(plane, slack);
    const second = await bot(plane, slack);

    const t = await plane.service.request({
      site: 'acme-dc1',
      requester: REQUESTER,
      items: [{ kind: 'vm', source: 'web-01', target: { vdc: 'acme-vdc' } }],
    });
    const ts = await postApprovalMessage(slack, t.id);
    const click = buttonClick(APPROVERS[0]!, 'odt_approve', t.id, { channel: CHANNEL, ts });
    const body = new URLSearchParams({ payload: JSON.stringify(click) }).toString();
    const at = Math.floor(Date.now() / 1000);

    expect((await deliver(first, body, at)).status).toBe(200);
    expect((await plane.service.get(t.id)).phase).toBe('approved');
    const dms = () => dmsTo(slack, REQUESTER).length;
    const threadPosts = () => slack.ok('chat.postMessage').filter((c) => c.args.thread_ts === ts).length;
    expect([dms(), threadPosts()]).toEqual([1, 1]);

    // The same signed bytes, inside Slack's five minutes, to the other process: acknowledged, dropped.
    expect((await deliver(second, body, at)).status).toBe(200);
    expect([dms(), threadPosts()]).toEqual([1, 1]);
    expect(slack.ok('chat.postEphemeral')).toHaveLength(0);
  });
});
