import { z } from 'zod';
import { isUserGroupId } from '../bot/approvers-group.ts';
import { CodedError } from '../core/errors.ts';
import { type LogLevel, logLevels } from '../core/ports/logger.ts';

/**
 * The environment of the workflow's Lambda functions, read once and validated. A missing or bad
 * variable fails the cold start with a message naming it (infra/ sets all of them).
 */
const names = (raw: string): string[] =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

const schema = z
  .object({
    TABLE_NAME: z.string().trim().min(1, 'must name the DynamoDB table'),
    STATE_MACHINE_ARN: z
      .string()
      .trim()
      .regex(
        /^arn:[\w-]+:states:[\w-]*:\d*:stateMachine:[\w-]+$/,
        'must be a Step Functions state machine ARN',
      ),
    /**
     * Comma-separated approvers: Slack user ids, Slack user group ids (S…, members read with the
     * bot token; needs SLACK_SECRET_ARN), or CLI names; may be empty for the workflow's functions.
     */
    APPROVERS: z.string().default('').transform(names),
    /** The definition's HeartbeatSeconds for agent tasks (infra/ reads it from the ASL file). */
    HEARTBEAT_SECONDS: z.coerce.number().int().positive().max(31_536_000).default(600),
    /** Secrets Manager secret with the Slack app's `{ "botToken", "signingSecret" }`; unset: no Slack. */
    SLACK_SECRET_ARN: z
      .string()
      .trim()
      .regex(
        /^arn:[\w-]+:secretsmanager:[\w-]*:\d*:secret:[\w/+=.@-]+$/,
        'must be a Secrets Manager secret ARN',
      )
      .optional(),
    /** Slack channel id of the approvers (approval requests, progress, reports). */
    APPROVERS_CHANNEL: z
      .string()
      .trim()
      .regex(/^[CG][A-Z0-9]+$/, 'must be a Slack channel id such as C0123ABCD')
      .optional(),
    /** The Slack Web API base URL; unset: Slack's own. */
    SLACK_API_URL: z.string().trim().url('must be a URL ending with /api/').optional(),
    /** The functions' log level (docs/operations.md, Logging). */
    ODT_LOG_LEVEL: z.preprocess(
      (v) => (typeof v === 'string' ? v.trim().toLowerCase() : v),
      z.enum(logLevels, { error: () => `use one of ${logLevels.join(', ')}` }).default('info'),
    ),
  })
  .refine((c) => !c.SLACK_SECRET_ARN || c.APPROVERS_CHANNEL, {
    path: ['APPROVERS_CHANNEL'],
    message: 'must be set when SLACK_SECRET_ARN is (the channel where approval requests go)',
  })
  .refine((c) => c.SLACK_SECRET_ARN || !c.APPROVERS.some(isUserGroupId), {
    path: ['APPROVERS'],
    message:
      'names a Slack user group (S…), whose members are read with the Slack bot token: set SLACK_SECRET_ARN and APPROVERS_CHANNEL, or list user ids',
  });

/** Where the functions talk to Slack, when the stack was given a Slack app. */
export interface SlackConfig {
  readonly secretArn: string;
  readonly approversChannel: string;
  readonly apiUrl?: string;
}

export interface FunctionConfig {
  readonly tableName: string;
  readonly stateMachineArn: string;
  readonly approvers: readonly string[];
  readonly heartbeatSeconds: number;
  readonly slack?: SlackConfig;
  /** Default `info`. */
  readonly logLevel?: LogLevel;
}

export class ConfigError extends CodedError<'CONFIG_INVALID'> {
  constructor(message: string) {
    super('CONFIG_INVALID', message);
    this.name = 'ConfigError';
  }
}

/** Validates `env`; throws ConfigError naming every bad variable. */
export function parseConfig(env: Readonly<Record<string, string | undefined>>): FunctionConfig {
  const result = schema.safeParse({
    TABLE_NAME: env.TABLE_NAME,
    STATE_MACHINE_ARN: env.STATE_MACHINE_ARN,
    APPROVERS: env.APPROVERS,
    HEARTBEAT_SECONDS: env.HEARTBEAT_SECONDS || undefined,
    SLACK_SECRET_ARN: env.SLACK_SECRET_ARN || undefined,
    APPROVERS_CHANNEL: env.APPROVERS_CHANNEL || undefined,
    SLACK_API_URL: env.SLACK_API_URL || undefined,
    ODT_LOG_LEVEL: env.ODT_LOG_LEVEL || undefined,
  });
  if (!result.success) {
    const problems = result.error.issues.map((i) => {
      const name = String(i.path[0] ?? '(environment)');
      const value = env[name];
      return `${name} ${value === undefined ? 'is not set' : `is invalid (${i.message})`}`;
    });
    throw new ConfigError(`Function environment: ${problems.join('; ')}.`);
  }
  const c = result.data;
  return Object.freeze({
    tableName: c.TABLE_NAME,
    stateMachineArn: c.STATE_MACHINE_ARN,
    approvers: Object.freeze(c.APPROVERS),
    heartbeatSeconds: c.HEARTBEAT_SECONDS,
    logLevel: c.ODT_LOG_LEVEL,
    ...(c.SLACK_SECRET_ARN && c.APPROVERS_CHANNEL
      ? {
          slack: Object.freeze({
            secretArn: c.SLACK_SECRET_ARN,
            approversChannel: c.APPROVERS_CHANNEL,
            ...(c.SLACK_API_URL ? { apiUrl: c.SLACK_API_URL } : {}),
          }),
        }
      : {}),
  });
}

let loaded: FunctionConfig | undefined;

/** The process environment, read and validated on first use, then the same frozen object. */
export function config(): FunctionConfig {
  loaded ??= parseConfig(process.env);
  return loaded;
}
