/**
 * Acceptance of issue #7, end to end: a request in Slack (the modal submitted through Bolt's HTTP
 * receiver, signed as Slack signs it) → Approve → the workflow on the embedded engine
 * (startControlPlane's durable runner, with the Slack chat notifier as its chat) → the shipping
 * steps' buttons → the agents' work → the progress message updated in place → the final report.
 *
 * The agents here are enrolled over the signed agent API and make the calls `odt agent run` makes
 * (list, claim, heartbeat with per-item progress, complete); they move no data — the sandbox test
 * (test/cli/sandbox.test.ts) runs the real export and import against the vSphere simulators. What
 * Slack sees only depends on those calls.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exportShipImport, reports, requestAndApprove } from './chat-flow.ts';
import { type ChatHarness, startChatHarness, until } from './chat-harness.ts';
import { CHANNEL, REQUESTER, visible } from './harness.ts';

const INTERVAL = 300;
let h: ChatHarness;
beforeEach(async () => {
  h = await startChatHarness({ minIntervalMs: INTERVAL });
});
afterEach(async () => {
  await h?.close();
});

describe('Slack end to end (#7)', () => {
  it('request → approval → workflow → progress updated in place → report with per-item states', async () => {
    const flow = await requestAndApprove(h);
    await exportShipImport(h, flow, {
      // What the ODT node reports its VMs are called (#17: two items of one name are told apart).
      outcome: (itemId, bytes) =>
        itemId === 'item-1'
          ? {
              itemId,
              ok: true,
              bytes,
              state: 'powered-on',
              names: { vcenter: [`web-01 (${flow.id} item-1)`], vcd: 'web-01 (item-1)' },
            }
          : {
              itemId,
              ok: false,
              reason: 'vCloud Director: the org VDC has no storage left',
              code: 'VCD_QUOTA',
              names: { vcenter: [`db-01 (${flow.id})`] },
            },
    });

    // One progress message, in the transfer's thread, and only updated after that.
    const progressPosts = h.slack
      .ok('chat.postMessage')
      .filter((c) => String(c.args.text).startsWith(`Progress of ${flow.id}`));
    expect(progressPosts).toHaveLength(1);
    const progress = progressPosts[0]!;
    expect(progress.args).toMatchObject({ channel: CHANNEL, thread_ts: flow.root });
    const ts = progress.response.ts as string;
    const updates = h.slack.ok('chat.update').filter((c) => String(c.args.text).startsWith('Progress of'));
    expect(updates.length).toBeGreaterThanOrEqual(3);
    for (const u of updates) expect(u.args).toMatchObject({ channel: CHANNEL, ts });
    const shown = updates.map((u) => visible(u.args.blocks)).join('\n');
    // The agents' heartbeats at a quarter, a half and three quarters of each item, export and import.
    expect(shown).toMatch(/exporting `[█░]{12}` (25|50|75)% · 250 MB\/s · ETA /);
    expect(shown).toMatch(/importing `[█░]{12}` (25|50|75)% · 250 MB\/s · ETA /);
    expect(shown).toContain('— exported `████████████` 100%');
    // The last state is shown once the throttle allows it.
    await until('the final progress state', () =>
      visible(h.slack.message(CHANNEL, ts)?.blocks).includes('now *completed-with-errors*'),
    );

    // The report: in the thread and broadcast, per item, totals, the retry button; the requester told.
    const [report] = reports(h);
    expect(report!.args).toMatchObject({ channel: CHANNEL, thread_ts: flow.root });
    const seen = visible(report!.args.blocks);
    expect(seen).toContain('*completed-with-errors*: 1 of 2 item(s) succeeded, 1 failed');
    expect(seen).toContain(
      `\`web-01\` — exported · verified · imported · onboarded · powered on (40 GB) — in vCenter \`web-01 (${flow.id} item-1)\`, in vCloud Director \`web-01 (item-1)\``,
    );
    expect(seen).toContain(
      `\`db-01\` — exported (120 GB), then failed: vCloud Director: the org VDC has no storage left (VCD_QUOTA) — in vCenter \`db-01 (${flow.id})\``,
    );
    expect(seen).toContain('160 GB exported');
    expect(seen).toContain('Retry failed items (1)');
    const dm = h.slack.ok('chat.postMessage').filter((c) => c.args.channel === REQUESTER);
    expect(visible(dm.at(-1)!.args.blocks)).toContain(`your transfer \`${flow.id}\` has its report`);
    const t = await h.plane.service.get(flow.id);
    expect(t.phase).toBe('completed-with-errors');
    expect(t.items.map((i) => i.result.names)).toEqual([
      { vcenter: [`web-01 (${flow.id} item-1)`], vcd: 'web-01 (item-1)' },
      { vcenter: [`db-01 (${flow.id})`] },
    ]);

    // Nothing Slack received carries a workflow task token (`<execution>:<state>:<uuid>`) or a secret.
    const everything = JSON.stringify(h.slack.calls.map((c) => c.args));
    expect(everything).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/);
    expect(everything).not.toMatch(/:Await[A-Za-z]+:|:Export:|:Import:/);
    expect(everything).not.toContain('xoxb-test');
    expect(h.slack.failed()).toEqual([]);
  }, 60_000);
});
