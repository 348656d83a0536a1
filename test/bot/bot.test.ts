import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  APPROVERS,
  buttonClick,
  CHANNEL,
  dmsTo,
  ephemeralsTo,
  type Harness,
  REQUESTER,
  requestTransfer,
  requestValues,
  startHarness,
  submission,
  text,
  visible,
} from './harness.ts';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h?.close();
});

const [APPROVER, OTHER_APPROVER] = APPROVERS as [string, string];

describe('/odt', () => {
  it('help answers with the commands, ephemerally', async () => {
    const res = await h.command('help');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { response_type: string; blocks: unknown[] };
    expect(body.response_type).toBe('ephemeral');
    const seen = visible(body.blocks);
    for (const c of ['/odt request', '/odt status', '/odt list', '/odt cancel']) expect(seen).toContain(c);
  });

  it('unknown input and empty input get help, not silence', async () => {
    const unknown = (await (await h.command('frobnicate now')).json()) as { blocks: unknown[] };
    expect(visible(unknown.blocks)).toContain('I do not know `frobnicate`');
    expect(visible(unknown.blocks)).toContain('/odt request');
    const empty = (await (await h.command('')).json()) as { blocks: unknown[] };
    expect(visible(empty.blocks)).toContain('/odt request');
  });

  it('request opens the request modal with the trigger id', async () => {
    const res = await h.command('request');
    expect(res.status).toBe(200);
    const [open] = h.slack.ok('views.open');
    expect(open?.args.trigger_id).toMatch(/abcdef$/);
    const view = open?.args.view as { callback_id: string; blocks: { block_id: string }[] };
    expect(view.callback_id).toBe('odt_request_modal');
    expect(view.blocks.map((b) => b.block_id)).toEqual(
      expect.arrayContaining(['site', 'items:acme-dc1', 'vdc', 'network', 'catalog', 'link', 'estimate']),
    );
    expect(h.slack.failed()).toEqual([]);
  });

  it('status, list and cancel talk to the service', async () => {
    const { id } = await requestTransfer(h);
    const status = (await (await h.command(`status ${id}`)).json()) as { blocks: unknown[] };
    expect(visible(status.blocks)).toContain(id);
    expect(visible(status.blocks)).toContain('requested');
    const mine = (await (await h.command('status')).json()) as { blocks: unknown[] };
    expect(visible(mine.blocks)).toContain(id);
    const list = (await (await h.command('list', APPROVER)).json()) as { blocks: unknown[] };
    expect(visible(list.blocks)).toContain(id);
    const missing = (await (await h.command('status tr-nope')).json()) as { text: string };
    expect(missing.text).toContain('does not exist');
    const cancel = (await (await h.command(`cancel ${id}`)).json()) as { text: string };
    expect(cancel.text).toContain('cancelled');
    expect((await h.plane.service.get(id)).phase).toBe('cancelled');
  });
});

describe('the request modal', () => {
  it('a submission creates the transfer, posts the approval message and tells the requester', async () => {
    const { id } = await requestTransfer(h);
    const t = await h.plane.service.get(id);
    expect(t.phase).toBe('requested');
    expect(t.requester).toBe(REQUESTER);
    expect(t.items.map((i) => [i.source, i.sizeBytes])).toEqual([
      ['web-01', 40e9],
      ['db-01', 120e9],
    ]);
    const posted = h.slack.ok('chat.postMessage').find((c) => c.args.channel === CHANNEL)!;
    const blocks = posted.args.blocks as {
      type: string;
      elements?: { action_id: string; value: string }[];
    }[];
    expect(blocks.length).toBeLessThanOrEqual(50);
    const buttons = blocks.find((b) => b.type === 'actions')!.elements!;
    expect(buttons.map((b) => [b.action_id, b.value])).toEqual([
      ['odt_approve', id],
      ['odt_reject', id],
    ]);
    expect(visible(blocks)).toContain('160 GB');
    expect(visible(dmsTo(h.slack, REQUESTER)[0]?.args.blocks)).toContain(id);
  });

  it('validation errors are shown on the fields', async () => {
    const bad = await h.interaction(
      submission(REQUESTER, 'odt_request_modal', requestValues({ site: 'Not A Site!' })),
    );
    const body = (await bad.json()) as { response_action: string; errors: Record<string, string> };
    expect(body.response_action).toBe('errors');
    expect(Object.keys(body.errors)).toEqual(['site']);
    const none = await h.interaction(
      submission(REQUESTER, 'odt_request_modal', requestValues({ items: [] })),
    );
    const noneBody = (await none.json()) as { errors: Record<string, string> };
    expect(noneBody.errors['items:acme-dc1']).toContain('choose at least one');
    const vdc = await h.interaction(
      submission(REQUESTER, 'odt_request_modal', requestValues({ vdc: '   ' })),
    );
    const vdcBody = (await vdc.json()) as { errors: Record<string, string> };
    expect(Object.keys(vdcBody.errors)).toEqual(['vdc']);
    expect(await h.plane.service.list()).toHaveLength(0);
    expect(h.slack.ok('chat.postMessage')).toHaveLength(0);
  });
});

describe('approval', () => {
  it('an approver approves: transfer approved, message updated, requester told, shipping steps posted', async () => {
    const { id, message } = await requestTransfer(h);
    const res = await h.interaction(buttonClick(APPROVER, 'odt_approve', id, message));
    expect(res.status).toBe(200);
    const t = await h.plane.service.get(id);
    expect(t.phase).toBe('approved');
    expect(t.approver).toBe(APPROVER);
    const updated = h.slack.message(message.channel, message.ts)!;
    expect(visible(updated.blocks)).toContain(`Approved by <@${APPROVER}>`);
    expect(JSON.stringify(updated.blocks)).not.toContain('odt_approve');
    expect(visible(dmsTo(h.slack, REQUESTER).at(-1)?.args.blocks)).toContain(`approved by <@${APPROVER}>`);
    const steps = h.slack.ok('chat.postMessage').find((c) => c.args.thread_ts === message.ts)!;
    expect(JSON.stringify(steps.args.blocks)).toContain('odt_appliance_sent');
  });

  it("a non-approver's click gets an ephemeral refusal and changes nothing", async () => {
    const { id, message } = await requestTransfer(h);
    await h.interaction(buttonClick('USTRANGER', 'odt_approve', id, message));
    expect((await h.plane.service.get(id)).phase).toBe('requested');
    const [refusal] = ephemeralsTo(h.slack, 'USTRANGER');
    expect(refusal?.args.channel).toBe(CHANNEL);
    expect(refusal?.args.text).toContain('not an approver');
  });

  it('self-approval is refused (four eyes)', async () => {
    const { id, message } = await requestTransfer(h, OTHER_APPROVER);
    await h.interaction(buttonClick(OTHER_APPROVER, 'odt_approve', id, message));
    expect((await h.plane.service.get(id)).phase).toBe('requested');
    expect(ephemeralsTo(h.slack, OTHER_APPROVER)[0]?.args.text).toContain('four eyes');
  });

  it('a double click makes one transition and says who decided', async () => {
    const { id, message } = await requestTransfer(h);
    await h.interaction(buttonClick(APPROVER, 'odt_approve', id, message));
    await h.interaction(buttonClick(APPROVER, 'odt_approve', id, message));
    await h.interaction(buttonClick(OTHER_APPROVER, 'odt_approve', id, message));
    const t = await h.plane.service.get(id);
    expect(t.history.filter((e) => e.phase === 'approved')).toHaveLength(1);
    expect(ephemeralsTo(h.slack, APPROVER)[0]?.args.text).toContain(`already approved by <@${APPROVER}>`);
    expect(ephemeralsTo(h.slack, OTHER_APPROVER)[0]?.args.text).toContain(
      `already approved by <@${APPROVER}>`,
    );
  });

  it('reject opens a reason modal; its submission rejects and tells the requester', async () => {
    const { id, message } = await requestTransfer(h);
    await h.interaction(buttonClick(APPROVER, 'odt_reject', id, message));
    const open = h.slack.ok('views.open').at(-1)!;
    const view = open.args.view as { callback_id: string; private_metadata: string };
    expect(view.callback_id).toBe('odt_reject_modal');
    expect(JSON.parse(view.private_metadata)).toEqual({ id, ...message });
    const res = await h.interaction(
      submission(
        APPROVER,
        'odt_reject_modal',
        { reason: text('no NAS free until May') },
        view.private_metadata,
      ),
    );
    expect(res.status).toBe(200);
    const t = await h.plane.service.get(id);
    expect(t.phase).toBe('rejected');
    expect(t.rejectReason).toBe('no NAS free until May');
    expect(visible(h.slack.message(message.channel, message.ts)?.blocks)).toContain(
      `Rejected by <@${APPROVER}>`,
    );
    expect(visible(dmsTo(h.slack, REQUESTER).at(-1)?.args.blocks)).toContain('no NAS free until May');
    // Approving afterwards says who decided.
    await h.interaction(buttonClick(OTHER_APPROVER, 'odt_approve', id, message));
    expect(ephemeralsTo(h.slack, OTHER_APPROVER)[0]?.args.text).toContain(
      `already rejected by <@${APPROVER}>`,
    );
    // A second reject form, submitted late: the field error is plain text (no mention markup).
    const late = await h.interaction(
      submission(OTHER_APPROVER, 'odt_reject_modal', { reason: text('late') }, view.private_metadata),
    );
    const { errors } = (await late.json()) as { errors: { reason: string } };
    expect(errors.reason).toBe(`Transfer ${id} was already rejected by @${APPROVER}; nothing changed.`);
  });

  it("a non-approver's Reject gets a refusal, not a modal", async () => {
    const { id, message } = await requestTransfer(h);
    await h.interaction(buttonClick('USTRANGER', 'odt_reject', id, message));
    expect(h.slack.ok('views.open')).toHaveLength(0);
    expect(ephemeralsTo(h.slack, 'USTRANGER')[0]?.args.text).toContain('not an approver');
  });
});

describe('shipping steps', () => {
  it('NAS sent by an approver, NAS connected by the requester', async () => {
    const { id, message } = await requestTransfer(h);
    await h.interaction(buttonClick(APPROVER, 'odt_approve', id, message));
    const steps = h.slack.ok('chat.postMessage').find((c) => c.args.thread_ts === message.ts)!;
    const stepMsg = { channel: CHANNEL, ts: steps.response.ts as string };
    await h.interaction(buttonClick(REQUESTER, 'odt_appliance_sent', id, stepMsg));
    expect(ephemeralsTo(h.slack, REQUESTER)[0]?.args.text).toContain('Only an approver');
    await h.interaction(buttonClick(APPROVER, 'odt_appliance_sent', id, stepMsg));
    expect((await h.plane.service.get(id)).phase).toBe('appliance-sent');
    expect(JSON.stringify(h.slack.message(stepMsg.channel, stepMsg.ts)?.blocks)).toContain(
      'odt_appliance_connected',
    );
    await h.interaction(buttonClick(REQUESTER, 'odt_appliance_connected', id, stepMsg));
    // The workflow moves on at once (the export task is queued for the site's agent).
    const t = await h.plane.service.get(id);
    expect(t.history.find((e) => e.phase === 'appliance-connected')?.actor).toBe(REQUESTER);
    expect(h.slack.failed()).toEqual([]);
  });
});

describe('shipped back', () => {
  it('opens the carrier and tracking modal; missing fields and an early step are shown on the fields', async () => {
    const { id, message } = await requestTransfer(h);
    await h.interaction(buttonClick(APPROVER, 'odt_approve', id, message));
    await h.interaction(buttonClick(REQUESTER, 'odt_shipped', id, message));
    const view = h.slack.ok('views.open').at(-1)!.args.view as {
      callback_id: string;
      private_metadata: string;
    };
    expect(view.callback_id).toBe('odt_shipped_modal');
    const empty = await h.interaction(
      submission(
        REQUESTER,
        'odt_shipped_modal',
        { carrier: text('DHL'), tracking: text('') },
        view.private_metadata,
      ),
    );
    expect(((await empty.json()) as { errors: Record<string, string> }).errors).toEqual({
      tracking: 'give the tracking number',
    });
    const early = await h.interaction(
      submission(
        REQUESTER,
        'odt_shipped_modal',
        { carrier: text('DHL'), tracking: text('JD0001') },
        view.private_metadata,
      ),
    );
    const body = (await early.json()) as { response_action: string; errors: Record<string, string> };
    expect(body.response_action).toBe('errors');
    expect(body.errors.tracking).toContain("cannot go from 'approved' to 'shipped'");
    expect((await h.plane.service.get(id)).phase).toBe('approved');
  });
});

describe('request authenticity', () => {
  it('a forged signature is refused with 401 and does nothing', async () => {
    const res = await h.post(
      new URLSearchParams({ command: '/odt', text: 'list', user_id: 'U1' }).toString(),
      {
        secret: 'not-the-secret',
      },
    );
    expect(res.status).toBe(401);
    expect(h.slack.calls).toHaveLength(0);
  });

  it('a timestamp older than 5 minutes is refused', async () => {
    const res = await h.post(new URLSearchParams({ command: '/odt', text: 'help' }).toString(), {
      at: Math.floor(Date.now() / 1000) - 6 * 60,
    });
    expect(res.status).toBe(401);
  });

  it('a replayed or retried request does not act twice', async () => {
    const payload = submission(REQUESTER, 'odt_request_modal', requestValues());
    expect((await h.interaction(payload)).status).toBe(200);
    expect((await h.interaction(payload)).status).toBe(200);
    expect(
      (
        await h.interaction(payload, {
          headers: { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' },
        })
      ).status,
    ).toBe(200);
    expect(await h.plane.service.list()).toHaveLength(1);
    expect(h.slack.ok('chat.postMessage').filter((c) => c.args.channel === CHANNEL)).toHaveLength(1);

    // A retried button click (new trigger id, retry header) is dropped too.
    const { id } = { id: (await h.plane.service.list())[0]!.id };
    const ts = h.slack.ok('chat.postMessage').find((c) => c.args.channel === CHANNEL)!.response.ts as string;
    await h.interaction(buttonClick(APPROVER, 'odt_approve', id, { channel: CHANNEL, ts }), {
      headers: { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' },
    });
    expect((await h.plane.service.get(id)).phase).toBe('requested');
  });
});
