import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FakeSlackApi, startFakeSlackApi } from '../peers/slack/fake-slack-api.ts';

let slack: FakeSlackApi;
beforeEach(async () => {
  slack = await startFakeSlackApi({
    tokens: { 'xoxb-test': ['chat:write'], 'xoxb-all': ['chat:write', 'channels:read'] },
    channels: { CAPPROVERS: ['UAPPROVER1'] },
  });
});
afterEach(() => slack.close());

async function form(method: string, args: Record<string, string>, token = 'xoxb-test') {
  const res = await fetch(`${slack.url}${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${token}` },
    body: new URLSearchParams(args).toString(),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

async function json(method: string, args: unknown, token = 'xoxb-test') {
  const res = await fetch(`${slack.url}${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json; charset=utf-8', authorization: `Bearer ${token}` },
    body: JSON.stringify(args),
  });
  return (await res.json()) as Record<string, unknown>;
}

const section = (text: string) => ({ type: 'section', text: { type: 'mrkdwn', text } });

describe('the fake Slack Web API', () => {
  it('posts and updates messages, form-encoded or JSON, and records the calls', async () => {
    const posted = await form('chat.postMessage', {
      channel: 'C1',
      text: 'hi',
      blocks: JSON.stringify([section('hi')]),
    });
    expect(posted).toMatchObject({ ok: true, channel: 'C1' });
    expect(posted.ts).toMatch(/^\d+\.\d{6}$/);
    const updated = await json('chat.update', { channel: 'C1', ts: posted.ts, text: 'bye' });
    expect(updated.ok).toBe(true);
    expect(slack.message('C1', posted.ts as string)?.text).toBe('bye');
    expect(slack.calls.map((c) => c.method)).toEqual(['chat.postMessage', 'chat.update']);
    expect(slack.calls[0]?.args.blocks).toEqual([section('hi')]);
  });

  it('refuses calls without their required arguments', async () => {
    expect(await form('chat.postMessage', { text: 'x' })).toMatchObject({
      ok: false,
      error: 'channel_not_found',
    });
    expect(await form('chat.postMessage', { channel: 'C1' })).toMatchObject({ ok: false, error: 'no_text' });
    expect(await form('chat.update', { channel: 'C1', text: 'x' })).toMatchObject({
      error: 'invalid_arguments',
    });
    expect(await form('chat.update', { channel: 'C1', ts: '1.000001', text: 'x' })).toMatchObject({
      error: 'message_not_found',
    });
    expect(await form('chat.postEphemeral', { channel: 'C1', text: 'x' })).toMatchObject({
      error: 'invalid_arguments',
    });
    expect(
      await form('chat.postEphemeral', { channel: 'CAPPROVERS', user: 'UOTHER', text: 'x' }),
    ).toMatchObject({
      error: 'user_not_in_channel',
    });
    const noTrigger = await json('views.open', {
      view: { type: 'modal', title: { type: 'plain_text', text: 't' }, blocks: [] },
    });
    expect(noTrigger).toMatchObject({ ok: false, error: 'invalid_arguments' });
    expect((noTrigger.response_metadata as { messages: string[] }).messages[0]).toContain('trigger_id');
    expect(await json('views.publish', { view: { type: 'home', blocks: [] } })).toMatchObject({
      error: 'invalid_arguments',
    });
    expect(
      await json('views.update', {
        view: { type: 'modal', title: { type: 'plain_text', text: 't' }, blocks: [] },
      }),
    ).toMatchObject({
      error: 'invalid_arguments',
    });
    expect(slack.failed()).toHaveLength(9);
  });

  it('checks tokens and scopes', async () => {
    const res = await fetch(`${slack.url}auth.test`, { method: 'POST' });
    expect(await res.json()).toMatchObject({ ok: false, error: 'not_authed' });
    expect(await form('auth.test', {}, 'xoxb-wrong')).toMatchObject({ ok: false, error: 'invalid_auth' });
    expect(await form('auth.test', {})).toMatchObject({ ok: true, user_id: 'UBOT', bot_id: 'BBOT' });
    expect(await form('conversations.members', { channel: 'CAPPROVERS' })).toMatchObject({
      ok: false,
      error: 'missing_scope',
      needed: 'channels:read,groups:read',
    });
    expect(await form('conversations.members', { channel: 'CAPPROVERS' }, 'xoxb-all')).toMatchObject({
      ok: true,
      members: ['UAPPROVER1'],
    });
  });

  it('enforces Block Kit and modal limits', async () => {
    const many = Array.from({ length: 51 }, (_, i) => section(`b${i}`));
    expect(await json('chat.postMessage', { channel: 'C1', blocks: many })).toMatchObject({
      error: 'invalid_arguments',
    });
    expect(
      await json('chat.postMessage', { channel: 'C1', blocks: [section('x'.repeat(3001))] }),
    ).toMatchObject({
      error: 'invalid_blocks',
    });
    const button = {
      type: 'button',
      text: { type: 'plain_text', text: 'Go' },
      action_id: 'a',
      value: 'v'.repeat(2001),
    };
    expect(
      await json('chat.postMessage', { channel: 'C1', blocks: [{ type: 'actions', elements: [button] }] }),
    ).toMatchObject({ error: 'invalid_blocks' });
    const input = {
      type: 'input',
      label: { type: 'plain_text', text: 'l' },
      element: { type: 'plain_text_input' },
    };
    const noSubmit = { type: 'modal', title: { type: 'plain_text', text: 'A title' }, blocks: [input] };
    expect(await json('views.open', { trigger_id: '1.2.3', view: noSubmit })).toMatchObject({
      error: 'invalid_arguments',
    });
    const longTitle = { type: 'modal', title: { type: 'plain_text', text: 'x'.repeat(25) }, blocks: [] };
    expect(await json('views.open', { trigger_id: '1.2.4', view: longTitle })).toMatchObject({
      error: 'invalid_arguments',
    });
    const ok = { ...noSubmit, submit: { type: 'plain_text', text: 'Send' } };
    expect(await json('views.open', { trigger_id: '1.2.5', view: ok })).toMatchObject({ ok: true });
    expect(await json('views.open', { trigger_id: '1.2.5', view: ok })).toMatchObject({
      error: 'exchanged_trigger_id',
    });
  });
});
