import { z } from 'zod';
import { fieldIssues, ValidationError } from '../core/index.ts';
import { logLevels } from '../core/ports/logger.ts';

// An empty password is taken as unset (`export ODT_VCENTER_PASSWORD=` of an unset variable), so
// that the message says what to do rather than that a string is too short.
const password = z.preprocess((v) => (v === '' ? undefined : v), z.string().min(1).optional());
const envSchema = z.object({
  ODT_VCENTER_PASSWORD: password,
  ODT_VCD_PASSWORD: password,
  /** The level of `odt serve` and `odt agent run` when --log-level is not given (default info). */
  ODT_LOG_LEVEL: z.preprocess(
    (v) => (v === '' ? undefined : typeof v === 'string' ? v.trim().toLowerCase() : v),
    z
      .enum(logLevels, {
        error: (issue) => `'${String(issue.input)}' is not a log level; use one of ${logLevels.join(', ')}`,
      })
      .optional(),
  ),
});
export type OdtEnv = Readonly<z.infer<typeof envSchema>>;

/** Reads the environment once, at start, into a frozen object (STYLE.md 6). */
export function readEnv(env: NodeJS.ProcessEnv = process.env): OdtEnv {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ValidationError('The environment', fieldIssues(parsed.error));
  }
  return Object.freeze(parsed.data);
}

/** The vCenter password, which never comes from a flag (it would show in `ps` and shell history). */
export function vcenterPassword(env: OdtEnv): string {
  if (!env.ODT_VCENTER_PASSWORD) {
    throw new ValidationError('The environment', [
      {
        path: 'ODT_VCENTER_PASSWORD',
        message: 'is not set; export ODT_VCENTER_PASSWORD with the vCenter password',
      },
    ]);
  }
  return env.ODT_VCENTER_PASSWORD;
}
