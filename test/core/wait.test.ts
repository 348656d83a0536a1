import { describe, expect, it } from 'vitest';
import { abortable, Backoff, InterruptedError, poll, sleep, WaitTimeoutError } from '../../core/wait.ts';

// Issue 23, point 3: one sleep and one poll for every wait, each with a deadline or a signal.

const timersAlive = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('sleep', () => {
  it('resolves after its time', async () => {
    const started = Date.now();
    await sleep(30);
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
  });

  it('rejects with the reason at once when aborted mid-sleep, and leaves no timer', async () => {
    const before = timersAlive();
    const controller = new AbortController();
    const reason = new InterruptedError('SIGINT');
    const started = Date.now();
    const slept = sleep(60_000, controller.signal);
    setTimeout(() => controller.abort(reason), 20);
    await expect(slept).rejects.toBe(reason);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(timersAlive()).toBeLessThanOrEqual(before);
  });

  it('rejects at once when the signal has already fired', async () => {
    const reason = new Error('gone');
    await expect(sleep(60_000, AbortSignal.abort(reason))).rejects.toBe(reason);
  });
});

describe('abortable', () => {
  it('ends work that ignores the signal with the abort reason', async () => {
    const controller = new AbortController();
    const reason = new Error('stop');
    const never = new Promise<never>(() => {});
    setTimeout(() => controller.abort(reason), 10);
    await expect(abortable(never, controller.signal)).rejects.toBe(reason);
  });
});

describe('Backoff', () => {
  it('grows by its factor up to its maximum', () => {
    const b = new Backoff({ initialMs: 200, factor: 1.5, maxMs: 1_000 });
    expect(Array.from({ length: 6 }, () => b.next())).toEqual([200, 300, 450, 675, 1_000, 1_000]);
    b.reset();
    expect(b.next()).toBe(200);
  });

  it('holds the first pause for holdMs, then grows', () => {
    const b = new Backoff({ initialMs: 50, factor: 2, maxMs: 2_000, holdMs: 1_000 });
    expect([b.next(0), b.next(500), b.next(999)]).toEqual([50, 50, 50]);
    expect([b.next(1_000), b.next(1_100), b.next(1_300), b.next(1_700)]).toEqual([50, 100, 200, 400]);
  });

  it('with full jitter draws between half the first pause and the grown one', () => {
    const low = new Backoff({ initialMs: 1_000, maxMs: 60_000, jitter: 'full', random: () => 0 });
    const high = new Backoff({ initialMs: 1_000, maxMs: 60_000, jitter: 'full', random: () => 1 });
    expect([low.next(), low.next(), low.next()]).toEqual([500, 500, 500]);
    expect([high.next(), high.next(), high.next()]).toEqual([1_000, 2_000, 4_000]);
  });
});

describe('poll', () => {
  it('returns the first value a probe gives', async () => {
    let n = 0;
    const value = await poll({
      what: 'the third probe',
      until: async () => (++n === 3 ? 'done' : undefined),
      intervalMs: 5,
      timeoutMs: 5_000,
    });
    expect(value).toBe('done');
    expect(n).toBe(3);
  });

  it('gives up at its deadline with a coded error naming what it waited for', async () => {
    let probes = 0;
    const started = Date.now();
    const error = await poll({
      what: 'the lease to be ready',
      until: async () => {
        probes++;
        return undefined;
      },
      intervalMs: 40,
      timeoutMs: 150,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WaitTimeoutError);
    expect(error).toMatchObject({ code: 'TIMEOUT', what: 'the lease to be ready', timeoutMs: 150 });
    expect((error as Error).message).toMatch(/the lease to be ready after 150 ms/);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(145);
    expect(elapsed).toBeLessThan(1_000);
    // At once, then every 40 ms, the last pause cut short so that one probe falls on the deadline.
    expect(probes).toBeGreaterThanOrEqual(4);
  });

  it('throws the caller’s own error at the deadline when given one', async () => {
    const mine = new Error('still initializing');
    await expect(
      poll({ what: 'x', until: async () => undefined, intervalMs: 10, timeoutMs: 30, onTimeout: () => mine }),
    ).rejects.toBe(mine);
  });

  it('ends within a second of an abort during a pause', async () => {
    const controller = new AbortController();
    const reason = new InterruptedError('SIGINT');
    setTimeout(() => controller.abort(reason), 50);
    const started = Date.now();
    await expect(
      poll({ what: 'x', until: async () => undefined, intervalMs: 60_000, signal: controller.signal }),
    ).rejects.toBe(reason);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('ends within a second of an abort during a probe that ignores the signal', async () => {
    const controller = new AbortController();
    const reason = new InterruptedError('SIGTERM');
    let probeSignal: AbortSignal | undefined;
    setTimeout(() => controller.abort(reason), 50);
    const started = Date.now();
    await expect(
      poll({
        what: 'x',
        until: (signal) => {
          probeSignal = signal;
          return new Promise(() => {}); // a property read that never answers
        },
        intervalMs: 10,
        timeoutMs: 600_000,
        signal: controller.signal,
      }),
    ).rejects.toBe(reason);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(probeSignal?.aborted).toBe(true);
  });

  it('pauses by its backoff', async () => {
    const at: number[] = [];
    const started = Date.now();
    await poll({
      what: 'x',
      until: async () => {
        at.push(Date.now() - started);
        return at.length === 4 ? true : undefined;
      },
      intervalMs: { initialMs: 20, factor: 3, maxMs: 1_000 },
      timeoutMs: 5_000,
    });
    // Pauses of 20, 60 and 180 ms: the probes are at 0, ≥20, ≥80 and ≥260 ms.
    expect(at[1]).toBeGreaterThanOrEqual(18);
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(55);
    expect(at[3]! - at[2]!).toBeGreaterThanOrEqual(170);
  });

  it('ends with the error of a probe', async () => {
    const boom = new Error('NotAuthenticated');
    await expect(
      poll({
        what: 'x',
        until: async () => {
          throw boom;
        },
        intervalMs: 10,
        timeoutMs: 1_000,
      }),
    ).rejects.toBe(boom);
  });

  it('leaves no timer behind once it ended', async () => {
    const before = timersAlive();
    const controller = new AbortController();
    const p = poll({
      what: 'x',
      until: async () => undefined,
      intervalMs: 30_000,
      signal: controller.signal,
    });
    await new Promise((r) => setTimeout(r, 10));
    controller.abort(new Error('stop'));
    await p.catch(() => undefined);
    expect(timersAlive()).toBeLessThanOrEqual(before);
  });
});
