/**
 * The report's "Retry failed items" button and the App Home tab, through Bolt's HTTP receiver with
 * signed requests, on the embedded control plane with the Slack chat notifier.
 */
import { webApi } from '@slack/bolt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { homeView, MAX_HOME_BLOCKS } from '../../bot/home.ts';
import { type Transfer, transition, updateItem } from '../../core/index.ts';
import { startFakeSlackApi } from '../peers/slack/fake-slack-api.ts';
import { exporting, transferOf } from './chat-fixtures.ts';
import { APPROVER, exportShipImport, reports, requestAndApprove, work } from './chat-flow.ts';
import { type ChatHarness, phase, startChatHarness, until } from './chat-harness.ts';
import {
  APPROVERS,
  buttonClick,
  CHANNEL,
  ephemeralsTo,
  REQUESTER,
  requestValues,
  submission,
  visible,
} from './harness.ts';

const OTHER = 'UOUTSIDER9';
let h: ChatHarness;
beforeEach(async () => {
  h = await startChatHarness({ minIntervalMs: 200, slowRetryMs: 150 });
});
afterEach(async () => {
  await h?.close();
});

const lastSaidTo = (user: string) => visible(ephemeralsTo(h.slack, user).at(-1)?.args.blocks);
const retryNotes = (t: Transfer) => t.history.filter((e) => /^retry \d+ failed item/.test(e.note ?? ''));

describe('Retry failed items', () => {
  it('only the requester or an approver; a double click retries once and says so; the import runs again', async () => {
    const flow = await requestAndApprove(h);
    await exportShipImport(h, flow, {
      steps: 1,
      gapMs: 10,
      outcome: (itemId, bytes) =>
        itemId === 'item-2'
          ? { itemId, ok: false, reason: 'the import lease timed out', code: 'NFC_TIMEOUT' }
          : { itemId, ok: true, bytes, state: 'powered-on' },
    });
    const report = reports(h)[0]!;
    const blocks = report.args.blocks as {
      type: string;
      elements?: { action_id: string; value: string }[];
    }[];
    const value = blocks.find((b) => b.type === 'actions')!.elements![0]!.value;
    expect(value).toMatch(new RegExp(`^${flow.id}:\\d+$`));
    const inChannel = { channel: CHANNEL, ts: report.response.ts as string };
    const dm = h.slack
      .ok('chat.postMessage')
      .filter((c) => c.args.channel === REQUESTER)
      .at(-1)!;
    const inDm = { channel: REQUESTER, ts: dm.response.ts as string };

    // Someone else: refused, ephemerally, nothing changes.
    await h.interaction(buttonClick(OTHER, 'odt_retry', value, inChannel));
    expect(lastSaidTo(OTHER)).toContain(`Only <@${REQUESTER}> (who asked for \`${flow.id}\`) or an approver`);
    expect(retryNotes(await h.plane.service.get(flow.id))).toHaveLength(0);

    // The requester double-clicks in the DM: one retry.
    await Promise.all([
      h.interaction(buttonClick(REQUESTER, 'odt_retry', value, inDm)),
      h.interaction(buttonClick(REQUESTER, 'odt_retry', value, inDm)),
    ]);
    const said = ephemeralsTo(h.slack, REQUESTER).map((c) => visible(c.args.blocks));
    expect(said.filter((s) => s.includes('Retrying 1 failed item(s)'))).toHaveLength(1);
    expect(said.filter((s) => s.includes('was already requested by'))).toHaveLength(1);
    let t = await h.plane.service.get(flow.id);
    expect(retryNotes(t)).toHaveLength(1);
    expect(retryNotes(t)[0]!.actor).toBe(REQUESTER);
    // The clicked copy shows who asked instead of the button.
    const dmNow = h.slack.message(REQUESTER, inDm.ts)!;
    expect(visible(dmNow.blocks)).toContain(`requested by <@${REQUESTER}>`);
    expect(JSON.stringify(dmNow.blocks)).not.toContain('odt_retry');

    // An approver on the channel's copy, later: nothing changes, and the reply says who asked.
    await h.interaction(buttonClick(APPROVER, 'odt_retry', value, inChannel));
    expect(lastSaidTo(APPROVER)).toContain(`already requested by <@${REQUESTER}>`);
    expect(lastSaidTo(APPROVER)).toContain('nothing changed');
    t = await h.plane.service.get(flow.id);
    expect(retryNotes(t)).toHaveLength(1);

    // The workflow took the decision: the failed item is imported again.
    const again = await until('the second import task', async () =>
      (await h.importAgent.listTasks()).find((x) => x.transferId === flow.id),
    );
    expect(again.itemIds).toEqual(['item-2']);
    expect(h.slack.failed()).toEqual([]);
  }, 60_000);
});

describe('Retry failed exports before shipping', () => {
  it('the progress message offers the retry; a click exports the failed item again', async () => {
    const flow = await requestAndApprove(h);
    const sizes = { 'item-1': 40e9, 'item-2': 120e9 };
    const task = await work(h.exportAgent, flow.id, { steps: 1, gapMs: 10, sizes });
    await h.exportAgent.complete(task.id, [
      { itemId: 'item-1', ok: true, bytes: 40e9 },
      { itemId: 'item-2', ok: false, reason: 'the NFC lease was aborted by vCenter', code: 'LEASE_ABORTED' },
    ]);
    await phase(h, flow.id, 'exported');
    const progress = h.slack
      .ok('chat.postMessage')
      .find((c) => String(c.args.text).startsWith(`Progress of ${flow.id}`))!;
    const ts = progress.response.ts as string;
    const shown = await until('the retry button on the progress message', () => {
      const m = h.slack.message(CHANNEL, ts);
      return JSON.stringify(m?.blocks).includes('odt_retry') ? m : undefined;
    });
    expect(visible(shown.blocks)).toContain('failed: the NFC lease was aborted by vCenter (LEASE_ABORTED)');
    const button = (shown.blocks as { type: string; elements?: { action_id: string; value: string }[] }[])
      .flatMap((b) => b.elements ?? [])
      .find((e) => e.action_id === 'odt_retry')!;
    await h.interaction(buttonClick(REQUESTER, 'odt_retry', button.value, { channel: CHANNEL, ts }));
    expect(lastSaidTo(REQUESTER)).toContain(`Retrying 1 failed item(s) of \`${flow.id}\``);
    const again = await until('the second export task', async () =>
      (await h.exportAgent.listTasks()).find((x) => x.transferId === flow.id),
    );
    expect(again.itemIds).toEqual(['item-2']);
    expect(h.slack.failed()).toEqual([]);
  });
});

const homeOf = (user: string) =>
  h.slack
    .ok('views.publish')
    .filter((c) => c.args.user_id === user)
    .at(-1)?.args.view as
    | {
        type: string;
        blocks: {
          type: string;
          elements?: { action_id: string; value: string }[];
          accessory?: { action_id: string; value: string };
        }[];
      }
    | undefined;

const buttonsOf = (view: NonNullable<ReturnType<typeof homeOf>>) =>
  view.blocks
    .flatMap((b) => [...(b.elements ?? []), ...(b.accessory ? [b.accessory] : [])])
    .filter((e) => (e as { type?: string }).type === 'button')
    .map((e) => [e.action_id, e.value]);

describe('App Home', () => {
  it('an approver sees the queue with Approve / Reject; the requester sees their transfers, no queue', async () => {
    await h.interaction(submission(REQUESTER, 'odt_request_modal', requestValues()));
    const id = (await h.plane.service.list()).at(-1)!.id;

    await h.event({ type: 'app_home_opened', user: APPROVER, channel: 'DAPPROVER1', tab: 'home' });
    const approverHome = homeOf(APPROVER)!;
    expect(approverHome.type).toBe('home');
    const seenByApprover = visible(approverHome.blocks);
    expect(seenByApprover).toContain('*Waiting for an approver* (1)');
    expect(seenByApprover).toContain(`\`${id}\` — *requested*`);
    expect(seenByApprover).toContain(`Requested by <@${REQUESTER}>: approve or reject.`);
    expect(buttonsOf(approverHome)).toEqual([
      ['odt_approve', id],
      ['odt_reject', id],
    ]);

    await h.event({ type: 'app_home_opened', user: REQUESTER, channel: 'DCUSTOMER1', tab: 'home' });
    const requesterHome = homeOf(REQUESTER)!;
    const seenByRequester = visible(requesterHome.blocks);
    expect(seenByRequester).toContain('*Your transfers*');
    expect(seenByRequester).toContain(`\`${id}\` — *requested*`);
    expect(seenByRequester).not.toContain('Waiting for an approver');
    expect(buttonsOf(requesterHome)).toEqual([]);

    // The Messages tab is not the Home tab: nothing is published.
    const before = h.slack.ok('views.publish').length;
    await h.event({ type: 'app_home_opened', user: REQUESTER, channel: 'DCUSTOMER1', tab: 'messages' });
    expect(h.slack.ok('views.publish')).toHaveLength(before);
    expect(h.slack.failed()).toEqual([]);
  });

  it('Approve on the Home tab approves and the tab then offers the next step (NAS sent)', async () => {
    await h.interaction(submission(REQUESTER, 'odt_request_modal', requestValues()));
    const id = (await h.plane.service.list()).at(-1)!.id;
    await h.interaction(buttonClick(APPROVER, 'odt_approve', id, 'home'));
    expect((await h.plane.service.get(id)).phase).toBe('approved');
    const home = homeOf(APPROVER)!;
    expect(visible(home.blocks)).toContain('Next: send the NAS to the customer.');
    expect(buttonsOf(home)).toEqual([['odt_appliance_sent', id]]);
    // The requester's own Home offers "NAS connected" once the NAS is sent.
    await h.interaction(buttonClick(APPROVER, 'odt_appliance_sent', id, 'home'));
    await h.event({ type: 'app_home_opened', user: REQUESTER, channel: 'DCUSTOMER1', tab: 'home' });
    expect(buttonsOf(homeOf(REQUESTER)!)).toEqual([['odt_appliance_connected', id]]);
    // Approved from Home, the shipping steps still go to the transfer's thread: the approval
    // request, recorded when it was posted, where progress and the report will go too.
    const request = h.slack
      .ok('chat.postMessage')
      .find((c) => String(c.args.text).startsWith(`Transfer request ${id}`))!;
    const steps = h.slack
      .ok('chat.postMessage')
      .find((c) => String(c.args.text).startsWith(`Shipping of ${id}`))!;
    expect(steps.args.thread_ts).toBe(request.response.ts);
    await h.interaction(
      buttonClick(REQUESTER, 'odt_appliance_connected', id, {
        channel: CHANNEL,
        ts: steps.response.ts as string,
      }),
    );
    expect(await h.refs.get(id)).toMatchObject({ channel: CHANNEL, threadTs: request.response.ts });
    expect(h.slack.failed()).toEqual([]);
  });

  it("an approver's own request is in the queue without buttons (four eyes)", async () => {
    await h.interaction(submission(APPROVER, 'odt_request_modal', requestValues()));
    await h.event({ type: 'app_home_opened', user: APPROVER, channel: 'DAPPROVER1', tab: 'home' });
    const home = homeOf(APPROVER)!;
    expect(visible(home.blocks)).toContain('Your own request: another approver decides.');
    expect(buttonsOf(home)).toEqual([]);
    await h.event({ type: 'app_home_opened', user: APPROVERS[1]!, channel: 'DAPPROVER2', tab: 'home' });
    expect(buttonsOf(homeOf(APPROVERS[1]!)!).map(([a]) => a)).toEqual(['odt_approve', 'odt_reject']);
  });
});

describe('App Home buttons', () => {
  it('a requester whose export partly failed chooses: retry the failed items, or ship as it is', () => {
    const at = new Date('2026-11-26T10:00:00Z');
    let t = exporting(transferOf(2, at), at);
    t = updateItem(t, 'item-1', { state: 'exported', bytes: 40e9 }, at);
    t = updateItem(t, 'item-2', { state: 'failed', reason: 'lease aborted' }, at);
    t = transition(t, 'exported', { actor: 'workflow', at });
    const view = homeView(REQUESTER, [t], false) as unknown as Parameters<typeof buttonsOf>[0];
    expect(buttonsOf(view)).toEqual([
      ['odt_retry', `${t.id}:${t.history.length}`],
      ['odt_shipped', t.id],
    ]);
    expect(visible(view.blocks)).toContain('1 failed');
  });
});

describe('App Home limits', () => {
  it('150 waiting and 40 own transfers: within 100 blocks, the rest counted, accepted by views.publish', async () => {
    const at = new Date('2026-11-26T10:00:00Z');
    const queue = Array.from({ length: 150 }, (_, n) =>
      transferOf(1, at, { id: `tr-q-${String(n).padStart(3, '0')}` }),
    );
    const own = Array.from({ length: 40 }, (_, n) => ({
      ...transferOf(1, at, { id: `tr-own-${String(n).padStart(3, '0')}` }),
      requester: APPROVER,
      phase: 'exporting' as const,
    }));
    const view = homeView(APPROVER, [...queue, ...own], true) as unknown as { blocks: unknown[] };
    expect(view.blocks.length).toBeLessThanOrEqual(MAX_HOME_BLOCKS);
    const seen = visible(view.blocks);
    expect(seen).toContain('*Waiting for an approver* (150)');
    expect(seen).toContain('…and 130 more; `/odt list` lists them all.');
    expect(seen).toContain('…and 20 more; `/odt status` lists them all.');
    const slack = await startFakeSlackApi();
    try {
      const client = new webApi.WebClient('xoxb-test', {
        slackApiUrl: slack.url,
        retryConfig: { retries: 0 },
      });
      await client.views.publish({ user_id: APPROVER, view: view as never });
      expect(slack.failed()).toEqual([]);
      expect(slack.home(APPROVER)).toBeDefined();
    } finally {
      await slack.close();
    }
  });
});
