import { afterEach, describe, expect, it } from 'vitest';
import { checkOptionsResponse } from '../peers/slack/fake-slack-api.ts';
import {
  CHANNEL,
  type Harness,
  type HarnessOptions,
  itemsSuggestion,
  itemValue,
  REQUESTER,
  requestValues,
  SITE,
  startHarness,
  submission,
  trigger,
  visible,
} from './harness.ts';
import { defaultInventory, enrollExportAgent, reported } from './inventory.ts';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

const start = async (opts: HarnessOptions = {}) => {
  h = await startHarness(opts);
  return h;
};

type View = {
  id: string;
  hash: string;
  callback_id: string;
  private_metadata: string;
  blocks: {
    type: string;
    block_id?: string;
    text?: { text: string };
    hint?: { text: string };
    element?: Record<string, unknown> & { type: string; initial_options?: { value: string }[] };
  }[];
};

/** `/odt request` → the view Slack now shows (as the fake stores it, with id and hash). */
async function openModal(user = REQUESTER): Promise<View> {
  expect((await h.command('request', user)).status).toBe(200);
  const opened = h.slack.ok('views.open').at(-1)!;
  return opened.response.view as View;
}

const block = (v: View, id: string) => v.blocks.find((b) => b.block_id === id);

/** A block_suggestion request as Slack sends it when the items select opens or the person types. */
async function suggest(view: View, value: string) {
  const res = await h.interaction(itemsSuggestion(view, value));
  expect(res.status).toBe(200);
  return checkOptionsResponse(await res.json());
}

/** A block_actions payload from the modal: `values` is the view's state after the change. */
function change(
  view: View,
  actionId: string,
  blockId: string,
  values: Record<string, Record<string, unknown>>,
) {
  return {
    type: 'block_actions',
    user: { id: REQUESTER, username: 'customer', team_id: 'TFAKE' },
    team: { id: 'TFAKE', domain: 'fake' },
    api_app_id: 'AODT',
    token: 'legacy',
    trigger_id: trigger(),
    container: { type: 'view', view_id: view.id },
    view: { ...view, state: { values } },
    actions: [{ type: 'x', action_id: actionId, block_id: blockId, action_ts: `${Date.now() / 1000}` }],
  };
}

const selection = (site: string, names: readonly string[]) => ({
  [`items:${site}`]: {
    odt_req_items: {
      type: 'multi_external_select',
      selected_options: names.map((n) => ({ text: { type: 'plain_text', text: n }, value: itemValue(n) })),
    },
  },
});
const siteState = (site: string) => ({
  site: { odt_req_site: { type: 'static_select', selected_option: { value: site } } },
});
const linkState = (v: string) => ({ link: { odt_req_link: { type: 'number_input', value: v } } });

async function submit(
  values: Record<string, Record<string, unknown>>,
  meta = JSON.stringify({ site: SITE }),
) {
  const res = await h.interaction(submission(REQUESTER, 'odt_request_modal', values, meta));
  expect(res.status).toBe(200);
  const text = await res.text();
  return (text ? JSON.parse(text) : {}) as { response_action?: string; errors?: Record<string, string> };
}

describe('opening the request modal', () => {
  it('offers the sites that reported an inventory and preselects the only one', async () => {
    await start();
    const view = await openModal();
    expect(view.callback_id).toBe('odt_request_modal');
    const site = block(view, 'site')!.element!;
    expect(site.type).toBe('static_select');
    expect((site.options as { value: string }[]).map((o) => o.value)).toEqual([SITE]);
    expect((site.initial_option as { value: string }).value).toBe(SITE);
    expect(JSON.parse(view.private_metadata)).toEqual({ site: SITE });
    const items = block(view, `items:${SITE}`)!.element!;
    expect(items).toMatchObject({
      type: 'multi_external_select',
      action_id: 'odt_req_items',
      min_query_length: 0,
    });
    expect(block(view, 'link')!.element).toMatchObject({ type: 'number_input', initial_value: '100' });
    expect(h.slack.failed()).toEqual([]);
  });

  it('with several sites nothing is preselected; a site with an agent but no inventory is not offered', async () => {
    await start();
    await enrollExportAgent(h.plane, 'globex', [reported('vm', 'gx-01', 10e9)]);
    // An ODT node enrolls too but reports no inventory (import role).
    await enrollExportAgent(h.plane, 'provider', undefined, 'provider-odt-node');
    const view = await openModal();
    const site = block(view, 'site')!.element!;
    expect((site.options as { value: string }[]).map((o) => o.value)).toEqual([SITE, 'globex']);
    expect(site.initial_option).toBeUndefined();
    expect(block(view, 'items')!.element!.placeholder).toMatchObject({ text: 'Choose the site first' });
  });

  it('without any reported inventory it says how to enroll an agent, and has no submit', async () => {
    await start({ inventory: false });
    const view = (await openModal()) as View & { submit?: unknown };
    expect(view.submit).toBeUndefined();
    expect(visible(view.blocks)).toContain('/odt agent enroll <site>');
  });
});

describe('the items select (options load URL)', () => {
  it('lists the inventory grouped by kind, marking VMs, templates and vApps with their sizes', async () => {
    await start();
    const options = await suggest(await openModal(), '');
    expect(options.map((o) => [o.group, o.text])).toEqual([
      ['VMs (2)', 'VM db-01 · 120 GB'],
      ['VMs (2)', 'VM web-01 · 40 GB'],
      ['Templates (1)', 'Template ubuntu-22-tmpl · 20 GB'],
      ['vApps (1)', 'vApp erp (1 VM) · 300 GB'],
    ]);
    expect(options.map((o) => o.value)).toContain('vm:/DC0/vm/web-01');
  });

  it('filters as the person types: every word must match the kind, name or path', async () => {
    await start();
    const view = await openModal();
    expect((await suggest(view, 'WEB')).map((o) => o.text)).toEqual(['VM web-01 · 40 GB']);
    expect((await suggest(view, 'template')).map((o) => o.text)).toEqual(['Template ubuntu-22-tmpl · 20 GB']);
    expect((await suggest(view, 'vm 01')).map((o) => o.text)).toEqual([
      'VM db-01 · 120 GB',
      'VM web-01 · 40 GB',
    ]);
    const none = await h.interaction(itemsSuggestion(view, 'nothing-like-this'));
    expect(await none.json()).toEqual({ options: [] });
  });

  it('stays within Slack limits: 100 options, 75-character texts, 150-character values', async () => {
    const longName = `app-${'x'.repeat(120)}`;
    const many = Array.from({ length: 250 }, (_, i) =>
      reported('vm', `vm-${String(i).padStart(3, '0')}`, 1e9),
    );
    const deep = reported('vm', longName, 5e9, `${'folder/'.repeat(10)}end`);
    await start({ inventory: [...many, deep, reported('template', 'tmpl-a', 2e9)] });
    const view = await openModal();
    const all = await suggest(view, '');
    expect(all).toHaveLength(100);
    expect(all[0]!.group).toBe('VMs (100 of 251; type to narrow)');
    const long = await suggest(view, 'app-');
    expect(long).toHaveLength(1);
    expect(long[0]!.text.length).toBeLessThanOrEqual(75);
    expect(long[0]!.text).toMatch(/^VM app-x+… · 5\.0 GB$/);
    expect(long[0]!.value.length).toBeLessThanOrEqual(150);
    // The digest value still resolves on submission.
    const res = await submit({
      ...requestValues({ items: [] }),
      [`items:${SITE}`]: {
        odt_req_items: { type: 'multi_external_select', selected_options: [{ value: long[0]!.value }] },
      },
    });
    expect(res.errors).toBeUndefined();
    const [t] = await h.plane.service.list();
    expect(t!.items[0]).toMatchObject({ kind: 'vm', source: longName, sizeBytes: 5e9 });
  });
});

describe('live updates (dispatch_action → views.update)', () => {
  it('a selection adds per-item deploy / power on and the estimate; a new link speed updates it', async () => {
    await start({ inventory: [...defaultInventory, reported('vm', 'big-01', 1e12)] });
    const view = await openModal();
    const values = { ...siteState(SITE), ...selection(SITE, ['big-01']), ...linkState('100') };
    expect((await h.interaction(change(view, 'odt_req_items', `items:${SITE}`, values))).status).toBe(200);
    const update = h.slack.ok('views.update').at(-1)!;
    expect(update.args.view_id).toBe(view.id);
    expect(update.args.hash).toBe(view.hash);
    const updated = update.response.view as View;
    const opts = block(updated, 'item:vm:/DC0/vm/big-01')!;
    expect(opts.element).toMatchObject({ type: 'checkboxes', initial_options: [{ value: 'deploy' }] });
    const estimate = block(updated, 'estimate')!.text!.text;
    expect(estimate).toContain('*Total:* 1.0 TB in 1 item');
    expect(estimate).toContain("*Over the site's 100 Mbit/s link:* ~22 h");
    expect(estimate).toContain('*Shipping the NAS:* ~5 days');
    expect(estimate).toContain('The link is faster');
    expect(block(updated, `items:${SITE}`)!.element!.initial_options).toEqual([
      { text: { type: 'plain_text', text: 'VM big-01 · 1.0 TB', emoji: true }, value: 'vm:/DC0/vm/big-01' },
    ]);

    // 10 Mbit/s, Enter: the same terabyte takes 9 days; ship.
    const slower = { ...values, ...linkState('10') };
    await h.interaction(change(updated, 'odt_req_link', 'link', slower));
    const again = h.slack.ok('views.update').at(-1)!.response.view as View;
    const text = block(again, 'estimate')!.text!.text;
    expect(text).toContain("*Over the site's 10 Mbit/s link:* ~9.3 days");
    expect(text).toContain('*Ship the NAS*');
    expect(h.slack.failed()).toEqual([]);
  });

  it('keeps each item’s ticked boxes; a stale hash (a newer update won) changes nothing and errs nowhere', async () => {
    await start();
    const view = await openModal();
    const values = {
      ...siteState(SITE),
      ...selection(SITE, ['web-01', 'ubuntu-22-tmpl']),
      ...linkState('100'),
      [`item:${itemValue('web-01')}`]: {
        odt_req_item_opts: {
          type: 'checkboxes',
          selected_options: [{ value: 'deploy' }, { value: 'powerOn' }],
        },
      },
    };
    await h.interaction(change(view, 'odt_req_items', `items:${SITE}`, values));
    const updated = h.slack.ok('views.update').at(-1)!.response.view as View;
    expect(
      block(updated, `item:${itemValue('web-01')}`)!.element!.initial_options!.map((o) => o.value),
    ).toEqual(['deploy', 'powerOn']);
    expect(block(updated, `item:${itemValue('ubuntu-22-tmpl')}`)!.hint!.text).toContain('catalog');
    // The same change again, from the view as it was before the update: its hash is stale.
    const res = await h.interaction(change(view, 'odt_req_items', `items:${SITE}`, values));
    expect(res.status).toBe(200);
    expect(h.slack.failed().map((c) => c.response.error)).toEqual(['hash_conflict']);
  });

  it('choosing another site empties the items (a new block id) and drives the options', async () => {
    await start();
    await enrollExportAgent(h.plane, 'globex', [reported('vm', 'gx-01', 10e9)]);
    const view = await openModal();
    const values = { ...siteState('globex'), ...selection(SITE, ['web-01']), ...linkState('100') };
    await h.interaction(change(view, 'odt_req_site', 'site', values));
    const updated = h.slack.ok('views.update').at(-1)!.response.view as View;
    expect(JSON.parse(updated.private_metadata)).toEqual({ site: 'globex' });
    expect(block(updated, `items:${SITE}`)).toBeUndefined();
    expect(block(updated, 'items:globex')!.element!.initial_options).toBeUndefined();
    expect(updated.blocks.some((b) => b.block_id?.startsWith('item:'))).toBe(false);
    const options = await suggest(updated, '');
    expect(options.map((o) => o.text)).toEqual(['VM gx-01 · 10 GB']);
  });
});

describe('submission', () => {
  it('creates the transfer with the items, kinds, targets and choices; the approvers see the estimate', async () => {
    await start();
    const res = await submit(
      requestValues({
        items: ['web-01', 'ubuntu-22-tmpl', 'erp'],
        catalog: 'golden',
        network: 'acme-net',
        link: '50',
        choices: { 'web-01': ['deploy', 'powerOn'], erp: [] },
      }),
    );
    expect(res).toEqual({});
    const [t] = await h.plane.service.list();
    expect(t!.site).toBe(SITE);
    expect(t!.requester).toBe(REQUESTER);
    expect(t!.items.map((i) => [i.kind, i.source, i.sizeBytes, i.target])).toEqual([
      [
        'vm',
        'web-01',
        40e9,
        { vdc: 'acme-vdc', placement: 'vapp', network: 'acme-net', deploy: true, powerOn: true },
      ],
      [
        'template',
        'ubuntu-22-tmpl',
        20e9,
        {
          vdc: 'acme-vdc',
          placement: 'catalog',
          catalog: 'golden',
          network: 'acme-net',
          deploy: true,
          powerOn: false,
        },
      ],
      [
        'vapp',
        'erp',
        300e9,
        { vdc: 'acme-vdc', placement: 'vapp', network: 'acme-net', deploy: false, powerOn: false },
      ],
    ]);
    const posted = h.slack.ok('chat.postMessage').find((c) => c.args.channel === CHANNEL)!;
    const seen = visible(posted.args.blocks);
    expect(seen).toContain('*Total:* 360 GB in 3 items');
    // 360 GB × 8 / 50 Mbit/s = 57,600 s = 16 h.
    expect(seen).toContain("*Over the site's 50 Mbit/s link:* ~16 h");
    expect(seen).toContain('Approve');
    const dm = h.slack.ok('chat.postMessage').find((c) => c.args.channel === REQUESTER)!;
    expect(visible(dm.args.blocks)).toContain(`Your transfer \`${t!.id}\` was requested`);
    expect(visible(dm.args.blocks)).toContain("*Over the site's 50 Mbit/s link:* ~16 h");
  });

  it('shows errors on the fields: link speed, catalog for templates, no items', async () => {
    await start();
    const res = await submit(requestValues({ items: ['ubuntu-22-tmpl'], link: '0' }));
    expect(res.response_action).toBe('errors');
    expect(Object.keys(res.errors!).sort()).toEqual(['catalog', 'link']);
    expect(res.errors!.catalog).toBe('name the catalog for the template ubuntu-22-tmpl');
    expect(res.errors!.link).toContain('Mbit/s');
    const blank = await submit(requestValues({ link: '' }));
    expect(Object.keys(blank.errors!)).toEqual(['link']);
    const noSite = await submit(
      { ...requestValues(), site: { odt_req_site: { type: 'static_select', selected_option: null } } },
      '',
    );
    expect(noSite.errors).toEqual({ site: 'choose the site whose VMs move' });
    expect(await h.plane.service.list()).toHaveLength(0);
  });

  it("puts the service's per-item validation errors on that item's checkboxes", async () => {
    await start();
    const res = await submit(
      requestValues({ items: ['db-01', 'web-01'], choices: { 'web-01': ['powerOn'] } }),
    );
    expect(res.response_action).toBe('errors');
    expect(Object.keys(res.errors!)).toEqual([`item:${itemValue('web-01')}`]);
    expect(res.errors![`item:${itemValue('web-01')}`]).toContain('powerOn needs deploy');
  });

  it('a template with deploy and power on goes to the catalog and runs as a vApp, powered on', async () => {
    await start();
    const res = await submit(
      requestValues({
        items: ['ubuntu-22-tmpl'],
        catalog: 'golden',
        choices: { 'ubuntu-22-tmpl': ['deploy', 'powerOn'] },
      }),
    );
    expect(res.response_action).toBeUndefined();
    const transfers = await h.plane.service.list();
    expect(transfers).toHaveLength(1);
    expect(transfers[0]!.items[0]!).toMatchObject({
      kind: 'template',
      target: { placement: 'catalog', catalog: 'golden', deploy: true, powerOn: true },
    });
  });

  it('refuses items that are no longer in the inventory (stale selection), naming them', async () => {
    await start();
    const agent = await enrollExportAgent(h.plane, SITE, defaultInventory, 'acme-dc1-second');
    // The agent reports again: db-01 was deleted in vCenter meanwhile.
    await agent.reportInventory(defaultInventory.filter((i) => i.name !== 'db-01'));
    const res = await submit(requestValues({ items: ['web-01', 'db-01'] }));
    expect(res.response_action).toBe('errors');
    expect(Object.keys(res.errors!)).toEqual([`items:${SITE}`]);
    expect(res.errors![`items:${SITE}`]).toMatch(
      /^db-01 is no longer in acme-dc1's inventory \(reported .+\); remove it/,
    );
    expect(await h.plane.service.list()).toHaveLength(0);
  });

  it('a site that never reported an inventory is refused on the site field', async () => {
    await start();
    const res = await submit(requestValues({ site: 'initech' }), JSON.stringify({ site: 'initech' }));
    expect(Object.keys(res.errors!)).toEqual(['site']);
    expect(res.errors!.site).toContain('/odt agent enroll initech');
  });
});
