import { Option } from 'commander';
import { type Logger, type LogLevel, logLevels, parseLogLevel } from '../core/ports/logger.ts';
import type { OdtEnv } from './env.ts';
import type { Io } from './io.ts';

/** `--log-level` of the commands that run as services (`odt serve`, `odt agent run`). */
export const logLevelOption = (): Option =>
  new Option(
    '--log-level <level>',
    `JSON log lines on stderr at this level or above: ${logLevels.join(', ')} (default: ODT_LOG_LEVEL, else info)`,
  ).argParser((v) => parseLogLevel(v, '--log-level'));

/**
 * The command's logger: JSON lines on the error stream (stdout stays for what a person or a
 * script reads), at `--log-level`, else ODT_LOG_LEVEL, else info; the given secret values (and
 * anything shaped like a secret) are masked in every line. Loads pino only when called.
 */
export async function commandLogger(
  io: Io,
  flag: LogLevel | undefined,
  env: OdtEnv,
  bindings: Readonly<Record<string, unknown>>,
  secrets: Iterable<string | undefined> = [],
): Promise<Logger> {
  const { createLogger, SecretMask } = await import('../shared/logger.ts');
  return createLogger({
    level: flag ?? env.ODT_LOG_LEVEL ?? 'info',
    destination: io.err,
    bindings,
    secrets: new SecretMask(secrets),
  });
}
