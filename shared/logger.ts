import { pino } from 'pino';
import { codeOf } from '../core/errors.ts';
import { type Clock, systemClock } from '../core/ports/clock.ts';
import type { Logger, LogLevel } from '../core/ports/logger.ts';

/**
 * The one place a process's logger is made (STYLE.md 7): `odt serve`, `odt agent run` and the
 * Lambda functions each create one at start and pass it (or children of it) down. JSON lines with
 * `level` (a label), `time` (ISO 8601, from the clock), the bound keys, the metadata and `msg`.
 *
 * Secrets are kept out twice over: by key (pino's redaction of the paths below) and by value (the
 * finished line is scrubbed of the secrets the process knows, and of anything shaped like a Slack
 * token, a bearer or basic credential, a private key, an age identity, an enrollment code or a JWT),
 * so that a secret inside an error message is masked too.
 */

export const censor = '[redacted]';

/** Keys whose values never reach a log line, in any letter case they are sent in. */
export const secretKeys = [
  'password',
  'passwd',
  'secret',
  'token',
  'adminToken',
  'botToken',
  'appToken',
  'signingSecret',
  'taskToken',
  'enrollmentCode',
  'privateKey',
  'keyPem',
  'authorization',
  'Authorization',
  'cookie',
  'Cookie',
  'set-cookie',
  'Set-Cookie',
  'x-vmware-vcloud-access-token',
  'X-VMWARE-VCLOUD-ACCESS-TOKEN',
] as const;

const segment = (key: string): string => (/^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `["${key}"]`);

/** pino redaction paths: each secret key at the top level and up to two objects down. */
export const redactPaths: readonly string[] = secretKeys.flatMap((key) => {
  const s = segment(key);
  return [s.startsWith('.') ? s.slice(1) : s, `*${s}`, `*.*${s}`];
});

/** Secret shapes, masked wherever they appear in a line. No replacement holds a quote or backslash. */
const secretShapes: readonly [RegExp, string][] = [
  [/-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?-----END \1PRIVATE KEY-----/g, censor],
  [/\bx(?:ox[a-z]|app)-[0-9A-Za-z-]+/g, censor],
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi, `$1 ${censor}`],
  [/AGE-SECRET-KEY-1[0-9A-Z]+/g, censor],
  [/\b[A-HJ-NP-Z2-9]{5}(?:-[A-HJ-NP-Z2-9]{5}){3}\b/g, censor],
  [/\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, censor],
  [/(vmware_soap_session=)(?:\\")?[^;\s,"\\]+/g, `$1${censor}`],
];

/**
 * Secret values a process knows (passwords, tokens from its configuration or a secret store),
 * masked in every line written after they were added. Values under 4 characters are not masked:
 * they would mask ordinary text.
 */
export class SecretMask {
  #values: string[] = [];

  constructor(values: Iterable<string | undefined> = []) {
    for (const v of values) this.add(v);
  }

  add(value: string | undefined): void {
    if (!value || value.length < 4) return;
    // As written, and as it appears inside a JSON string.
    const forms = new Set([value, JSON.stringify(value).slice(1, -1)]);
    this.#values = [...new Set([...this.#values, ...forms])].sort((a, b) => b.length - a.length);
  }

  /** The line with every known secret and secret shape replaced by `[redacted]`. */
  apply(line: string): string {
    let out = line;
    for (const v of this.#values) if (out.includes(v)) out = out.split(v).join(censor);
    for (const [shape, to] of secretShapes) out = out.replace(shape, to);
    return out;
  }
}

export interface LoggerOptions {
  readonly level: LogLevel;
  /** Where the lines go. Default: stderr (stdout stays for what a person or a script reads). */
  readonly destination?: { write(line: string): unknown };
  /** Keys on every line, e.g. `{ process: 'serve' }`. */
  readonly bindings?: Readonly<Record<string, unknown>>;
  /** Secret values to mask; more can be added to it later. */
  readonly secrets?: SecretMask;
  /** Default: the system clock. */
  readonly clock?: Clock;
}

/** The process's logger: JSON lines, redacted, at `level`. */
export function createLogger(options: LoggerOptions): Logger {
  const clock = options.clock ?? systemClock;
  const mask = options.secrets ?? new SecretMask();
  return pino(
    {
      level: options.level,
      base: { ...options.bindings },
      timestamp: () => `,"time":"${clock.now().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...redactPaths], censor },
      hooks: { streamWrite: (line) => mask.apply(line) },
    },
    (options.destination ?? process.stderr) as pino.DestinationStream,
  );
}

/**
 * Runs `f` (one of the workflow's functions), logged: at debug when called; a coded error (one the
 * definition's Retry/Catch handle) at warn, anything else at error with its stack; rethrown.
 */
export async function loggedCall<T>(
  log: Logger,
  meta: Readonly<Record<string, unknown>>,
  message: string,
  f: () => Promise<T>,
): Promise<T> {
  log.debug(meta, message);
  try {
    return await f();
  } catch (error) {
    const code = codeOf(error);
    if (code !== undefined)
      log.warn({ ...meta, code, reason: (error as Error).message }, `${message} failed`);
    else log.error({ ...meta, err: error }, `${message} failed`);
    throw error;
  }
}
