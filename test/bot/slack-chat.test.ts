/**
 * The Slack chat notifier (bot/slack-chat.ts) against the fake Slack Web API, through the real
 * Web API client: one progress message per transfer in its thread, updated in place at most every
 * `minIntervalMs` (fake clock), the last state flushed, refs that survive a restart (SQLite), the
 * report with totals from the transfer's data, and Slack's limits on a 120-item transfer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { webApi } from '@slack/bolt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryMessageRefs, type MessageRefs, SqliteMessageRefs } from '../../bot/message-refs.ts';
import { formatDuration, formatRate, progressBar } from '../../bot/progress-blocks.ts';
import { createSlackChat, type SlackChat } from '../../bot/slack-chat.ts';
import { type Transfer, type TransferPhase, transferPhases } from '../../core/index.ts';
import { type FakeSlackApi, type SlackCall, startFakeSlackApi } from '../peers/slack/fake-slack-api.ts';
import {
  CHANNEL,
  exporting,
  FakeTime,
  importingNow,
  REQUESTER,
  throughImport,
  transferOf,
} from './chat-fixtures.ts';
import { visible } from './harness.ts';

const GB = 1e9;
const INTERVAL = 5000;
const ROOT_TS = '1764151200.000001';

let slack: FakeSlackApi;
let dir: string;
let time: FakeTime;
let warnings: string[];
beforeEach(async () => {
  slack = await startFakeSlackApi();
  dir = mkdtempSync(join(tmpdir(), 'odt-slack-chat-'));
  time = new FakeTime();
  warnings = [];
});
afterEach(async () => {
  await slack.close();
  rmSync(dir, { recursive: true, force: true });
});

const client = () =>
  new webApi.WebClient('xoxb-test', { slackApiUrl: slack.url, retryConfig: { retries: 0 } });

function chatWith(refs: MessageRefs, channel = CHANNEL): SlackChat {
  return createSlackChat({
    client: client(),
    approversChannel: channel,
    refs,
    clock: { now: time.now },
    timers: time,
    minIntervalMs: INTERVAL,
    log: (meta, msg) => warnings.push(`${msg} ${JSON.stringify(meta)}`),
  });
}

const posts = () => slack.ok('chat.postMessage');
const updates = () => slack.ok('chat.update');
const seen = (call: SlackCall | undefined) => visible(call?.args.blocks);

async function exportingTransfer(refs: MessageRefs, n = 2): Promise<Transfer> {
  // The approval request's ts is the transfer's thread (the bot records it on the Approve click).
  await refs.update('tr-20261126-abc123', { channel: CHANNEL, threadTs: ROOT_TS });
  return exporting(transferOf(n, time.now()), time.now());
}

describe('the progress message', () => {
  it('is posted once in the transfer thread and updated in place with bar, percent, rate and ETA', async () => {
    const refs = new MemoryMessageRefs();
    const chat = chatWith(refs);
    const t = await exportingTransfer(refs);
    await chat.transferChanged(t);
    await chat.idle();
    expect(posts()).toHaveLength(1);
    const post = posts()[0]!;
    expect(post.args).toMatchObject({ channel: CHANNEL, thread_ts: ROOT_TS });
    expect(seen(post)).toContain('now *exporting*');
    expect(seen(post)).toContain('web-01');

    await time.advance(INTERVAL);
    await chat.progress(t, [
      { itemId: 'item-1', bytesDone: 10 * GB, bytesTotal: 40 * GB, bytesPerSecond: 100e6 },
    ]);
    await chat.idle();
    expect(posts()).toHaveLength(1);
    expect(updates()).toHaveLength(1);
    const update = updates()[0]!;
    expect(update.args).toMatchObject({ channel: CHANNEL, ts: post.response.ts });
    const text = seen(update);
    expect(text).toContain(`exporting \`${progressBar(0.25)}\` 25% · 100 MB/s · ETA ${formatDuration(300)}`);
    expect(progressBar(0.25)).toBe('███░░░░░░░░░');
    expect(formatDuration(300)).toBe('5m 00s');
    // The message the channel shows is the updated one.
    expect(visible(slack.message(CHANNEL, post.response.ts as string)?.blocks)).toContain('25%');
    expect(slack.failed()).toEqual([]);
  });

  it('shows an import checking the returned NAS as such, then its upload as importing', async () => {
    const refs = new MemoryMessageRefs();
    const chat = chatWith(refs);
    const t = importingNow(await exportingTransfer(refs, 1), time.now());
    await chat.transferChanged(t);
    await chat.idle();
    await time.advance(INTERVAL);
    await chat.progress(t, [
      { itemId: 'item-1', bytesDone: 20 * GB, bytesTotal: 40 * GB, bytesPerSecond: 1e9, stage: 'verifying' },
    ]);
    await chat.idle();
    expect(seen(updates().at(-1))).toContain(
      `verifying the NAS \`${progressBar(0.5)}\` 50% · ${formatRate(1e9)} · ETA ${formatDuration(20)}`,
    );

    await time.advance(INTERVAL);
    await chat.progress(t, [
      { itemId: 'item-1', bytesDone: 10 * GB, bytesTotal: 40 * GB, bytesPerSecond: 1e8 },
    ]);
    await chat.idle();
    const text = seen(updates().at(-1));
    expect(text).toContain(`importing \`${progressBar(0.25)}\` 25% · ${formatRate(1e8)}`);
    expect(text).not.toContain('verifying');
  });

  it('is updated at most once per interval; the last state is flushed, not dropped', async () => {
    const refs = new MemoryMessageRefs();
    const chat = chatWith(refs);
    const t = await exportingTransfer(refs);
    await chat.transferChanged(t);
    await chat.idle();
    const start = time.epochMs;
    const at: number[] = [];
    const settle = async () => {
      const before = updates().length;
      await chat.idle();
      for (let i = before; i < updates().length; i++) at.push(time.epochMs);
    };
    for (const pct of [10, 20, 30]) {
      await time.advance(1000, settle);
      await chat.progress(t, [
        { itemId: 'item-1', bytesDone: pct * 0.4 * GB, bytesTotal: 40 * GB, bytesPerSecond: 1e8 },
      ]);
      await settle();
    }
    expect(updates()).toHaveLength(0);
    expect(chat.pending(t.id)).toBe(true);
    await time.advance(2000, settle); // t0 + 5 s
    expect(updates()).toHaveLength(1);
    expect(seen(updates()[0])).toContain('30%');
    expect(seen(updates()[0])).not.toContain('20%');

    await time.advance(500, settle);
    await chat.progress(t, [
      { itemId: 'item-1', bytesDone: 16 * GB, bytesTotal: 40 * GB, bytesPerSecond: 1e8 },
    ]);
    await chat.transferChanged({ ...t, version: t.version + 1 });
    await settle();
    expect(updates()).toHaveLength(1);
    await time.advance(10_000, settle);
    expect(updates()).toHaveLength(2);
    expect(seen(updates()[1])).toContain('40%');
    expect(at).toEqual([start + 5000, start + 10_000]);
    // Nothing new: no update at all.
    await chat.transferChanged({ ...t, version: t.version + 2 });
    await time.advance(10_000, settle);
    expect(updates()).toHaveLength(2);
    expect(posts()).toHaveLength(1);
  });

  it('says nothing before the work starts, and never throws a Slack error into the service', async () => {
    const refs = new MemoryMessageRefs();
    const chat = chatWith(refs, 'not-a-channel');
    const t = transferOf(1, time.now());
    await chat.transferChanged(t); // requested: the approval message is the bot's, not ours
    await chat.idle();
    expect(slack.calls).toHaveLength(0);
    await expect(chat.transferChanged(exporting(t, time.now()))).resolves.toBeUndefined();
    await chat.idle();
    expect(slack.failed().map((c) => c.response.error)).toEqual(['channel_not_found']);
    expect(warnings.join('\n')).toContain('channel_not_found');
  });

  it('is posted from the phase the work starts in on, but not for a transfer that ends before or is cancelled', async () => {
    const posted = new Map<TransferPhase, boolean>();
    for (const phase of transferPhases) {
      const refs = new MemoryMessageRefs();
      const chat = chatWith(refs);
      const before = posts().length;
      // The phase as the notifier is told it, items untouched: no task progress to show.
      await chat.transferChanged({ ...transferOf(1, time.now(), { id: `tr-20261126-${phase}` }), phase });
      await chat.idle();
      posted.set(phase, posts().length > before);
    }
    expect([...posted].filter(([, p]) => p).map(([phase]) => phase)).toEqual([
      'exporting',
      'exported',
      'shipped',
      'received',
      'importing',
      'onboarding',
      'completed',
      'completed-with-errors',
      'failed',
    ]);
  });
});

describe('message refs', () => {
  it('survive a restart: a new SlackChat over the same SQLite file updates the same message, throttled', async () => {
    const file = join(dir, 'slack.sqlite');
    const refs1 = SqliteMessageRefs.open(file);
    const chat1 = chatWith(refs1);
    const t = await exportingTransfer(refs1);
    await chat1.transferChanged(t);
    await chat1.idle();
    const ts = posts()[0]!.response.ts as string;
    const postedAt = time.epochMs;
    refs1.close();

    await time.advance(2000);
    const refs2 = SqliteMessageRefs.open(file);
    const chat2 = chatWith(refs2);
    expect(await refs2.get(t.id)).toMatchObject({
      channel: CHANNEL,
      threadTs: ROOT_TS,
      progressTs: ts,
      lastUpdateAt: postedAt,
    });
    await chat2.progress(t, [
      { itemId: 'item-2', bytesDone: 20 * GB, bytesTotal: 40 * GB, bytesPerSecond: 2e8 },
    ]);
    await chat2.idle();
    expect(posts()).toHaveLength(1);
    expect(updates()).toHaveLength(0); // 2 s after the last update of the previous process
    await time.advance(3000, () => chat2.idle());
    expect(updates()).toHaveLength(1);
    expect(updates()[0]!.args).toMatchObject({ channel: CHANNEL, ts });
    expect(seen(updates()[0])).toContain('50%');
    expect((await refs2.get(t.id))?.lastUpdateAt).toBe(postedAt + 5000);
    refs2.close();
  });

  it.each([
    ['memory', () => new MemoryMessageRefs()],
    ['sqlite', () => SqliteMessageRefs.open(join(dir, 'refs.sqlite'))],
  ])('%s: update sets the given fields and keeps the others', async (_, make) => {
    const refs = make();
    expect(await refs.get('tr-x01')).toBeUndefined();
    await refs.update('tr-x01', { channel: 'C1', threadTs: '1.1' });
    await refs.update('tr-x01', { progressTs: '1.2', lastUpdateAt: 42 });
    await refs.update('tr-x01', { lastUpdateAt: 43 });
    expect(await refs.get('tr-x01')).toEqual({
      transferId: 'tr-x01',
      channel: 'C1',
      threadTs: '1.1',
      progressTs: '1.2',
      lastUpdateAt: 43,
    });
    expect(await refs.get('tr-x02')).toBeUndefined();
  });
});

describe('the report', () => {
  const at = (s: number) => new Date(Date.parse('2026-11-26T10:00:00Z') + s * 1000);

  function finished(results: Parameters<typeof throughImport>[2]): Transfer {
    const t = exporting(transferOf(results.length, at(0)), at(0));
    return throughImport(
      t,
      // export 100 s, shipping three days, import 50 s
      {
        exported: at(100),
        shipped: at(200),
        received: at(3 * 86_400),
        importing: at(3 * 86_400 + 10),
        done: at(3 * 86_400 + 60),
      },
      results,
    );
  }

  it('lists each item, totals computed from the transfer, a retry button, and tells the requester', async () => {
    const refs = new MemoryMessageRefs();
    await refs.update('tr-20261126-abc123', { channel: CHANNEL, threadTs: ROOT_TS });
    const chat = chatWith(refs);
    const t = finished([
      { ok: true, bytes: 30 * GB, state: 'powered-on' },
      { ok: true, bytes: 10 * GB, state: 'onboarded' },
      { ok: false, bytes: 10 * GB, reason: 'vCloud Director refused the import: no storage policy "gold"' },
    ]);
    await chat.report(t);
    await chat.idle();
    const report = posts().find((c) => seen(c).includes('Report of'))!;
    expect(report.args).toMatchObject({ channel: CHANNEL, thread_ts: ROOT_TS });
    expect(String(report.args.reply_broadcast)).toBe('true'); // form-encoded by the Web API client
    const text = seen(report);
    expect(text).toContain('*completed-with-errors*: 2 of 3 item(s) succeeded, 1 failed');
    expect(text).toContain('`web-01` — exported · verified · imported · onboarded · powered on (30 GB)');
    expect(text).toContain('`web-02` — exported · verified · imported · onboarded (10 GB)');
    expect(text).toContain(
      '`web-03` — exported (10 GB), then failed: vCloud Director refused the import: no storage policy "gold" (IMPORT_FAILED)',
    );
    // 50 GB exported in 100 s; 40 GB imported in 50 s; approval to report 3 days 60 s.
    expect(text).toContain('50 GB exported');
    expect(text).toContain('*Export*\n1m 40s at 500 MB/s');
    expect(text).toContain('*Import*\n40 GB in 50s at 800 MB/s');
    expect(text).toContain('*Approval to report*\n3d 0h, effectively 154 KB/s');
    const blocks = report.args.blocks as {
      type: string;
      elements?: { action_id: string; value: string }[];
    }[];
    const button = blocks.find((b) => b.type === 'actions')!.elements![0]!;
    expect(button).toMatchObject({ action_id: 'odt_retry', value: `${t.id}:${t.history.length}` });
    const dm = posts().find((c) => c.args.channel === REQUESTER)!;
    expect(seen(dm)).toContain(`your transfer \`${t.id}\` has its report`);
    expect(seen(dm)).toContain('Retry failed items (1)');
    expect(slack.failed()).toEqual([]);

    // The report step may run again after a restart: the same round is not posted twice.
    await chat.report(t);
    await chat.idle();
    expect(posts().filter((c) => seen(c).includes('Report of'))).toHaveLength(2); // thread + DM, once
  });

  it('has no retry button when every item worked, and other data gives other totals', async () => {
    const chat = chatWith(new MemoryMessageRefs());
    const t = finished([{ ok: true, bytes: 4 * GB, state: 'powered-on' }]);
    await chat.report(t);
    await chat.idle();
    const report = posts().find((c) => c.args.channel === CHANNEL && seen(c).includes('Report of'))!;
    expect(report.args.thread_ts).toBeUndefined(); // no thread known: the channel
    const text = seen(report);
    expect(text).toContain('1 of 1 item(s) succeeded');
    expect(text).toContain('*Export*\n1m 40s at 40 MB/s');
    expect(text).toContain('*Import*\n4.0 GB in 50s at 80 MB/s');
    expect(JSON.stringify(report.args.blocks)).not.toContain('odt_retry');
  });
});

describe("Slack's limits", () => {
  const longName = (i: number) => `${'very-long-vm-name-'.repeat(13)}${i}`.slice(0, 250);

  it('a 120-item transfer: progress summarised, report complete, both within 50 blocks and 3,000 characters', async () => {
    const refs = new MemoryMessageRefs();
    const chat = chatWith(refs);
    let t = exporting(transferOf(120, time.now(), { name: longName }), time.now());
    await chat.transferChanged(t);
    await chat.progress(
      t,
      t.items.map((i, n) => ({ itemId: i.id, bytesDone: n * 1e8, bytesTotal: 40 * GB, bytesPerSecond: 5e7 })),
    );
    await chat.idle();
    await time.advance(INTERVAL, () => chat.idle());
    const results = t.items.map((_, n) =>
      n % 10 === 0
        ? { ok: false as const, bytes: 0, reason: `the datastore is full: ${'x'.repeat(400)}` }
        : { ok: true as const, bytes: 4 * GB, state: 'powered-on' as const },
    );
    t = throughImport(
      t,
      {
        exported: time.now(),
        shipped: time.now(),
        received: time.now(),
        importing: time.now(),
        done: time.now(),
      },
      results,
    );
    await chat.report(t);
    await chat.idle();
    expect(slack.failed()).toEqual([]);
    const all = [...posts(), ...updates()];
    expect(all.length).toBeGreaterThanOrEqual(4); // progress post and update, report, DM
    for (const call of all) {
      const blocks = call.args.blocks as {
        type: string;
        text?: { text: string };
        elements?: { value?: string }[];
      }[];
      expect(blocks.length).toBeLessThanOrEqual(50);
      for (const b of blocks) {
        expect(b.text?.text.length ?? 0).toBeLessThanOrEqual(3000);
        for (const e of b.elements ?? []) expect((e.value ?? '').length).toBeLessThanOrEqual(2000);
      }
    }
    const progress = seen(updates()[0]);
    expect(progress).toContain('120 item(s)');
    expect(progress).toMatch(/…and \d+ more item\(s\) not shown/);
    const report = seen(posts().find((c) => seen(c).includes('Report of') && c.args.channel === CHANNEL));
    expect(report).toContain('108 of 120 item(s) succeeded, 12 failed');
    // Every failed item is named, whatever is left out.
    for (let n = 0; n < 120; n += 10) expect(report).toContain(longName(n).slice(0, 100));
    // A transfer holds at most 200 items: the report has room to list every one.
    expect(report.match(/^• /gm)).toHaveLength(120);
  });
});
