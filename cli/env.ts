import { z } from 'zod';
import { ValidationError } from '../core/index.ts';

const envSchema = z.object({
  ODT_VCENTER_PASSWORD: z.string().min(1).optional(),
  ODT_VCD_PASSWORD: z.string().min(1).optional(),
});
export type OdtEnv = Readonly<z.infer<typeof envSchema>>;

/** Reads the environment once, at start, into a frozen object (STYLE.md 6). */
export function readEnv(env: NodeJS.ProcessEnv = process.env): OdtEnv {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ValidationError(
      'The environment',
      parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    );
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
