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
  let failures = 0;
  let stopped = false;
  let inFlight: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;

  const schedule = (): void => {
    if (stopped || controller.signal.aborted) return;
    timer = setTimeout(run, intervalMs);
  };
  const run = (): void => {
    inFlight = beat(controller.signal).then(
      () => {
        failures = 0;
        schedule();
      },
      (error: unknown) => {
        failures += 1;
        if (stopped) return;
        if (failures >= maxFailures) controller.abort(error);
        else schedule();
      },
    );
  };
  if (options.immediate) run();
  else schedule();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await inFlight;
    },
  };
}
