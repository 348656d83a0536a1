/**
 * Polls `f` every `everyMs` until it gives something truthy; throws naming `what` after `ms`.
 * Defaults: 90 s, every 50 ms (end-to-end runs with real processes); in-process tests pass less.
 */
export async function until<T>(
  f: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  ms = 90_000,
  everyMs = 50,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
