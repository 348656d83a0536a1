import { z } from 'zod';

/**
 * The environment of the workflow's Lambda functions, read once and validated. A missing or bad
 * variable fails the cold start with a message naming it (infra/ sets all of them).
 */
const names = (raw: string): string[] =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

const schema = z.object({
  TABLE_NAME: z.string().trim().min(1, 'must name the DynamoDB table'),
  STATE_MACHINE_ARN: z
    .string()
    .trim()
    .regex(
      /^arn:[\w-]+:states:[\w-]*:\d*:stateMachine:[\w-]+$/,
      'must be a Step Functions state machine ARN',
    ),
  /** Comma-separated approvers (Slack user ids or CLI names); may be empty for the workflow's functions. */
  APPROVERS: z.string().default('').transform(names),
  /** The definition's HeartbeatSeconds for agent tasks (infra/ reads it from the ASL file). */
  HEARTBEAT_SECONDS: z.coerce.number().int().positive().max(31_536_000).default(600),
});

export interface FunctionConfig {
  readonly tableName: string;
  readonly stateMachineArn: string;
  readonly approvers: readonly string[];
  readonly heartbeatSeconds: number;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
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
  });
}

let loaded: FunctionConfig | undefined;

/** The process environment, read and validated on first use, then the same frozen object. */
export function config(): FunctionConfig {
  loaded ??= parseConfig(process.env);
  return loaded;
}
