import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkOptionsResponse, type FakeSlackApi, startFakeSlackApi } from '../peers/slack/fake-slack-api.ts';

let slack: FakeSlackApi;
beforeEach(async () => {
  slack = await startFakeSlackApi();
});
afterEach(() => slack.close());

async function json(method: string, args: unknown) {
  const res = await fetch(`${slack.url}${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json; charset=utf-8', authorization: 'Bearer xoxb-test' },
    body: JSON.stringify(args),
  });
  return (await res.json()) as Record<string, unknown> & { view?: { id: string; hash: string } };
}

const plain = (text: string) => ({ type: 'plain_text', text });
const opt = (text: string, value = text) => ({ text: plain(text), value });
const modal = (blocks: unknown[]) => ({ type: 'modal', title: plain('t'), submit: plain('Go'), blocks });
const inputOf = (element: Record<string, unknown>, blockId = 'b') => ({
  type: 'input',
  block_id: blockId,
  label: plain('L'),
  element: { action_id: 'a', ...element },
});
let n = 0;
const open = (view: unknown) => json('views.open', { trigger_id: `t.${++n}`, view });
const refusal = async (view: unknown) => {
  const r = await open(view);
  expect(r.ok).toBe(false);
  return `${r.error} ${JSON.stringify(r.errors ?? r.response_metadata ?? '')}`;
};

describe('views.update as Slack documents it', () => {
  it('needs exactly one of view_id and external_id, a known view, and the current hash', async () => {
    const opened = (await open(modal([]))).view!;
    const next = modal([{ type: 'section', text: plain('x') }]);
    expect(await json('views.update', { view: next })).toMatchObject({ error: 'invalid_arguments' });
    expect(await json('views.update', { view_id: opened.id, external_id: 'e', view: next })).toMatchObject({
      error: 'invalid_arguments',
    });
    expect(await json('views.update', { view_id: 'VNOPE', view: next })).toMatchObject({
      error: 'not_found',
    });
    const first = await json('views.update', { view_id: opened.id, hash: opened.hash, view: next });
    expect(first.ok).toBe(true);
    expect(first.view!.hash).not.toBe(opened.hash);
    // The old hash is stale now.
    expect(await json('views.update', { view_id: opened.id, hash: opened.hash, view: next })).toMatchObject({
      error: 'hash_conflict',
    });
    expect(
      await json('views.update', { view_id: opened.id, hash: first.view!.hash, view: next }),
    ).toMatchObject({
      ok: true,
    });
    expect(slack.view(opened.id)).toMatchObject({ blocks: next.blocks });
  });
});

describe('input elements', () => {
  it('accepts the request modal’s kinds of element', async () => {
    const r = await open(
      modal([
        inputOf({ type: 'static_select', options: [opt('a'), opt('b')], initial_option: opt('a') }, 's'),
        inputOf({ type: 'multi_external_select', min_query_length: 0, max_selected_items: 2 }, 'i'),
        inputOf(
          {
            type: 'checkboxes',
            options: [opt('Deploy', 'deploy')],
            initial_options: [opt('Deploy', 'deploy')],
          },
          'c',
        ),
        inputOf(
          {
            type: 'number_input',
            is_decimal_allowed: true,
            min_value: '0.1',
            initial_value: '100',
            dispatch_action_config: { trigger_actions_on: ['on_enter_pressed'] },
          },
          'n',
        ),
      ]),
    );
    expect(r.ok).toBe(true);
  });

  it('refuses what Slack refuses', async () => {
    expect(
      await refusal(modal([inputOf({ type: 'static_select', options: [opt('x'.repeat(76))] })])),
    ).toContain('option text over 75');
    expect(
      await refusal(modal([inputOf({ type: 'static_select', options: [opt('a', 'v'.repeat(151))] })])),
    ).toContain('option value');
    const many = Array.from({ length: 101 }, (_, i) => opt(`o${i}`));
    expect(await refusal(modal([inputOf({ type: 'static_select', options: many })]))).toContain(
      '100 options',
    );
    expect(
      await refusal(
        modal([inputOf({ type: 'static_select', options: [opt('a')], initial_option: opt('b') })]),
      ),
    ).toContain('initial option');
    const eleven = Array.from({ length: 11 }, (_, i) => opt(`c${i}`));
    expect(await refusal(modal([inputOf({ type: 'checkboxes', options: eleven })]))).toContain('10 options');
    expect(
      await refusal(modal([inputOf({ type: 'multi_external_select', max_selected_items: 0 })])),
    ).toContain('max_selected_items');
    expect(await refusal(modal([inputOf({ type: 'number_input', min_value: '1' })]))).toContain(
      'is_decimal_allowed',
    );
    expect(
      await refusal(modal([inputOf({ type: 'number_input', is_decimal_allowed: false, min_value: '0.5' })])),
    ).toContain('whole number');
    expect(
      await refusal(
        modal([
          inputOf({ type: 'number_input', is_decimal_allowed: true, min_value: '5', initial_value: '1' }),
        ]),
      ),
    ).toContain('initial_value');
    expect(
      await refusal(
        modal([inputOf({ type: 'plain_text_input' }, 'x'), inputOf({ type: 'plain_text_input' }, 'x')]),
      ),
    ).toContain('duplicate block_id');
    expect(await refusal(modal([inputOf({ type: 'plain_text_input' }, 'x'.repeat(256))]))).toContain(
      'block_id',
    );
  });
});

describe('checkOptionsResponse (the answer to block_suggestion)', () => {
  it('reads options or option groups within the limits', () => {
    expect(checkOptionsResponse({ options: [opt('a', '1')] })).toEqual([{ text: 'a', value: '1' }]);
    expect(
      checkOptionsResponse({ option_groups: [{ label: plain('G'), options: [opt('a', '1')] }] }),
    ).toEqual([{ text: 'a', value: '1', group: 'G' }]);
    expect(() => checkOptionsResponse({})).toThrow('exactly one of');
    expect(() => checkOptionsResponse({ options: [opt('x'.repeat(76))] })).toThrow('75');
    expect(() =>
      checkOptionsResponse({ option_groups: [{ label: plain('L'.repeat(76)), options: [] }] }),
    ).toThrow('label');
    const half = Array.from({ length: 60 }, (_, i) => opt(`o${i}`));
    expect(() =>
      checkOptionsResponse({
        option_groups: [
          { label: plain('A'), options: half },
          { label: plain('B'), options: half },
        ],
      }),
    ).toThrow('at most 100 options in all');
  });
});
