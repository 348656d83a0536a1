/**
 * Waits that stop: every sleep and poll of the product goes through here, so that each ends at
 * its deadline or at once when its AbortSignal fires (Ctrl-C, SIGTERM, a failed keep-alive), and
 * leaves no timer or listener behind (a timer left armed keeps a process from exiting).
 */
import { OdtError } from './errors.ts';

/** A wait that passed its deadline; `what` names what was waited for. */
export class WaitTimeoutError extends OdtError {
  constructor(
    readonly what: string,
    readonly timeoutMs: number,
    options?: { cause?: unknown },
  ) {
    super(
      'TIMEOUT',
      `Gave up waiting for ${what} after ${timeoutMs} ms; check why it takes so long, or allow more time.`,
      options,
    );
    this.name = 'WaitTimeoutError';
  }
}

/**
 * Work stopped on purpose by a signal of the process (Ctrl-C is SIGINT) rather than failed: the
 * CLI aborts its AbortController with one, so every wait under way ends with it as the reason.
 */
export class InterruptedError extends OdtError {
  constructor(readonly signal: NodeJS.Signals) {
    super(
      'INTERRUPTED',
      `interrupted (${signal}); what was complete is kept: run the same command again to go on.`,
    );
    this.name = 'InterruptedError';
  }
}

/** Resolves after `ms`; rejects with `signal.reason` at once when the signal fires (or has fired). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * `promise`, or a rejection with `signal.reason` as soon as the signal fires, whichever comes
 * first: for work that does not stop on the signal itself. Its late result is dropped.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      promise.catch(() => undefined);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Growing pauses between attempts. */
export interface BackoffPolicy {
  /** The first pause. */
  readonly initialMs: number;
  /** Each pause is this many times the one before (default 2). */
  readonly factor?: number;
  /** Pauses never grow past this. */
  readonly maxMs: number;
  /**
   * For this long from the start the pause stays `initialMs` (default 0): many waits end within
   * a fraction of a second, and should not pay a grown pause for it.
   */
  readonly holdMs?: number;
  /**
   * 'full': each pause is drawn evenly between half of `initialMs` and its unjittered value, so
   * that many clients started together do not call in step. Default 'none'.
   */
  readonly jitter?: 'none' | 'full';
  readonly random?: () => number;
}

/** The pauses of a BackoffPolicy, one per `next()`; `reset()` starts over (after a success). */
export class Backoff {
  private attempt = 0;

  constructor(private readonly policy: BackoffPolicy) {}

  reset(): void {
    this.attempt = 0;
  }

  /** The next pause; `elapsedMs` is the time since the wait began (for `holdMs`). */
  next(elapsedMs = 0): number {
    const { initialMs, maxMs } = this.policy;
    let ceiling = initialMs;
    if (elapsedMs >= (this.policy.holdMs ?? 0)) {
      ceiling = Math.min(maxMs, initialMs * (this.policy.factor ?? 2) ** this.attempt);
      this.attempt = Math.min(this.attempt + 1, 64);
    }
    if (this.policy.jitter !== 'full') return Math.round(ceiling);
    const floor = initialMs / 2;
    return Math.round(floor + (this.policy.random ?? Math.random)() * (ceiling - floor));
  }
}

/** A poll bounded by a deadline, a signal, or both (at least one: a wait must be able to end). */
type Bounds =
  | { readonly timeoutMs: number; readonly signal?: AbortSignal | undefined }
  | { readonly timeoutMs?: number | undefined; readonly signal: AbortSignal };

export type PollOptions<T> = Bounds & {
  /** What is waited for, for the timeout's message: "the NFC lease lease-7 to be ready". */
  readonly what: string;
  /**
   * One probe: the value when the wait is over, `undefined` to probe again. It receives the
   * signal to pass to its calls; a probe that does not stop on it is left behind at the abort.
   * A probe's error ends the poll with that error.
   */
  readonly until: (signal: AbortSignal | undefined) => Promise<T | undefined>;
  /** The pause between probes: fixed, or a backoff. */
  readonly intervalMs: number | BackoffPolicy;
  /** The error to throw at the deadline (default WaitTimeoutError naming `what`). */
  readonly onTimeout?: (elapsedMs: number) => Error;
  readonly now?: () => number;
};

/**
 * Probes at once, then after each pause, until `until` returns a value, which it returns. The
 * last pause is shortened so that one probe falls on the deadline; a probe that finds it passed
 * ends the wait with the timeout error. An abort of `signal` ends the wait at once, during a pause
 * or a probe, with the signal's reason. A probe is not cut at the deadline: bound it with its
 * own transport timeout.
 */
export async function poll<T>(options: PollOptions<T>): Promise<T> {
  const now = options.now ?? Date.now;
  const started = now();
  const deadline = options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : started + options.timeoutMs;
  const backoff = typeof options.intervalMs === 'number' ? undefined : new Backoff(options.intervalMs);
  const { signal } = options;
  for (;;) {
    signal?.throwIfAborted();
    const value = await abortable(options.until(signal), signal);
    if (value !== undefined) return value;
    const left = deadline - now();
    if (left <= 0) {
      throw (
        options.onTimeout?.(now() - started) ?? new WaitTimeoutError(options.what, options.timeoutMs ?? 0)
      );
    }
    const pause = backoff ? backoff.next(now() - started) : (options.intervalMs as number);
    await sleep(Math.min(pause, left), signal);
  }
}
