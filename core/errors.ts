/**
 * The errors of the domain. Every error has a stable `code` that chat messages, the CLI's exit
 * handling and the state machine's Retry/Catch match on, and sets `this.name` to a literal so that
 * Lambda reports it as `errorType` (a subclass that forgets it reports plain `Error`).
 */

import type { Allowed, PersonAction } from './model/permissions.ts';

export const errorCodes = [
  'VALIDATION_FAILED',
  'ILLEGAL_TRANSITION',
  'NOT_FOUND',
  'CONFLICT',
  'FORBIDDEN',
  'NOT_ALLOWED',
  'OWN_REQUEST',
  'UNSUPPORTED',
  'TIMEOUT',
  'INTERRUPTED',
] as const;
export type ErrorCode = (typeof errorCodes)[number];

/**
 * The one base of every error the product raises on purpose, core's and the agent's: a stable
 * `code` and the `cause` it wraps. Anything that is not a CodedError (a Node system error, an SDK's
 * error, a bug) is not ours; entry points treat it as unexpected.
 */
export class CodedError<C extends string = string> extends Error {
  readonly code: C;

  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CodedError';
    this.code = code;
  }
}

/**
 * Base of every refusal of the service (`core/`): the person's input or action, never the
 * machinery. Only these are shown to a person as the service's answer (in Slack, the CLI).
 */
export class OdtError extends CodedError<ErrorCode> {
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'OdtError';
  }
}

/**
 * The code to report for `error`: ours (CodedError) or a Node system error's errno; undefined for
 * anything else (a bug, shown with its stack).
 */
export function codeOf(error: unknown): string | undefined {
  return error instanceof CodedError ? error.code : errnoOf(error);
}

/**
 * The `code` of a Node system error (`ENOENT`, `ECONNREFUSED`, …), which is not ours: read here,
 * once, rather than by casting at each use.
 */
export function errnoOf(error: unknown): string | undefined {
  if (!(error instanceof Error) || error instanceof CodedError || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

export interface FieldIssue {
  /** Dotted path of the offending field, e.g. `items.0.target.vdc`. */
  readonly path: string;
  readonly message: string;
}

/** Input that does not match its schema; `issues` names each offending field. */
export class ValidationError extends OdtError {
  readonly issues: readonly FieldIssue[];

  constructor(what: string, issues: readonly FieldIssue[], options?: { cause?: unknown }) {
    const list = issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ');
    super('VALIDATION_FAILED', `${what} is not valid: ${list}`, options);
    this.name = 'ValidationError';
    this.issues = issues;
  }
}

/** A phase change that the lifecycle does not allow from the current phase. */
export class IllegalTransitionError extends OdtError {
  readonly from: string;
  readonly to: string;

  constructor(subject: string, from: string, to: string, allowed: readonly string[]) {
    const next =
      allowed.length > 0 ? `from '${from}' it can go to: ${allowed.join(', ')}` : `'${from}' is final`;
    super('ILLEGAL_TRANSITION', `${subject} cannot go from '${from}' to '${to}'; ${next}.`);
    this.name = 'IllegalTransitionError';
    this.from = from;
    this.to = to;
  }
}

/** A transfer, item, site or task that does not exist. */
export class NotFoundError extends OdtError {
  constructor(what: string, id: string) {
    super(
      'NOT_FOUND',
      `${what} '${id}' does not exist; check the id (\`odt transfer list\` lists transfers).`,
    );
    this.name = 'NotFoundError';
  }
}

/** A conditional write lost against a concurrent one; re-read and decide again. */
export class ConflictError extends OdtError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFLICT', message, options);
    this.name = 'ConflictError';
  }
}

/**
 * Not now or not here: a decision already taken, nothing to retry, another site's task. Who may act
 * at all is a PermissionError.
 */
export class ForbiddenError extends OdtError {
  constructor(message: string) {
    super('FORBIDDEN', message);
    this.name = 'ForbiddenError';
  }
}

/** Who was refused what, and who may (core/model/permissions.ts decides and words it). */
export interface PermissionDetails {
  readonly action: PersonAction;
  readonly actor: string;
  readonly transferId: string;
  readonly requester: string;
  readonly allowed: Allowed;
}

/**
 * A person may not take this action on this transfer; nothing changed. Base of NotAllowedError and
 * OwnRequestError: the adapters say who may from its fields, in their own words.
 */
export class PermissionError extends OdtError {
  readonly action: PersonAction;
  readonly actor: string;
  readonly transferId: string;
  readonly requester: string;
  readonly allowed: Allowed;

  constructor(code: 'NOT_ALLOWED' | 'OWN_REQUEST', message: string, details: PermissionDetails) {
    super(code, message);
    this.name = 'PermissionError';
    this.action = details.action;
    this.actor = details.actor;
    this.transferId = details.transferId;
    this.requester = details.requester;
    this.allowed = details.allowed;
  }
}

/** The actor is neither an approver nor, where that suffices, the requester. */
export class NotAllowedError extends PermissionError {
  constructor(message: string, details: PermissionDetails) {
    super('NOT_ALLOWED', message, details);
    this.name = 'NotAllowedError';
  }
}

/** An approver would decide their own request (four eyes). */
export class OwnRequestError extends PermissionError {
  constructor(message: string, details: PermissionDetails) {
    super('OWN_REQUEST', message, details);
    this.name = 'OwnRequestError';
  }
}
