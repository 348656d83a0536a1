import { InterruptedError } from '../core/wait.ts';

export interface Interrupt {
  /** Aborted with an InterruptedError naming the signal. */
  readonly signal: AbortSignal;
  /** Stops listening (call it in `finally`). */
  dispose(): void;
}

/**
 * Turns the first SIGINT (Ctrl-C) or SIGTERM into an abort of `signal`, so that the waits and
 * transfers under way end at once and clean up (leases aborted, partial files removed). A second
 * signal finds no listener and ends the process as Node does by default: the way out when the
 * clean-up itself hangs. Aborts `controller` when given (to listen from a later point on).
 */
export function interruptOnSignals(controller = new AbortController()): Interrupt {
  const listeners = (['SIGINT', 'SIGTERM'] as const).map((name) => {
    const listener = () => {
      dispose();
      controller.abort(new InterruptedError(name));
    };
    process.once(name, listener);
    return [name, listener] as const;
  });
  function dispose(): void {
    for (const [name, listener] of listeners) process.off(name, listener);
  }
  return { signal: controller.signal, dispose };
}
