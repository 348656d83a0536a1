/**
 * Fixtures for the Slack chat notifier's tests: a fake clock that also schedules timers, and
 * transfers built with the lifecycle's own functions (so that every state is a legal one).
 */

import type { Timers } from '../../bot/slack-chat.ts';
import { createTransfer, type Transfer, transition, updateItem } from '../../core/index.ts';

/** A clock and timers that move only when told; `advance` fires due timers in order. */
export class FakeTime implements Timers {
  private ms: number;
  private seq = 0;
  private readonly due: { at: number; id: number; fn: () => void }[] = [];

  constructor(start = Date.parse('2026-11-26T10:00:00Z')) {
    this.ms = start;
  }

  now = (): Date => new Date(this.ms);
  get epochMs(): number {
    return this.ms;
  }

  set(fn: () => void, delayMs: number): unknown {
    const id = ++this.seq;
    this.due.push({ at: this.ms + Math.max(0, delayMs), id, fn });
    return id;
  }

  clear(handle: unknown): void {
    const i = this.due.findIndex((d) => d.id === handle);
    if (i >= 0) this.due.splice(i, 1);
  }

  get scheduled(): number {
    return this.due.length;
  }

  /** Moves time forward by `ms`, running each timer that falls due, then `settle` after each. */
  async advance(ms: number, settle: () => Promise<void> = async () => undefined): Promise<void> {
    const target = this.ms + ms;
    for (;;) {
      this.due.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.due[0];
      if (!next || next.at > target) break;
      this.due.shift();
      this.ms = next.at;
      next.fn();
      await settle();
    }
    this.ms = target;
    await settle();
  }
}

export const CHANNEL = 'CAPPROVERS';
export const REQUESTER = 'UCUSTOMER1';
export const APPROVER = 'UAPPROVER1';
const GB = 1e9;

/** A transfer of `n` VMs (40 GB each unless `sizes` says otherwise), requested at `at`. */
export function transferOf(
  n: number,
  at: Date,
  opts: { id?: string; name?: (i: number) => string; sizes?: readonly number[] } = {},
): Transfer {
  return createTransfer(
    {
      site: 'acme-dc1',
      providerSite: 'cloud',
      requester: REQUESTER,
      items: Array.from({ length: n }, (_, i) => ({
        kind: 'vm' as const,
        source: opts.name?.(i) ?? `web-${String(i + 1).padStart(2, '0')}`,
        sizeBytes: opts.sizes?.[i] ?? 40 * GB,
        target: { vdc: 'acme-vdc', deploy: true, powerOn: true },
      })),
    },
    opts.id ?? 'tr-20261126-abc123',
    at,
  );
}

const later = (t: Transfer, at: Date): Transfer => ({
  ...t,
  version: t.version + 1,
  updatedAt: at.toISOString(),
});

/** The transfer moved along the main path to `exporting` at `at` (items exporting). */
export function exporting(t: Transfer, at: Date): Transfer {
  let x = transition(t, 'approved', { actor: APPROVER, at });
  x = { ...x, approver: APPROVER };
  x = transition(x, 'appliance-sent', { actor: APPROVER, at });
  x = transition(x, 'appliance-connected', { actor: REQUESTER, at });
  x = transition(x, 'exporting', { actor: 'workflow', at });
  for (const i of x.items) x = updateItem(x, i.id, { state: 'exporting' }, at);
  return later(x, at);
}

/** An exporting transfer whose items all exported, shipped and received: now importing. */
export function importingNow(t: Transfer, at: Date): Transfer {
  let x = t;
  for (const i of x.items) x = updateItem(x, i.id, { state: 'exported', bytes: 40e9 }, at);
  x = transition(x, 'exported', { actor: 'workflow', at });
  x = transition(x, 'shipped', { actor: REQUESTER, at, note: 'DHL 123' });
  x = transition(x, 'received', { actor: APPROVER, at });
  x = transition(x, 'importing', { actor: 'workflow', at });
  return later(x, at);
}

/** Each step of the rest of the path at its own time, so that durations come from the history. */
export function throughImport(
  t: Transfer,
  times: { exported: Date; shipped: Date; received: Date; importing: Date; done: Date },
  results: readonly (
    | { ok: true; bytes: number; state: 'onboarded' | 'powered-on' }
    | { ok: false; reason: string; bytes: number }
  )[],
): Transfer {
  let x = t;
  x.items.forEach((item, n) => {
    const r = results[n];
    if (!r || r.ok || r.bytes > 0)
      x = updateItem(x, item.id, { state: 'exported', bytes: r?.bytes ?? 0 }, times.exported);
    else
      x = updateItem(
        x,
        item.id,
        { state: 'failed', reason: r.reason, code: 'EXPORT_FAILED' },
        times.exported,
      );
  });
  x = transition(x, 'exported', { actor: 'workflow', at: times.exported });
  x = transition(x, 'shipped', { actor: REQUESTER, at: times.shipped, note: 'DHL 123' });
  x = transition(x, 'received', { actor: APPROVER, at: times.received });
  x = transition(x, 'importing', { actor: 'workflow', at: times.importing });
  x.items.forEach((item, n) => {
    const r = results[n];
    if (!r || item.result.state === 'failed') return;
    if (!r.ok) {
      x = updateItem(x, item.id, { state: 'failed', reason: r.reason, code: 'IMPORT_FAILED' }, times.done);
      return;
    }
    for (const s of ['verified', 'importing', 'imported', 'onboarded', 'powered-on'] as const) {
      x = updateItem(x, item.id, { state: s }, times.done);
      if (s === r.state) break;
    }
  });
  const failed = x.items.some((i) => i.result.state === 'failed');
  x = transition(x, 'onboarding', { actor: 'workflow', at: times.done });
  x = transition(x, failed ? 'completed-with-errors' : 'completed', { actor: 'workflow', at: times.done });
  return later(x, times.done);
}
