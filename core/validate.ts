import { z } from 'zod';
import { type FieldIssue, ValidationError } from './errors.ts';

/**
 * zod's issues as field issues (`items.0.target.vdc: …`), each path after `prefix`; the one place
 * they are worded, for every entry point that validates with zod.
 */
export function fieldIssues(error: z.ZodError, prefix: readonly (string | number)[] = []): FieldIssue[] {
  return error.issues.map((issue) => ({
    path: [...prefix, ...issue.path].map(String).join('.'),
    message: issue.message,
  }));
}

/** A zod error as `path: message; …`, anything else as its message. */
export function issuesText(error: unknown): string {
  if (!(error instanceof z.ZodError)) return error instanceof Error ? error.message : String(error);
  return fieldIssues(error)
    .map((i) => `${i.path || '(root)'}: ${i.message}`)
    .join('; ');
}

/** Parses `input` with `schema`; on failure throws a ValidationError naming every offending field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new ValidationError(what, fieldIssues(result.error), { cause: result.error });
}
