import { createHash, type X509Certificate } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { AgentError } from '../../errors.ts';

/**
 * How the agent trusts a vCenter: the system CAs (default), a pinned SHA-256 thumbprint of the
 * server's certificate (vCenters with self-signed certificates), or nothing (explicit --insecure).
 */
export type TlsTrust =
  | { readonly kind: 'system' }
  | { readonly kind: 'thumbprint'; readonly thumbprint: string }
  | { readonly kind: 'insecure' };

export class TlsTrustError extends AgentError<'TLS_THUMBPRINT_MISMATCH'> {
  constructor(message: string) {
    super('TLS_THUMBPRINT_MISMATCH', message);
    this.name = 'TlsTrustError';
  }
}

/** Uppercase hex without separators; accepts `AA:BB:…`, `aa bb …` or plain hex. */
export function normalizeThumbprint(value: string): string {
  const hex = value.replace(/[\s:-]/g, '').toUpperCase();
  if (!/^[0-9A-F]+$/.test(hex) || (hex.length !== 64 && hex.length !== 40)) {
    throw new TlsTrustError(
      `'${value}' is not a certificate thumbprint; give the SHA-256 fingerprint as 64 hex digits ` +
        '(colons allowed), e.g. from `openssl x509 -noout -fingerprint -sha256`.',
    );
  }
  return hex;
}

/** The thumbprint of a DER certificate, in the algorithm that matches `like` (SHA-256 or SHA-1). */
export function thumbprintOf(der: Buffer, like: string): string {
  const algo = like.length === 40 ? 'sha1' : 'sha256';
  return createHash(algo).update(der).digest('hex').toUpperCase();
}

/** Formats a thumbprint as colon-separated pairs, the way vSphere and openssl print them. */
export const colonHex = (hex: string): string => hex.match(/../g)?.join(':') ?? hex;

/** What a pinned connection saw: the host, the certificate's thumbprint and the pinned one. */
export interface ThumbprintMismatch {
  readonly host: string;
  readonly port: number;
  readonly got: string;
  readonly expected: string;
}

export interface HttpAgentOptions {
  /** Sockets per host; default 16. */
  readonly maxSockets?: number;
  /** The message of the TlsTrustError for a certificate that is not the pinned one. */
  readonly mismatch?: (seen: ThumbprintMismatch) => string;
}

const vcenterMismatch = ({ host, port, got, expected }: ThumbprintMismatch): string =>
  `The certificate of ${host}:${port} has thumbprint ${colonHex(got)}, ` +
  `not the pinned ${colonHex(expected)}. If the server's certificate was replaced on purpose, ` +
  'pass its new SHA-256 thumbprint with --thumbprint; otherwise do not connect.';

/**
 * An HTTP(S) agent that enforces the trust mode. With a pinned thumbprint the socket is handed to
 * the HTTP client only after the fingerprint matched, so no request byte (and no session cookie)
 * ever reaches an impostor.
 */
export function createHttpAgent(url: URL, trust: TlsTrust, options: HttpAgentOptions = {}): http.Agent {
  const maxSockets = options.maxSockets ?? 16;
  const mismatch = options.mismatch ?? vcenterMismatch;
  if (url.protocol === 'http:') return new http.Agent({ keepAlive: true, maxSockets });
  if (trust.kind === 'system') return new https.Agent({ keepAlive: true, maxSockets });
  if (trust.kind === 'insecure')
    return new https.Agent({ keepAlive: true, maxSockets, rejectUnauthorized: false });
  const expected = normalizeThumbprint(trust.thumbprint);
  const agent = new https.Agent({ keepAlive: true, maxSockets, rejectUnauthorized: false });
  // http.Agent accepts an asynchronous createConnection(options, callback).
  (agent as unknown as { createConnection: unknown }).createConnection = (
    options: tls.ConnectionOptions,
    callback: (err: Error | null, socket?: Duplex) => void,
  ) => {
    const socket = tls.connect({ ...options, rejectUnauthorized: false });
    const onError = (err: Error) => callback(err);
    socket.once('error', onError);
    socket.once('secureConnect', () => {
      socket.off('error', onError);
      const cert = socket.getPeerX509Certificate?.() as X509Certificate | undefined;
      const got = cert ? thumbprintOf(cert.raw, expected) : '';
      if (got !== expected) {
        socket.destroy();
        callback(
          new TlsTrustError(
            mismatch({ host: String(options.host), port: Number(options.port), got, expected }),
          ),
        );
        return;
      }
      callback(null, socket);
    });
    return undefined;
  };
  return agent;
}

/** Errors of Node's TLS client for a certificate that the system CAs do not vouch for. */
export const untrustedCertificateCodes = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * The SHA-256 thumbprint of the certificate a TLS server presents, read without trusting it (for
 * a message that tells the person what to check and pin); undefined if it cannot be read.
 */
export function presentedThumbprint(url: URL, timeoutMs = 5000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 443),
      servername: /^[\d.]+$|:/.test(url.hostname) ? undefined : url.hostname,
      rejectUnauthorized: false,
    });
    const done = (value: string | undefined) => {
      socket.destroy();
      resolve(value);
    };
    socket.setTimeout(timeoutMs, () => done(undefined));
    socket.once('secureConnect', () => {
      const raw = socket.getPeerCertificate()?.raw;
      done(raw ? createHash('sha256').update(raw).digest('hex').toUpperCase() : undefined);
    });
    socket.once('error', () => done(undefined));
  });
}
