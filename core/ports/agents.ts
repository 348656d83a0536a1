import { createHash, verify, X509Certificate } from 'node:crypto';
import { CodedError } from '../errors.ts';
import type { ItemKind, ItemTarget } from '../model/transfer.ts';
import type { SignedStatement } from '../model/transfer-key.ts';

/**
 * Enrolled agents and the agent-API protocol (DESIGN.md, "Agents: identity and tenancy").
 *
 * An agent enrolls once with a one-time code issued for a site, presenting its X.509 certificate
 * (node-forge, made on the agent's machine; the key never leaves it). Every later request is
 * signed with that key: RSA-PSS (SHA-256, salt 32) over the canonical string below. Both engines
 * (local `odt serve`, AWS Lambda) verify with `authenticateAgentRequest` against their registry.
 */

export interface AgentRecord {
  readonly id: string;
  readonly site: string;
  readonly name: string;
  /** SHA-256 of the certificate's DER, uppercase hex. */
  readonly certSha256: string;
  readonly certPem: string;
  readonly enrolledAt: string;
  readonly revoked: boolean;
  readonly revokedAt?: string;
}

export interface EnrollmentCode {
  /** The code itself is shown once; only its SHA-256 is stored. */
  readonly code: string;
  readonly site: string;
  readonly expiresAt: string;
}

export type EnrollmentRefusal = 'unknown' | 'used' | 'expired' | 'certificate-taken' | 'wrong-site';

/** What the site reported about its vCenter, for the request form. */
export interface SiteInventory {
  readonly site: string;
  readonly agentId: string;
  readonly reportedAt: string;
  readonly items: readonly unknown[];
}

/** The agent registry port: SQLite locally (local/store/agent-registry.ts), DynamoDB on AWS. */
export interface AgentRegistry {
  issueCode(site: string, ttlMs: number, now: Date): Promise<EnrollmentCode>;
  /**
   * Spends the code (once, before it expires) and records the agent. Throws EnrollmentError with
   * the refusal otherwise; of two concurrent uses exactly one succeeds. With `site` (the site the
   * agent was started for), a code of another site is refused before it is spent.
   */
  enroll(
    input: { code: string; certPem: string; certSha256: string; name: string; id: string; site?: string },
    now: Date,
  ): Promise<AgentRecord>;
  get(agentId: string): Promise<AgentRecord | undefined>;
  list(site?: string): Promise<readonly AgentRecord[]>;
  /** Returns false when no such agent exists. */
  revoke(agentId: string, now: Date): Promise<boolean>;
  /** Records a nonce for `windowMs`; false when the agent already used it inside the window. */
  useNonce(agentId: string, nonce: string, now: Date, windowMs: number): Promise<boolean>;
  putInventory(inventory: SiteInventory): Promise<void>;
  getInventory(site: string): Promise<SiteInventory | undefined>;
}

/** The code of each enrollment refusal. */
export const enrollmentCodes = {
  unknown: 'ENROLLMENT_UNKNOWN',
  used: 'ENROLLMENT_USED',
  expired: 'ENROLLMENT_EXPIRED',
  'certificate-taken': 'ENROLLMENT_CERTIFICATE_TAKEN',
  'wrong-site': 'ENROLLMENT_WRONG_SITE',
} as const satisfies Record<EnrollmentRefusal, string>;
export type EnrollmentErrorCode = (typeof enrollmentCodes)[EnrollmentRefusal];

/** An enrollment code refused (401). */
export class EnrollmentError extends CodedError<EnrollmentErrorCode> {
  constructor(
    readonly refusal: EnrollmentRefusal,
    message: string,
  ) {
    super(enrollmentCodes[refusal], message);
    this.name = 'EnrollmentError';
  }
}

/** The refusal of a code issued for `codeSite` to an agent started for `asked`; the code stays valid. */
export const wrongSiteRefusal = (codeSite: string, asked: string): EnrollmentError =>
  new EnrollmentError(
    'wrong-site',
    `this enrollment code is for site '${codeSite}', not '${asked}'; it was not used: start the agent with --site ${codeSite}, or ask for a code of site '${asked}'`,
  );

/** Authentication failed (401): unknown or revoked agent, bad signature, stale time, replay. */
export class AgentAuthError extends CodedError<'UNAUTHORIZED'> {
  constructor(message: string) {
    super('UNAUTHORIZED', message);
    this.name = 'AgentAuthError';
  }
}

// ---- the signed-request protocol ------------------------------------------------------------

export const agentHeaders = {
  agent: 'x-odt-agent',
  timestamp: 'x-odt-timestamp',
  nonce: 'x-odt-nonce',
  signature: 'x-odt-signature',
} as const;

/** Requests older or newer than this are refused; nonces are kept this long (each way). */
export const signatureWindowMs = 5 * 60 * 1000;

/**
 * The signed string: `METHOD\nPATH\nTIMESTAMP\nNONCE\nhex(SHA-256(body))`, PATH being the request
 * target as sent (path and query string).
 */
export function canonicalRequest(
  method: string,
  path: string,
  timestamp: string,
  nonce: string,
  body: Uint8Array | string,
): Buffer {
  const bodyHash = createHash('sha256').update(body).digest('hex');
  return Buffer.from(`${method.toUpperCase()}\n${path}\n${timestamp}\n${nonce}\n${bodyHash}`);
}

/** RSA-PSS, SHA-256, salt length 32: the same parameters as the agent's manifest signatures. */
export function verifyWithCertificate(certPem: string, data: Buffer, signature: Buffer): boolean {
  try {
    const key = new X509Certificate(certPem).publicKey;
    return verify('sha256', data, { key, padding: 6, saltLength: 32 }, signature);
  } catch {
    return false;
  }
}

export const certificateSha256Of = (certPem: string): string =>
  createHash('sha256').update(new X509Certificate(certPem).raw).digest('hex').toUpperCase();

export interface SignedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Uint8Array | string;
}

const header = (r: Pick<SignedRequest, 'headers'>, name: string): string | undefined => {
  const v = r.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

/** The signature headers of a request, present and well-formed (the body is not needed). */
interface SignedHeaders {
  readonly timestamp: string;
  readonly nonce: string;
  readonly signature: string;
}

/**
 * Checks what can be checked from the headers alone: the signature headers are there, the
 * timestamp is inside the clock window, the nonce is well-formed. The agent API runs this before
 * it reads a body (issue #18).
 */
export function checkSignedHeaders(r: Pick<SignedRequest, 'headers'>, now: Date): SignedHeaders {
  const timestamp = header(r, agentHeaders.timestamp);
  const nonce = header(r, agentHeaders.nonce);
  const signature = header(r, agentHeaders.signature);
  if (!timestamp || !nonce || !signature) {
    throw new AgentAuthError(
      `missing ${[agentHeaders.timestamp, agentHeaders.nonce, agentHeaders.signature].join(', ')} headers; every agent request is signed`,
    );
  }
  const ts = Number(timestamp);
  if (!/^\d{1,16}$/.test(timestamp) || Math.abs(now.getTime() - ts) > signatureWindowMs) {
    throw new AgentAuthError(
      `request timestamp ${timestamp} is outside ±5 minutes of the server's clock (${now.getTime()}); check the agent's clock (NTP)`,
    );
  }
  if (!/^[A-Za-z0-9_-]{16,128}$/.test(nonce))
    throw new AgentAuthError('the nonce must be 16-128 url-safe characters');
  return { timestamp, nonce, signature };
}

/** Checks timestamp, signature (against `certPem`) and nonce; the caller knows the key already. */
export async function checkSignature(
  r: SignedRequest,
  certPem: string,
  now: Date,
  useNonce: (nonce: string) => Promise<boolean>,
): Promise<void> {
  const { timestamp, nonce, signature } = checkSignedHeaders(r, now);
  const data = canonicalRequest(r.method, r.path, timestamp, nonce, r.body);
  if (!verifyWithCertificate(certPem, data, Buffer.from(signature, 'base64'))) {
    throw new AgentAuthError("the request signature does not verify with the agent's enrolled certificate");
  }
  if (!(await useNonce(nonce))) throw new AgentAuthError('replayed request: this nonce was already used');
}

/**
 * What an agent request's headers alone prove: it names a known agent that is not revoked, and
 * its signature headers are well-formed and inside the clock window. The agent API checks this
 * before it reads the body (issue #18); `authenticateAgentRequest` then checks the signature.
 */
export async function admitAgentHeaders(
  registry: AgentRegistry,
  r: Pick<SignedRequest, 'headers'>,
  now: Date,
): Promise<AgentRecord> {
  const agent = await knownAgent(registry, r);
  checkSignedHeaders(r, now);
  return agent;
}

async function knownAgent(registry: AgentRegistry, r: Pick<SignedRequest, 'headers'>): Promise<AgentRecord> {
  const agentId = header(r, agentHeaders.agent);
  if (!agentId) throw new AgentAuthError(`missing ${agentHeaders.agent} header; enroll the agent first`);
  const agent = await registry.get(agentId);
  if (!agent) throw new AgentAuthError(`unknown agent '${agentId}'; enroll it with a new code`);
  if (agent.revoked) {
    throw new AgentAuthError(
      `agent '${agentId}' was revoked${agent.revokedAt ? ` at ${agent.revokedAt}` : ''}; it must be enrolled again with a new identity`,
    );
  }
  return agent;
}

/** Authenticates an agent request: known, not revoked, signed by its enrolled key, fresh, not replayed. */
export async function authenticateAgentRequest(
  registry: AgentRegistry,
  r: SignedRequest,
  now: Date,
): Promise<AgentRecord> {
  const agent = await knownAgent(registry, r);
  await checkSignature(r, agent.certPem, now, (nonce) =>
    registry.useNonce(agent.id, nonce, now, signatureWindowMs),
  );
  return agent;
}

// ---- what the API returns -----------------------------------------------------------------

/** A transfer as an agent sees it: only what it needs to do its task. */
export interface AgentTransferView {
  readonly id: string;
  readonly site: string;
  readonly providerSite: string;
  readonly phase: string;
  readonly items: readonly {
    readonly id: string;
    readonly kind: ItemKind;
    readonly source: string;
    readonly target: ItemTarget;
    readonly state: string;
  }[];
  /** For the provider site: the enrolled export agent that signed the package (pins the signer). */
  readonly exportAgent?: { readonly id: string; readonly certPem: string; readonly certSha256: string };
  /** The transfer's own recipient, signed by the ODT node that holds its identity (issue #18). */
  readonly key?: SignedStatement;
  /** Once wiped: who confirmed the NAS erase, and when. */
  readonly nasErase?: { readonly by: string; readonly at: string };
}

/** Parses `15m`, `1h`, `30s`, `2d` or plain milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms'];
  return n * unit;
}
