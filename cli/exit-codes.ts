/**
 * The CLI's exit codes: one table, derived from the errors' codes (STYLE.md 4, 5). cli/main.ts maps
 * a thrown error through `exitCodeOf`; a command that reports without throwing sets
 * `process.exitCode` to one of `exitCodes`. README ("Exit codes") and docs/decisions.md list it.
 */
import { constants } from 'node:os';
import { CommanderError } from 'commander';
import type { AgentErrorCode } from '../agent/errors.ts';
import type { NasErrorCode } from '../agent/nas/nas-error.ts';
import { AgentApiError } from '../agent/runtime/api-client.ts';
import { CodedError, type ErrorCode, errnoOf } from '../core/errors.ts';
import type { CustodyError } from '../core/model/custody.ts';
import type { EnrollmentErrorCode } from '../core/ports/agents.ts';
import type { TaskTokenError } from '../core/ports/workflow.ts';
import { InterruptedError } from '../core/wait.ts';

export const exitCodes = {
  /** Done. */
  ok: 0,
  /** An error that is not ours (a bug): shown with its stack. */
  unexpected: 1,
  /** Usage or input: a bad flag, a missing file, a name that does not exist. */
  usage: 2,
  /** Some items failed; the others are done (the report names each). */
  itemsFailed: 3,
  /**
   * The package did not verify or decrypt, or is not trusted: nothing was imported. Also a custody
   * log whose chain does not check.
   */
  notTrusted: 4,
  /** A pre-flight check failed (`odt node check`, the sandbox's setup). */
  preflightFailed: 5,
  /** A peer (vCenter, vCloud Director, NFC, the control plane) refused or could not be reached. */
  peerFailed: 6,
  /** Not allowed, or not now (who may, four eyes, a decision already taken). */
  notAllowed: 7,
  /** Ended by SIGINT (Ctrl-C), as a shell reports it. */
  interrupted: 130,
  /** Ended by SIGTERM. */
  terminated: 143,
} as const;
export type ExitCode = (typeof exitCodes)[keyof typeof exitCodes];

type KnownCode =
  | ErrorCode
  | AgentErrorCode
  | NasErrorCode
  | EnrollmentErrorCode
  | CustodyError['code']
  | 'UNAUTHORIZED'
  | TaskTokenError['code']
  | 'SANDBOX_SETUP'
  | 'CONFIG_INVALID'
  | 'STATE_LOCKED'
  | 'PORT_IN_USE'
  | 'NO_CONTROL_PLANE'
  | 'NOT_RUNNING';

const { usage, notTrusted, preflightFailed, peerFailed, notAllowed, unexpected } = exitCodes;

/** The exit code of each error code; the compiler insists every code has one. */
export const exitCodeByCode: Readonly<Record<KnownCode, ExitCode>> = {
  // core (core/errors.ts)
  VALIDATION_FAILED: usage,
  NOT_FOUND: usage,
  UNSUPPORTED: usage,
  ILLEGAL_TRANSITION: notAllowed,
  CONFLICT: notAllowed,
  FORBIDDEN: notAllowed,
  NOT_ALLOWED: notAllowed,
  OWN_REQUEST: notAllowed,
  TIMEOUT: peerFailed,
  INTERRUPTED: exitCodes.interrupted,
  // the custody log (core/model/custody.ts): the store was edited outside Sneakernet
  CUSTODY_BROKEN: notTrusted,
  // core's ports
  ENROLLMENT_UNKNOWN: notAllowed,
  ENROLLMENT_USED: notAllowed,
  ENROLLMENT_EXPIRED: notAllowed,
  ENROLLMENT_CERTIFICATE_TAKEN: notAllowed,
  // the agent's --site does not match the code: the flag is wrong, and the code is still good
  ENROLLMENT_WRONG_SITE: usage,
  UNAUTHORIZED: notAllowed,
  TaskDoesNotExist: peerFailed,
  TaskTimedOut: peerFailed,
  InvalidToken: peerFailed,
  // age: a key given is the input; a file that does not decrypt is the package
  AGE_BAD_BECH32: usage,
  AGE_BAD_RECIPIENT: usage,
  AGE_BAD_IDENTITY: usage,
  AGE_BAD_HEADER: notTrusted,
  AGE_UNSUPPORTED: notTrusted,
  AGE_NO_MATCHING_IDENTITY: notTrusted,
  AGE_AUTH_FAILED: notTrusted,
  AGE_TRUNCATED: notTrusted,
  AGE_TRAILING_DATA: notTrusted,
  AGE_BAD_PAYLOAD: notTrusted,
  // vCloud Director
  VCD_ERROR: peerFailed,
  VCD_AUTH: peerFailed,
  VCD_VERSION: peerFailed,
  VCD_NOT_FOUND: peerFailed,
  VCD_TASK: peerFailed,
  VCD_TIMEOUT: peerFailed,
  VCD_TRANSPORT: peerFailed,
  VCD_XML_INVALID: peerFailed,
  // vim25 and NFC
  VIM_FAULT: peerFailed,
  VIM_TRANSPORT: peerFailed,
  VIM_XML_INVALID: peerFailed,
  VIM_SCHEMA: unexpected,
  TLS_THUMBPRINT_MISMATCH: peerFailed,
  NFC_TRANSFER: peerFailed,
  NFC_LEASE_ERROR: peerFailed,
  PLACEMENT: usage,
  ITEM_NOT_FOUND: usage,
  ITEM_AMBIGUOUS: usage,
  // export and import
  POWERED_ON: usage,
  EXPORT_FAILED: peerFailed,
  DESCRIPTOR_FAILED: peerFailed,
  LIVE_PRIVILEGES: preflightFailed,
  IMPORT_SPEC_FAILED: peerFailed,
  IMPORT_FAILED: peerFailed,
  NAME_TAKEN: peerFailed,
  CONTENT_MISMATCH: notTrusted,
  PACKAGE_INCOMPLETE: notTrusted,
  TRANSFER_NOT_TRUSTED: notTrusted,
  RECIPIENT_UNSIGNED: notTrusted,
  RECIPIENT_UNTRUSTED: notTrusted,
  TRANSFER_KEY_MISSING: usage,
  VCD_NOT_CONFIGURED: usage,
  ONBOARDING_INCOMPLETE: peerFailed,
  OVA_OUTPUT_EXISTS: usage,
  // the NAS (agent/nas): the wrong folder is the input; a NAS that cannot take the package, a pre-flight
  NAS_MISSING: usage,
  NAS_NOT_A_FOLDER: usage,
  NAS_NOT_INITIALIZED: usage,
  NAS_NOT_MOUNTED: usage,
  NAS_MARKER_INVALID: usage,
  NAS_READ_ONLY: preflightFailed,
  NAS_NOT_WRITABLE: preflightFailed,
  NAS_TOO_SMALL: preflightFailed,
  NAS_FILE_TOO_LARGE: preflightFailed,
  NAS_NAME_CLASH: preflightFailed,
  // a missing flag, refused before anything on the NAS is read
  SIGNER_NOT_PINNED: usage,
  // the agent's own identity and the control plane
  AGENT_IDENTITY: usage,
  AGENT_API_UNREACHABLE: peerFailed,
  AGENT_NOT_ENROLLED: usage,
  AGENT_WRONG_SITE: usage,
  SANDBOX_SETUP: preflightFailed,
  CONFIG_INVALID: usage,
  // odt serve and the admin CLI (issue 22): a folder or port taken, no control plane where looked
  STATE_LOCKED: notAllowed,
  PORT_IN_USE: usage,
  NO_CONTROL_PLANE: usage,
  NOT_RUNNING: peerFailed,
};

/** Node system errors of the network: the peer; any other errno is a path or a disk (usage). */
const networkErrnos = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'EPIPE',
]);

/** The exit code for an error that ended a command. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? exitCodes.ok : usage;
  // As a shell reports a process ended by the signal: 130 for SIGINT, 143 for SIGTERM.
  if (error instanceof InterruptedError) return 128 + constants.signals[error.signal];
  // The control plane's refusal: its code is the server's own. An enrollment refusal is about the
  // code or the --site given (the same exit as in the table), anything else about the peer.
  if (error instanceof AgentApiError)
    return error.code.startsWith('ENROLLMENT_')
      ? ((exitCodeByCode as Record<string, ExitCode>)[error.code] ?? peerFailed)
      : peerFailed;
  if (error instanceof CodedError)
    return (exitCodeByCode as Record<string, ExitCode>)[error.code] ?? unexpected;
  const errno = errnoOf(error);
  if (errno !== undefined) return networkErrnos.has(errno) ? peerFailed : usage;
  return unexpected;
}
