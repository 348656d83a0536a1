/**
 * What a Slack user or a security reviewer trips over (found reviewing issue #7) — a button on a
 * transfer that does not exist, user text that could ping a channel, state changes by people who
 * may not make them, clicks from the Home tab, a requester that is no Slack user.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryMessageRefs } from '../../bot/message-refs.ts';
import {
  APPROVERS,
  buttonClick,
  CHANNEL,
  dmsTo,
  ephemeralsTo,
  type Harness,
  postApprovalMessage,
  REQUESTER,
  requestTransfer,
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

const [APPROVER] = APPROVERS as [string, string];
const STRANGER = 'USTRANGER';

const json = async (res: Response) => (await res.json()) as { text: string; blocks: unknown[] };

describe('a user mistake gets a clear message, never an error into Bolt', () => {
  it('Reject on a transfer that does not exist says so and opens no modal', async () => {
    const res = await h.interaction(
      buttonClick(APPROVER, 'odt_reject', 'tr-gone', { channel: CHANNEL, ts: '1.1' }),
    );
    expect(res.status).toBe(200);
    expect(h.slack.ok('views.open')).toHaveLength(0);
    const [note] = ephemeralsTo(h.slack, APPROVER);
    expect(note?.args.text).toContain('`tr-gone` does not exist');
    expect(note?.args.text).toContain('`/odt list`');
  });

  it('Shipped back on a transfer that does not exist says so and opens no modal', async () => {
    await h.interaction(buttonClick(REQUESTER, 'odt_shipped', 'tr-gone', { channel: CHANNEL, ts: '1.1' }));
    expect(h.slack.ok('views.open')).toHaveLength(0);
    expect(ephemeralsTo(h.slack, REQUESTER)[0]?.args.text).toContain('`tr-gone` does not exist');
  });

  it('`/odt status` of an unknown id names the Slack command that lists transfers, with the id escaped', async () => {
    const body = await json(await h.command('status <!channel>'));
    expect(body.text).toContain('does not exist');
    expect(body.text).toContain('`/odt list`');
    expect(body.text).not.toContain('odt transfer list');
    expect(JSON.stringify(body.blocks)).not.toContain('<!channel>');
    expect(visible(body.blocks)).toContain('&lt;!channel&gt;');
  });
});

describe('who may change a transfer', () => {
  it('`/odt cancel` by someone who is neither the requester nor an approver changes nothing', async () => {
    const { id } = await requestTransfer(h);
    const refused = await json(await h.command(`cancel ${id}`, STRANGER));
    expect(refused.text).toContain('or an approver may cancel it; nothing changed');
    expect((await h.plane.service.get(id)).phase).toBe('requested');
    const byApprover = await json(await h.command(`cancel ${id} duplicate request`, APPROVER));
    expect(byApprover.text).toContain('is cancelled');
    expect((await h.plane.service.get(id)).phase).toBe('cancelled');
    // The requester hears who cancelled and why.
    expect(dmsTo(h.slack, REQUESTER).at(-1)?.args.text).toBe(
      `Your transfer \`${id}\` was cancelled by <@${APPROVER}>: duplicate request`,
    );
  });

  it('Shipped back by a stranger opens no modal, and a submission from one changes nothing', async () => {
    const { id, message } = await requestTransfer(h);
    await h.interaction(buttonClick(APPROVER, 'odt_approve', id, message));
    await h.interaction(buttonClick(STRANGER, 'odt_shipped', id, message));
    expect(h.slack.ok('views.open')).toHaveLength(0);
    expect(ephemeralsTo(h.slack, STRANGER)[0]?.args.text).toContain('or an approver may report');
    const res = await h.interaction(
      submission(
        STRANGER,
        'odt_shipped_modal',
        { carrier: text('DHL'), tracking: text('JD0001') },
        JSON.stringify({ id, ...message }),
      ),
    );
    const body = (await res.json()) as { errors: Record<string, string> };
    // A field error is plain text: the requester is named without mention markup (issue 23).
    expect(body.errors.tracking).toContain(
      `Only @${REQUESTER} (who asked for ${id}) or an approver may report that its NAS was shipped back`,
    );
    const t = await h.plane.service.get(id);
    expect(t.phase).toBe('approved');
    expect(t.shipping).toBeUndefined();
  });
});

describe('user-supplied text cannot ping anyone', () => {
  it('a rejection reason with <!channel> and <@U…> reaches the requester escaped', async () => {
    const { id, message } = await requestTransfer(h);
    await h.interaction(buttonClick(APPROVER, 'odt_reject', id, message));
    const view = h.slack.ok('views.open').at(-1)!.args.view as { private_metadata: string };
    await h.interaction(
      submission(
        APPROVER,
        'odt_reject_modal',
        { reason: text('<!channel> ask <@U999> & retry') },
        view.private_metadata,
      ),
    );
    const dm = JSON.stringify(dmsTo(h.slack, REQUESTER).at(-1)?.args.blocks);
    expect(dm).toContain('&lt;!channel&gt; ask &lt;@U999&gt; &amp; retry');
    expect(dm).not.toContain('<!channel>');
    expect(dm).not.toContain('<@U999>');
  });
});

describe('clicks from the Home tab and requesters outside Slack', () => {
  it('a refusal of a Home tab click is a DM, not an ephemeral in a channel the person may not be in', async () => {
    const { id } = await requestTransfer(h);
    await h.interaction(buttonClick(STRANGER, 'odt_approve', id, 'home'));
    expect(ephemeralsTo(h.slack, STRANGER)).toHaveLength(0);
    expect(dmsTo(h.slack, STRANGER)[0]?.args.text).toContain('not an approver');
    expect((await h.plane.service.get(id)).phase).toBe('requested');
  });

  it('approving a transfer asked for with the CLI (no Slack requester) shows the approver no error', async () => {
    const t = await h.plane.service.request({
      site: 'acme-dc1',
      requester: 'alice',
      items: [{ kind: 'vm', source: 'web-01', target: { vdc: 'acme-vdc' } }],
    });
    const ts = await postApprovalMessage(h.slack, t.id);
    await h.interaction(buttonClick(APPROVER, 'odt_approve', t.id, { channel: CHANNEL, ts }));
    expect((await h.plane.service.get(t.id)).phase).toBe('approved');
    expect(ephemeralsTo(h.slack, APPROVER)).toEqual([]);
    expect(h.slack.failed().filter((c) => c.method === 'chat.postMessage')).toEqual([]);
  });
});

describe('who sees a transfer', () => {
  it('`/odt status <id>` of another person’s transfer is refused; the requester and approvers see it', async () => {
    const { id } = await requestTransfer(h);
    const stranger = await json(await h.command(`status ${id}`, STRANGER));
    expect(stranger.text).toContain('is not yours');
    expect(visible(stranger.blocks)).not.toContain('web-01');
    const approver = await json(await h.command(`status ${id}`, APPROVER));
    expect(visible(approver.blocks)).toContain('web-01');
    const requester = await json(await h.command(`status ${id}`));
    expect(visible(requester.blocks)).toContain('web-01');
  });

  it('`/odt list` shows a non-approver their own transfers only, an approver all', async () => {
    const { id } = await requestTransfer(h);
    const stranger = await json(await h.command('list', STRANGER));
    expect(visible(stranger.blocks)).not.toContain(id);
    expect(visible(stranger.blocks)).toContain('Your transfers: none');
    expect(visible((await json(await h.command('list'))).blocks)).toContain(id);
    expect(visible((await json(await h.command('list', APPROVER))).blocks)).toContain(id);
  });

  it('`/odt list` with many transfers shows the newest first, whole lines, and counts the older', async () => {
    const ids: string[] = [];
    for (let n = 0; n < 45; n++) {
      const t = await h.plane.service.request({
        site: 'acme-dc1',
        requester: REQUESTER,
        items: [{ kind: 'vm', source: `vm-${n}`, target: { vdc: 'acme-vdc' } }],
      });
      ids.push(t.id);
      await new Promise((r) => setTimeout(r, 2));
    }
    const body = await json(await h.command('list', APPROVER));
    const seen = visible(body.blocks);
    expect(seen).toContain(ids.at(-1));
    expect(seen).not.toContain(ids[0]);
    expect(seen).toContain('…and 5 older');
    const texts = (body.blocks as { text?: { text: string } }[]).map((b) => b.text?.text ?? '');
    for (const t of texts) expect(t.length).toBeLessThanOrEqual(3000);
    expect(seen).not.toContain('…\n');
  });
});

describe('Retry failed items on a transfer that is gone', () => {
  it('says the transfer does not exist and names the Slack command, not the CLI one', async () => {
    await h.interaction(buttonClick(APPROVER, 'odt_retry', 'tr-gone:3', { channel: CHANNEL, ts: '1.1' }));
    const [note] = ephemeralsTo(h.slack, APPROVER);
    expect(note?.args.text).toContain('`tr-gone` does not exist');
    expect(note?.args.text).toContain('`/odt list`');
    expect(note?.args.text).not.toContain('odt transfer list');
  });
});

describe('messages read well', () => {
  it('the shipping steps say when the last step happened in UTC minutes, not a raw ISO timestamp', async () => {
    const { id, message } = await requestTransfer(h);
    await h.interaction(buttonClick(APPROVER, 'odt_approve', id, message));
    const steps = h.slack.ok('chat.postMessage').find((c) => c.args.thread_ts === message.ts)!;
    const seen = visible(steps.args.blocks);
    expect(seen).toMatch(/Last step: approved by <@UAPPROVER1> at \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    expect(seen).not.toMatch(/T\d\d:\d\d:\d\d/);
  });

  it('help says who may cancel and until when (the service allows it until the import starts)', async () => {
    const body = await json(await h.command('help'));
    expect(visible(body.blocks)).toContain('cancel your transfer (approvers: any) before its import starts');
  });
});

describe('a modal opened from the Home tab', () => {
  it('a rejection from the Home tab publishes the tab again without the decided request', async () => {
    const { id } = await requestTransfer(h);
    await h.interaction(buttonClick(APPROVER, 'odt_reject', id, 'home'));
    // The tab refreshed on the click, while the request still waited.
    expect(JSON.stringify(h.slack.home(APPROVER))).toContain(`home-decide-${id}`);
    const view = h.slack.ok('views.open').at(-1)!.args.view as { private_metadata: string };
    await h.interaction(
      submission(APPROVER, 'odt_reject_modal', { reason: text('no NAS free') }, view.private_metadata),
    );
    expect((await h.plane.service.get(id)).phase).toBe('rejected');
    expect(JSON.stringify(h.slack.home(APPROVER))).not.toContain(`home-decide-${id}`);
  });
});

describe('the requester is told what to do next', () => {
  it('approval and NAS sent each reach the requester with the next step and where its button is', async () => {
    const { id, message } = await requestTransfer(h);
    await h.interaction(buttonClick(APPROVER, 'odt_approve', id, message));
    expect(dmsTo(h.slack, REQUESTER).at(-1)?.args.text).toContain(
      'Next, the NAS is sent to you; when it is connected at your site, press *NAS connected*',
    );
    const steps = h.slack.ok('chat.postMessage').find((c) => c.args.thread_ts === message.ts)!;
    await h.interaction(
      buttonClick(APPROVER, 'odt_appliance_sent', id, { channel: CHANNEL, ts: steps.response.ts as string }),
    );
    expect((await h.plane.service.get(id)).phase).toBe('appliance-sent');
    const dm = dmsTo(h.slack, REQUESTER).at(-1)?.args.text as string;
    expect(dm).toContain(`The NAS for your transfer \`${id}\` is on its way`);
    expect(dm).toContain("*NAS connected* on this app's Home tab");
  });
});

describe('a decision on the Home tab', () => {
  it('updates the approval request in the channel and threads the shipping steps under it', async () => {
    await h.close();
    h = await startHarness({ bot: { messageRefs: new MemoryMessageRefs() } });
    const { id, message } = await requestTransfer(h);
    await h.interaction(buttonClick(APPROVER, 'odt_approve', id, 'home'));
    expect((await h.plane.service.get(id)).phase).toBe('approved');
    const request = h.slack.message(message.channel, message.ts);
    expect(JSON.stringify(request?.blocks)).not.toContain('odt_approve');
    expect(visible(request?.blocks)).toContain(`Approved by <@${APPROVER}>`);
    const steps = h.slack.ok('chat.postMessage').find((c) => c.args.thread_ts === message.ts);
    expect(visible(steps?.args.blocks)).toContain(`Shipping of \`${id}\``);
  });
});

describe('a cancelled request', () => {
  it('loses its buttons in the channel, and a late Approve says who cancelled it', async () => {
    await h.close();
    h = await startHarness({ bot: { messageRefs: new MemoryMessageRefs() } });
    const { id, message } = await requestTransfer(h);
    await h.command(`cancel ${id} <!here> wrong site`);
    const request = h.slack.message(message.channel, message.ts);
    expect(JSON.stringify(request?.blocks)).not.toContain('odt_approve');
    expect(visible(request?.blocks)).toContain(`Cancelled by <@${REQUESTER}>: &lt;!here&gt; wrong site`);
    await h.interaction(buttonClick(APPROVER, 'odt_approve', id, message));
    expect(ephemeralsTo(h.slack, APPROVER)[0]?.args.text).toBe(
      `Transfer \`${id}\` was cancelled by <@${REQUESTER}>; nothing changed.`,
    );
    expect((await h.plane.service.get(id)).phase).toBe('cancelled');
  });
});

describe('an unexpected failure', () => {
  it('tells the person whose click failed, instead of silence', async () => {
    await h.close();
    // A service whose store fails as a disk or a network would (no coded error to explain).
    const failing = {
      approve: async () => {
        throw new Error('SQLITE_IOERR: disk I/O error');
      },
    };
    h = await startHarness({ bot: { service: failing as never } });
    await h.interaction(buttonClick(APPROVER, 'odt_approve', 'tr-any', { channel: CHANNEL, ts: '1.1' }));
    const dm = dmsTo(h.slack, APPROVER).at(-1)?.args.text as string;
    expect(dm).toContain('Something went wrong on our side');
    expect(dm).toContain('`/odt status`');
    expect(dm).not.toContain('SQLITE');
  });
});
