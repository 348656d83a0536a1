/**
 * Block Kit for a transfer's live progress message and its final report. Both stay within Slack's
 * limits whatever the transfer's size (at most 50 blocks, 3,000 characters per text); a big
 * transfer is summarised (counts per state, the items that need attention first). Buttons carry
 * the transfer id and a round number, never a task token.
 */
import {
  custodySummary,
  type Item,
  type TaskProgress,
  type Transfer,
  type TransferPhase,
} from '../core/index.ts';
import {
  type Block,
  button,
  clip,
  context,
  esc,
  formatBytes,
  MAX_BLOCKS,
  MAX_TEXT,
  mention,
  section,
} from './blocks.ts';
import { kindLabel } from './request-form.ts';

export const retryAction = 'odt_retry';

/** Item lines shown in the progress message; the rest are counted (a live view, not a ledger). */
export const MAX_PROGRESS_LINES = 60;
const MAX_LINE = 600;

/** Progress of one item as the agent last reported it, with the transfer phase it belongs to. */
export interface ItemProgress {
  readonly progress: TaskProgress;
  readonly phase: TransferPhase;
}

const BAR_CELLS = 12;

/** A text progress bar such as `█████░░░░░░░`. */
export function progressBar(fraction: number): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const full = Math.floor(f * BAR_CELLS);
  return `${'█'.repeat(full)}${'░'.repeat(BAR_CELLS - full)}`;
}

/** 45 → "45s", 200 → "3m 20s", 7500 → "2h 05m", 3 days → "3d 0h". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

export const formatRate = (bytesPerSecond: number): string => `${formatBytes(bytesPerSecond)}/s`;

const name = (i: Item): string => `*${kindLabel[i.kind]}* \`${esc(clip(i.source, 120))}\``;
const reasonOf = (i: Item): string =>
  esc(clip(`${i.result.reason ?? 'no reason given'}${i.result.code ? ` (${i.result.code})` : ''}`, 300));

const done = new Set(['exported', 'verified', 'importing', 'imported', 'onboarded', 'powered-on']);
const imported = new Set(['imported', 'onboarded', 'powered-on']);

/** What an item is doing in the transfer's current phase, for people. */
function itemPhase(t: Transfer, i: Item): 'waiting' | 'exporting' | 'importing' | 'done' | 'failed' {
  const s = i.result.state;
  if (s === 'failed') return 'failed';
  if (t.phase === 'exporting') return s === 'exporting' ? 'exporting' : s === 'pending' ? 'waiting' : 'done';
  if (t.phase === 'importing' || t.phase === 'onboarding')
    return imported.has(s) ? 'done' : s === 'pending' ? 'waiting' : 'importing';
  return done.has(s) ? 'done' : 'waiting';
}

interface Line {
  readonly index: number;
  readonly priority: number;
  readonly text: string;
}

function progressLine(
  t: Transfer,
  i: Item,
  index: number,
  progress: ReadonlyMap<string, ItemProgress>,
): Line {
  const p = progress.get(i.id);
  const live = p && p.phase === t.phase ? p.progress : undefined;
  const phase = itemPhase(t, i);
  let text: string;
  let priority = 2;
  if (phase === 'failed') {
    text = `:x: ${name(i)} — failed: ${reasonOf(i)}`;
    priority = 0;
  } else if (phase === 'done') {
    text = `:white_check_mark: ${name(i)} — ${i.result.state} \`${progressBar(1)}\` 100%`;
  } else if (phase === 'waiting' || !live) {
    text = `:hourglass: ${name(i)} — ${phase === 'waiting' ? 'waiting' : `${phase}, starting`} \`${progressBar(0)}\``;
    priority = phase === 'waiting' ? 3 : 1;
  } else {
    const total = live.bytesTotal ?? i.sizeBytes;
    const fraction = total ? live.bytesDone / total : 0;
    // An import first reads and hashes every byte of the returned NAS: said so, not shown as the upload.
    const doing = live.stage === 'verifying' ? 'verifying the NAS' : phase;
    const parts = [
      `:arrows_counterclockwise: ${name(i)} — ${doing} \`${progressBar(fraction)}\` ${total ? `${Math.min(99, Math.floor(fraction * 100))}%` : formatBytes(live.bytesDone)}`,
    ];
    if (live.bytesPerSecond && live.bytesPerSecond > 0) {
      parts.push(formatRate(live.bytesPerSecond));
      if (total && total > live.bytesDone)
        parts.push(`ETA ${formatDuration((total - live.bytesDone) / live.bytesPerSecond)}`);
    }
    text = parts.join(' · ');
    priority = 1;
  }
  return { index, priority, text: clip(`• ${text}`, MAX_LINE) };
}

/**
 * Lines packed into sections of at most 3,000 characters and `maxSections` sections; lines that do
 * not fit (or beyond `maxLines`) are dropped by priority (lowest first) and counted in `omitted`.
 */
function packLines(
  lines: readonly Line[],
  maxSections: number,
  maxLines = Number.POSITIVE_INFINITY,
): { blocks: Block[]; omitted: number } {
  const byPriority = [...lines].sort((a, b) => a.priority - b.priority || a.index - b.index);
  const budget = maxSections * MAX_TEXT;
  const kept: Line[] = [];
  let used = 0;
  for (const l of byPriority) {
    // Each line costs its length plus the newline; the packing below wastes at most one line per section.
    if (kept.length >= maxLines || used + l.text.length + 1 > budget - maxSections * (MAX_LINE + 1)) continue;
    kept.push(l);
    used += l.text.length + 1;
  }
  kept.sort((a, b) => a.index - b.index);
  const blocks: Block[] = [];
  let current = '';
  for (const l of kept) {
    if (current && current.length + 1 + l.text.length > MAX_TEXT) {
      blocks.push(section(current));
      current = '';
    }
    current = current ? `${current}\n${l.text}` : l.text;
  }
  if (current) blocks.push(section(current));
  return { blocks: blocks.slice(0, maxSections), omitted: lines.length - kept.length };
}

function counts(t: Transfer, of: (i: Item) => string): string {
  const n = new Map<string, number>();
  for (const i of t.items) n.set(of(i), (n.get(of(i)) ?? 0) + 1);
  return [...n.entries()].map(([k, v]) => `${v} ${k}`).join(', ');
}

/**
 * The whole transfer in one line while its data moves (issue #19): bytes done of the total over
 * every item still to do or done in this phase, the summed rate of the items in flight, and the
 * time left at that rate. Undefined outside export and import, or before any item reports.
 */
export function overallProgressText(
  t: Transfer,
  progress: ReadonlyMap<string, ItemProgress>,
): string | undefined {
  if (t.phase !== 'exporting' && t.phase !== 'importing') return undefined;
  let doneBytes = 0;
  let totalBytes = 0;
  let known = true;
  let rate = 0;
  let live = 0;
  for (const i of t.items) {
    const phase = itemPhase(t, i);
    if (phase === 'failed') continue;
    const p = progress.get(i.id);
    const now = p && p.phase === t.phase && p.progress.stage !== 'verifying' ? p.progress : undefined;
    const size = now?.bytesTotal ?? (i.result.bytes > 0 ? i.result.bytes : i.sizeBytes);
    if (size === undefined) known = false;
    else totalBytes += size;
    if (phase === 'done') doneBytes += size ?? now?.bytesDone ?? 0;
    else if (now) {
      live++;
      doneBytes += now.bytesDone;
      rate += now.bytesPerSecond ?? 0;
    }
  }
  if (live === 0) return undefined;
  const of =
    known && totalBytes > 0
      ? ` of ${formatBytes(totalBytes)} (${Math.min(99, Math.floor((100 * doneBytes) / totalBytes))}%)`
      : '';
  const eta =
    known && rate > 0 && totalBytes > doneBytes
      ? ` · ETA ${formatDuration((totalBytes - doneBytes) / rate)}`
      : '';
  return `Overall: ${formatBytes(doneBytes)}${of}${rate > 0 ? ` · ${formatRate(rate)}` : ''}${eta}`;
}

/** The live progress message: the transfer's phase, then per item phase, bar, percent, rate and ETA. */
export function progressMessage(
  t: Transfer,
  progress: ReadonlyMap<string, ItemProgress>,
): { text: string; blocks: Block[] } {
  const lines = t.items.map((i, index) => progressLine(t, i, index, progress));
  const overall = overallProgressText(t, progress);
  const head = section(
    `*Progress of \`${t.id}\`* — now *${t.phase}*\n${t.items.length} item(s): ${counts(t, (i) => {
      const p = itemPhase(t, i);
      return p === 'done' ? i.result.state : p;
    })}${overall ? `\n${overall}` : ''}`,
  );
  const { blocks, omitted } = packLines(lines, MAX_BLOCKS - 4, MAX_PROGRESS_LINES);
  const out: Block[] = [head, ...blocks];
  if (omitted > 0)
    out.push(context(`…and ${omitted} more item(s) not shown; \`/odt status ${t.id}\` lists every item.`));
  // Before shipping, failed exports are retried from here (the report comes after the import).
  if (canRetry(t) && t.phase !== 'completed-with-errors') out.push(retryButtons(t, 'progress-retry'));
  return { text: `Progress of ${t.id}: ${t.phase}`, blocks: out };
}

/**
 * Whether "Retry failed items" applies now: some item failed and the workflow waits for a decision
 * on them — before shipping (exported, or failed on site) or after the import (the report).
 */
export function canRetry(t: Transfer): boolean {
  return (
    (t.phase === 'exported' || t.phase === 'failed' || t.phase === 'completed-with-errors') &&
    t.items.some((i) => i.result.state === 'failed')
  );
}

function retryButtons(t: Transfer, blockId: string): Block {
  const failed = t.items.filter((i) => i.result.state === 'failed').length;
  return {
    type: 'actions',
    block_id: blockId,
    elements: [button(`Retry failed items (${failed})`, retryAction, retryValue(t), 'primary')],
  };
}

// ---- the report ----------------------------------------------------------------------------

const seconds = (from: string, to: string): number => Math.max(0, (Date.parse(to) - Date.parse(from)) / 1000);

/** Seconds spent in the working phases that start at `start` (summed over retry rounds). */
export function phaseSeconds(t: Transfer, start: TransferPhase, working: readonly TransferPhase[]): number {
  let total = 0;
  let since: string | undefined;
  for (const h of t.history) {
    if (since === undefined && h.phase === start) since = h.at;
    else if (since !== undefined && !working.includes(h.phase)) {
      total += seconds(since, h.at);
      since = undefined;
    }
  }
  if (since !== undefined) total += seconds(since, t.history.at(-1)?.at ?? since);
  return total;
}

/** Totals computed from the transfer's own data (item bytes, its history's timestamps). */
export function reportTotals(t: Transfer): {
  bytes: number;
  importedBytes: number;
  exportSeconds: number;
  importSeconds: number;
  overallSeconds: number;
} {
  const bytes = t.items.reduce((n, i) => n + i.result.bytes, 0);
  const importedBytes = t.items
    .filter((i) => imported.has(i.result.state))
    .reduce((n, i) => n + i.result.bytes, 0);
  const approved = t.history.find((h) => h.phase === 'approved')?.at ?? t.createdAt;
  const last = t.history.at(-1)?.at ?? t.updatedAt;
  return {
    bytes,
    importedBytes,
    exportSeconds: phaseSeconds(t, 'exporting', ['exporting']),
    importSeconds: phaseSeconds(t, 'importing', ['importing', 'onboarding']),
    overallSeconds: seconds(approved, last),
  };
}

const stepsTo: Record<string, string[]> = {
  exported: ['exported'],
  verified: ['exported', 'verified'],
  importing: ['exported', 'verified'],
  imported: ['exported', 'verified', 'imported'],
  onboarded: ['exported', 'verified', 'imported', 'onboarded'],
  'powered-on': ['exported', 'verified', 'imported', 'onboarded', 'powered on'],
};

/**
 * What an imported item's VMs are called in vCenter, and its vApp or template in vCloud Director:
 * two items of one name (from two folders) are told apart here.
 */
function placedAs(i: Item): string {
  const n = i.result.names;
  if (!n || n.vcenter.length === 0) return '';
  const vcenter = n.vcenter.map((v) => `\`${esc(clip(v, 90))}\``).join(', ');
  return ` — in vCenter ${vcenter}${n.vcd ? `, in vCloud Director \`${esc(clip(n.vcd, 130))}\`` : ''}`;
}

/** How the export read the item (issue #21), and whether a later delta sync can start from it. */
function readAs(i: Item): string {
  const c = i.result.capture;
  return c ? ` — ${esc(c.read)}; delta sync later: ${c.deltaSync ? 'yes' : 'no'}` : '';
}

function reportLine(i: Item, index: number): Line {
  const size = i.result.bytes > 0 ? ` (${formatBytes(i.result.bytes)})` : '';
  if (i.result.state === 'failed') {
    const before = i.result.bytes > 0 ? `exported${size}, then ` : '';
    return {
      index,
      priority: 0,
      text: clip(`• :x: ${name(i)} — ${before}failed: ${reasonOf(i)}${placedAs(i)}`, MAX_LINE),
    };
  }
  const steps = stepsTo[i.result.state];
  const text = steps
    ? `• :white_check_mark: ${name(i)} — ${steps.join(' · ')}${size}${placedAs(i)}${readAs(i)}`
    : `• :hourglass: ${name(i)} — ${i.result.state}`;
  return { index, priority: 1, text: clip(text, MAX_LINE) };
}

/** Which round of the transfer a report is about: retry clicks on an older report change nothing. */
export const reportRound = (t: Transfer): number => t.history.length;

export const retryValue = (t: Transfer): string => `${t.id}:${reportRound(t)}`;

export function parseRetryValue(value: string): { id: string; round: number } | undefined {
  const m = /^([a-z0-9][a-z0-9-]{2,62}):(\d{1,6})$/.exec(value);
  return m ? { id: m[1]!, round: Number(m[2]) } : undefined;
}

/** The final report: per item what it reached or why it failed, the totals, and "Retry failed items". */
export function reportMessage(t: Transfer): { text: string; blocks: Block[] } {
  const failed = t.items.filter((i) => i.result.state === 'failed');
  const ok = t.items.length - failed.length;
  const totals = reportTotals(t);
  const rate = (bytes: number, s: number) => (s > 0 ? ` at ${formatRate(bytes / s)}` : '');
  const icon = failed.length === 0 ? ':white_check_mark:' : ok === 0 ? ':x:' : ':warning:';
  const head: Block[] = [
    section(
      `${icon} *Report of \`${t.id}\`* — *${t.phase}*: ${ok} of ${t.items.length} item(s) succeeded${failed.length ? `, ${failed.length} failed` : ''}. Requested by ${mention(t.requester)}.`,
    ),
    {
      type: 'section',
      fields: [
        { type: 'mrkdwn', text: `*Data*\n${formatBytes(totals.bytes)} exported` },
        {
          type: 'mrkdwn',
          text: `*Export*\n${formatDuration(totals.exportSeconds)}${rate(totals.bytes, totals.exportSeconds)}`,
        },
        {
          type: 'mrkdwn',
          text: `*Import*\n${formatBytes(totals.importedBytes)} in ${formatDuration(totals.importSeconds)}${rate(totals.importedBytes, totals.importSeconds)}`,
        },
        {
          type: 'mrkdwn',
          text: `*Approval to report*\n${formatDuration(totals.overallSeconds)}${totals.overallSeconds > 0 ? `, effectively ${formatRate(totals.importedBytes / totals.overallSeconds)}` : ''}`,
        },
      ],
    },
    // The head hash in the channel pins the custody log outside the store (core/model/custody.ts).
    context(esc(custodySummary(t))),
  ];
  const tail: Block[] = failed.length > 0 ? [retryButtons(t, 'report')] : [];
  const { blocks, omitted } = packLines(
    t.items.map((i, index) => reportLine(i, index)),
    // One block for the "…and more" line, one for the lead of the requester's copy.
    MAX_BLOCKS - head.length - tail.length - 2,
  );
  const out = [...head, ...blocks];
  if (omitted > 0)
    out.push(
      context(
        `…and ${omitted} more item(s) not listed here (failed items come first); \`/odt status ${t.id}\` lists every item.`,
      ),
    );
  return {
    text: `Report of ${t.id}: ${t.phase}, ${ok} of ${t.items.length} item(s) succeeded`,
    blocks: [...out, ...tail],
  };
}

/** A message (report or progress) after a retry was asked for: the button gives way to who asked. */
export function retriedReport(t: Transfer, blocks: readonly Block[], actor: string): Block[] {
  return [
    ...blocks.filter(
      (b) =>
        !(
          b.type === 'actions' &&
          ((b.elements as { action_id?: string }[] | undefined) ?? []).some(
            (e) => e.action_id === retryAction,
          )
        ),
    ),
    context(`:repeat: Retry of the failed items of \`${t.id}\` requested by ${mention(actor)}.`),
  ];
}
