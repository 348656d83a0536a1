/**
 * The errors of the age codec. Every error has a stable `code` that the export and import agents
 * (and their Retry/Catch) match on; the message says what failed, the value seen, and what to do.
 */

export const ageErrorCodes = [
  /** A Bech32 string that is malformed or whose checksum does not match. */
  'AGE_BAD_BECH32',
  /** A recipient (`age1…`) that cannot be used. */
  'AGE_BAD_RECIPIENT',
  /** An identity (`AGE-SECRET-KEY-1…`) or identity file that cannot be used. */
  'AGE_BAD_IDENTITY',
  /** The input is not a well-formed age v1 header. */
  'AGE_BAD_HEADER',
  /** A valid age file that this codec does not read (armor, other versions, passphrases). */
  'AGE_UNSUPPORTED',
  /** None of the identities unwraps the file key. */
  'AGE_NO_MATCHING_IDENTITY',
  /** The header MAC or a payload chunk does not authenticate: damaged or tampered. */
  'AGE_AUTH_FAILED',
  /** The input ends before the final payload chunk. */
  'AGE_TRUNCATED',
  /** Bytes follow the final payload chunk. */
  'AGE_TRAILING_DATA',
  /** The payload breaks a structural rule of the format (e.g. an empty final chunk). */
  'AGE_BAD_PAYLOAD',
] as const;
export type AgeErrorCode = (typeof ageErrorCodes)[number];

/** The one error class of the age codec; `code` tells the cases apart. */
export class AgeError extends Error {
  readonly code: AgeErrorCode;

  constructor(code: AgeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AgeError';
    this.code = code;
  }
}
