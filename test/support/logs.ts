import type { Logger, LogLevel } from '../../core/ports/logger.ts';
import { createLogger, SecretMask } from '../../shared/logger.ts';

/** One parsed log line. */
export type LogLine = Record<string, unknown> & { level: string; time: string; msg: string };

/** Every line of `text` parsed as JSON (throws on a line that is not: all log lines must be). */
export const jsonLines = (text: string): LogLine[] =>
  text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as LogLine;
      } catch {
        throw new Error(`not a JSON log line: ${l}`);
      }
    });

/** The JSON lines among other output (e.g. a child process's stdout and stderr together). */
export const jsonLinesIn = (text: string): LogLine[] =>
  jsonLines(
    text
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .join('\n'),
  );

/** A real logger (local/logger.ts) writing into memory: the raw text, and its lines parsed. */
export function captureLogs(
  level: LogLevel = 'trace',
  secrets: readonly string[] = [],
): { logger: Logger; text(): string; lines(): LogLine[] } {
  let text = '';
  const logger = createLogger({
    level,
    destination: {
      write: (line: string) => {
        text += line;
      },
    },
    secrets: new SecretMask(secrets),
  });
  return { logger, text: () => text, lines: () => jsonLines(text) };
}
