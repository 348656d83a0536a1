import type { z } from 'zod';
import { ValidationError } from './errors.ts';

/** Parses `input` with `schema`; on failure throws a ValidationError naming every offending field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({
    path: issue.path.map(String).join('.'),
    message: issue.message,
  }));
  throw new ValidationError(what, issues, { cause: result.error });
}
