import { sleep } from '../core/wait.ts';

/**
 * One keep-alive for everything that must be renewed while data flows: an NFC lease
 * (HttpNfcLeaseProgress) and an agent's task heartbeat. Beats never overlap; a failed beat aborts
 * the work through the controller at once, instead of letting the lease or claim lapse silently.
 */
export interface KeepAliveOptions {
  /** Time between beats; keep it well inside the lease or heartbeat timeout (e.g. a third). */
  readonly intervalMs: number;
  /** One renewal. Receives the signal so a slow beat stops when the work is aborted. */
  readonly beat: (signal: AbortSignal) => Promise<void>;
  /** Aborted with the beat's error when a beat fails. */
  readonly controller: AbortController;
  /** How many consecutive failed beats to tolerate before aborting. Default 1 (none tolerated). */
  readonly maxFailures?: number;
  /** Beat once at start instead of after the first interval (the lease clock already runs). */
  readonly immediate?: boolean;
}

export interface KeepAlive {
  /** Stops beating and waits for a beat in flight to end. */
  stop(): Promise<void>;
}

export function startKeepAlive(options: KeepAliveOptions): KeepAlive {
  const { intervalMs, beat, controller } = options;
  const maxFailures = options.maxFailures ?? 1;
  const stopping = new AbortController();
  // The pause between beats ends at stop() and when the work is aborted: no timer outlives either.
  const pause = AbortSignal.any([controller.signal, stopping.signal]);
  const beating = async (): Promise<void> => {
    let failures = 0;
    if (!options.immediate) await sleep(intervalMs, pause);
    for (;;) {
      try {
        await beat(controller.signal);
        failures = 0;
      } catch (error) {
        failures += 1;
        if (stopping.signal.aborted) return;
        if (failures >= maxFailures) {
          controller.abort(error);
          return;
        }
      }
      await sleep(intervalMs, pause);
    }
  };
  // sleep() rejects once stopped or aborted: that is the loop's end, not a failure.
  const running = beating().catch(() => undefined);
  return {
    async stop() {
      stopping.abort();
      await running;
    },
  };
}
