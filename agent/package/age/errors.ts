/**
 * The errors of the age codec. Every error has a stable `code` that the export and import agents
 * (and their Retry/Catch) match on; the message says what failed, the value seen, and what to do.
 */

import { type AgeErrorCode, AgentError } from '../../errors.ts';

export { type AgeErrorCode, ageErrorCodes } from '../../errors.ts';

/** The one error class of the age codec; `code` tells the cases apart. */
export class AgeError extends AgentError<AgeErrorCode> {
  constructor(code: AgeErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'AgeError';
  }
}
