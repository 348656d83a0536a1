import { type Logger as BoltLogger, LogLevel as BoltLogLevel } from '@slack/bolt';
import type { Logger } from '../core/ports/logger.ts';

const rank: Readonly<Record<BoltLogLevel, number>> = {
  [BoltLogLevel.DEBUG]: 0,
  [BoltLogLevel.INFO]: 1,
  [BoltLogLevel.WARN]: 2,
  [BoltLogLevel.ERROR]: 3,
};

/** `(meta, message)` as our code calls it; anything else (Bolt's own calls) becomes one message. */
function lineOf(args: readonly unknown[]): [Record<string, unknown>, string] {
  const [first, second] = args;
  if (args.length === 2 && typeof second === 'string' && typeof first === 'object' && first !== null) {
    return [first instanceof Error ? { err: first } : (first as Record<string, unknown>), second];
  }
  const err = args.find((a): a is Error => a instanceof Error);
  const text = args
    .map((a) => (a instanceof Error ? a.message : typeof a === 'string' ? a : JSON.stringify(a)))
    .join(' ');
  return [err ? { err } : {}, text];
}

/**
 * Bolt's logger interface over ours, so that Bolt, its receivers and its Web API client write the
 * process's JSON lines (`source: 'slack'`). Bolt's debug lines are never passed on: they hold raw
 * Slack payloads (request bodies, WebSocket frames), which STYLE.md 7 keeps out of the logs.
 */
export function boltLogger(log: Logger): BoltLogger {
  let level: BoltLogLevel = BoltLogLevel.INFO;
  let out = log.child({ source: 'slack' });
  const at =
    (l: BoltLogLevel, write: (meta: Record<string, unknown>, message: string) => void) =>
    (...args: unknown[]) => {
      if (rank[l] < rank[level]) return;
      const [meta, message] = lineOf(args);
      write(meta, message);
    };
  return {
    debug: () => {},
    info: at(BoltLogLevel.INFO, (m, s) => out.info(m, s)),
    warn: at(BoltLogLevel.WARN, (m, s) => out.warn(m, s)),
    error: at(BoltLogLevel.ERROR, (m, s) => out.error(m, s)),
    setLevel: (l) => {
      level = l;
    },
    getLevel: () => level,
    setName: (name) => {
      out = log.child({ source: 'slack', component: name });
    },
  };
}
