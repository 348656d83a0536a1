/**
 * The fake Slack Web API's views.publish, as its reference page describes it: user_id and view
 * required, a home view only, hash_conflict for a stale hash, the 100-block limit of views.
 */
import { webApi } from '@slack/bolt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FakeSlackApi, startFakeSlackApi } from '../peers/slack/fake-slack-api.ts';

let slack: FakeSlackApi;
beforeEach(async () => {
  slack = await startFakeSlackApi();
});
afterEach(async () => {
  await slack.close();
});

const call = async (args: Record<string, unknown>): Promise<Record<string, unknown>> => {
  const client = new webApi.WebClient('xoxb-test', { slackApiUrl: slack.url, retryConfig: { retries: 0 } });
  try {
    return (await client.apiCall('views.publish', args)) as unknown as Record<string, unknown>;
  } catch (error) {
    return (error as { data: Record<string, unknown> }).data;
  }
};
const home = (n = 1) => ({
  type: 'home',
  blocks: Array.from({ length: n }, (_, i) => ({
    type: 'section',
    text: { type: 'mrkdwn', text: `line ${i}` },
  })),
});

describe('fake views.publish', () => {
  it('publishes a home view per user and returns it with a hash', async () => {
    const res = await call({ user_id: 'U1', view: JSON.stringify(home()) });
    expect(res.ok).toBe(true);
    const stored = slack.home('U1')!;
    expect(stored.type).toBe('home');
    expect((res.view as { hash: string }).hash).toBe(stored.hash);
    expect(slack.home('U2')).toBeUndefined();
  });

  it('refuses what Slack refuses', async () => {
    expect(await call({ view: JSON.stringify(home()) })).toMatchObject({
      ok: false,
      error: 'invalid_arguments',
    });
    expect(await call({ user_id: 'U1' })).toMatchObject({ ok: false, error: 'invalid_arguments' });
    const modal = { type: 'modal', title: { type: 'plain_text', text: 'x' }, blocks: [] };
    expect(await call({ user_id: 'U1', view: JSON.stringify(modal) })).toMatchObject({
      ok: false,
      error: 'invalid_arguments',
    });
    expect(await call({ user_id: 'U1', view: JSON.stringify(home(101)) })).toMatchObject({
      ok: false,
      error: 'invalid_arguments',
    });
    expect(await call({ user_id: 'U1', view: JSON.stringify(home(100)) })).toMatchObject({ ok: true });
  });

  it('answers hash_conflict when the hash is not the current one', async () => {
    const first = (await call({ user_id: 'U1', view: JSON.stringify(home()) })) as { view: { hash: string } };
    const second = await call({ user_id: 'U1', view: JSON.stringify(home(2)), hash: first.view.hash });
    expect(second.ok).toBe(true);
    expect(await call({ user_id: 'U1', view: JSON.stringify(home(3)), hash: first.view.hash })).toMatchObject(
      {
        ok: false,
        error: 'hash_conflict',
      },
    );
    expect((slack.home('U1')!.blocks as unknown[]).length).toBe(2);
  });
});
