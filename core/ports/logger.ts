/**
 * The structured logger that code outside the entry points is handed (STYLE.md 7): a static
 * message plus a metadata object, and child loggers that carry persistent keys (`transferId`,
 * `taskId`, `agentId`, `site`). A pino logger fits it; the entry points create one
 * (local/logger.ts) and pass it down. Libraries never create their own.
 */

import { ValidationError } from '../errors.ts';

/** The levels, most severe first; `silent` logs nothing. */
export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

export interface LogFn {
  (meta: Readonly<Record<string, unknown>>, message: string): void;
  (message: string): void;
}

export interface Logger {
  readonly fatal: LogFn;
  readonly error: LogFn;
  readonly warn: LogFn;
  readonly info: LogFn;
  readonly debug: LogFn;
  readonly trace: LogFn;
  /** A logger whose every line also carries `bindings`. */
  child(bindings: Readonly<Record<string, unknown>>): Logger;
}

const nothing: LogFn = () => {};

/** Logs nothing: the default of library code when its caller passes no logger. */
export const silentLogger: Logger = {
  fatal: nothing,
  error: nothing,
  warn: nothing,
  info: nothing,
  debug: nothing,
  trace: nothing,
  child: () => silentLogger,
};

/** A level given as `source` (`--log-level`); a bad one is refused naming the source and the levels. */
export function parseLogLevel(value: string, source: string): LogLevel {
  const level = value.trim().toLowerCase();
  if ((logLevels as readonly string[]).includes(level)) return level as LogLevel;
  throw new ValidationError('The log level', [
    { path: source, message: `'${value}' is not a log level; use one of ${logLevels.join(', ')}` },
  ]);
}
