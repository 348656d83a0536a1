/**
 * The errors of the agents (export, import, the node's commands): one base, AgentError, on the
 * coded base of core (CodedError), and one list of their codes. Each subclass sets `this.name` to a
 * literal and passes the error it wraps as `cause`. The CLI's exit code is derived from `code`
 * (cli/exit-codes.ts); an error that is not coded is a bug.
 */
import { CodedError } from '../core/errors.ts';

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

export const vcdErrorCodes = [
  /** The server answered with an Error document (see status, minorErrorCode). */
  'VCD_ERROR',
  /** Login refused. */
  'VCD_AUTH',
  /** No API version in common with the server. */
  'VCD_VERSION',
  /** A named entity (VDC, catalog, network, vApp) does not exist. */
  'VCD_NOT_FOUND',
  /** A task ended in error, aborted or canceled. */
  'VCD_TASK',
  /** A task did not end in time. */
  'VCD_TIMEOUT',
  /** Unreachable, TLS refused, or an answer that is not the vCloud API. */
  'VCD_TRANSPORT',
  /** An answer that is not well-formed XML (VcdXmlError). */
  'VCD_XML_INVALID',
] as const;
export type VcdErrorCode = (typeof vcdErrorCodes)[number];

/** Every code an agent error carries (AgentApiError carries the control plane's own code). */
export const agentErrorCodes = [
  ...ageErrorCodes,
  ...vcdErrorCodes,
  // vim25 and NFC (agent/vsphere)
  'VIM_FAULT',
  'VIM_TRANSPORT',
  'VIM_XML_INVALID',
  'VIM_SCHEMA',
  'TLS_THUMBPRINT_MISMATCH',
  'NFC_TRANSFER',
  'NFC_LEASE_ERROR',
  'PLACEMENT',
  'ITEM_NOT_FOUND',
  'ITEM_AMBIGUOUS',
  // export (agent/export)
  'POWERED_ON',
  'EXPORT_FAILED',
  'DESCRIPTOR_FAILED',
  /** A running VM's live export needs privileges (snapshot, clone, delete) the user lacks. */
  'LIVE_PRIVILEGES',
  // import (agent/import)
  'IMPORT_SPEC_FAILED',
  'IMPORT_FAILED',
  'CONTENT_MISMATCH',
  'PACKAGE_INCOMPLETE',
  'NAME_TAKEN',
  'TRANSFER_NOT_TRUSTED',
  'SIGNER_NOT_PINNED',
  // the key per transfer (agent/identity/transfer-key.ts)
  'RECIPIENT_UNSIGNED',
  'RECIPIENT_UNTRUSTED',
  'TRANSFER_KEY_MISSING',
  // onboarding (agent/import/onboard.ts): asked for, not done
  'VCD_NOT_CONFIGURED',
  'ONBOARDING_INCOMPLETE',
  // odt open (agent/package/open-ova.ts)
  'OVA_OUTPUT_EXISTS',
  // identity and the control plane (agent/identity, agent/runtime)
  'AGENT_IDENTITY',
  'AGENT_API_UNREACHABLE',
  /** `odt agent run` without --code in a folder that holds no enrollment. */
  'AGENT_NOT_ENROLLED',
  /** `odt agent run --site` names another site than the agent's enrollment. */
  'AGENT_WRONG_SITE',
] as const;
export type AgentErrorCode = (typeof agentErrorCodes)[number];

/** Base of every error an agent raises on purpose. */
export class AgentError<C extends string = AgentErrorCode> extends CodedError<C> {
  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'AgentError';
  }
}
