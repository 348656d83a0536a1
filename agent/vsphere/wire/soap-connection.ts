import http from 'node:http';
import https from 'node:https';
import { errnoOf } from '../../../core/errors.ts';
import { AgentError } from '../../errors.ts';
import { envelope, serializeCall, type VimValue } from './serialize.ts';
import {
  colonHex,
  createHttpAgent,
  presentedThumbprint,
  type TlsTrust,
  TlsTrustError,
  untrustedCertificateCodes,
} from './tls.ts';
import { NS, parseXml, type XmlNode } from './xml.ts';

/** A vim25 fault: `faultType` is the fault's type name (InvalidLogin, NotAuthenticated, …). */
export class VimFaultError extends AgentError<'VIM_FAULT'> {
  constructor(
    readonly method: string,
    readonly faultType: string,
    readonly faultString: string,
    readonly detail: XmlNode | undefined,
  ) {
    super('VIM_FAULT', `${method} failed with ${faultType}: ${faultString}`);
    this.name = 'VimFaultError';
  }
}

/** The server could not be reached or answered with something that is not SOAP. */
export class VimTransportError extends AgentError<'VIM_TRANSPORT'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('VIM_TRANSPORT', message, options);
    this.name = 'VimTransportError';
  }
}

export interface SoapConnectionOptions {
  /** The SDK endpoint, e.g. `https://vcenter.example.com/sdk`. */
  readonly url: URL;
  readonly trust: TlsTrust;
  /** Per-request timeout; vim25 calls are short, long work runs as tasks. Default 120 s. */
  readonly timeoutMs?: number;
}

/**
 * The wire layer: envelopes, SOAPAction, the session cookie and faults. It knows nothing of
 * sessions or objects; `VimClient` builds on it.
 */
export class SoapConnection {
  readonly url: URL;
  /** How the server's certificate is trusted; device hosts of NFC leases fall back to it. */
  readonly trust: TlsTrust;
  readonly agent: http.Agent;
  /** Sent as `SOAPAction: "urn:vim25/<apiVersion>"`; set from about.apiVersion after the first call. */
  apiVersion = '7.0';
  private cookie: string | undefined;
  private readonly timeoutMs: number;

  constructor(options: SoapConnectionOptions) {
    this.url = options.url;
    this.trust = options.trust;
    this.agent = createHttpAgent(options.url, options.trust);
    this.timeoutMs = options.timeoutMs ?? 120_000;
  }

  /** The session cookie header value, for NFC transfers that must carry the session. */
  get sessionCookie(): string | undefined {
    return this.cookie;
  }

  clearSession(): void {
    this.cookie = undefined;
  }

  /**
   * Calls a method and returns its `<…Response>` element (read `returnval` from it). An abort of
   * `signal` cuts the request and rejects with the signal's reason.
   */
  async call(
    method: string,
    args: Record<string, VimValue | undefined>,
    options: { readonly signal?: AbortSignal } = {},
  ): Promise<XmlNode> {
    const body = envelope(serializeCall(method, args));
    const { status, text, setCookie } = await this.post(body, options.signal);
    for (const c of setCookie) {
      const m = /^(vmware_soap_session=[^;]*)/.exec(c);
      if (m) this.cookie = m[1];
    }
    let doc: XmlNode;
    try {
      doc = parseXml(text);
    } catch (error) {
      throw new VimTransportError(
        `${method}: ${this.url.host} answered HTTP ${status} with a body that is not SOAP; is ${this.url.href} the vCenter SDK endpoint (…/sdk)?`,
        { cause: error },
      );
    }
    const bodyNode = doc.child('Body');
    const fault = bodyNode?.child('Fault');
    if (fault) throw faultFrom(method, fault);
    const response = bodyNode?.children[0];
    if (!response || status >= 400) {
      throw new VimTransportError(`${method}: HTTP ${status} from ${this.url.host} without a SOAP response`);
    }
    return response;
  }

  private post(
    body: string,
    signal: AbortSignal | undefined,
  ): Promise<{ status: number; text: string; setCookie: string[] }> {
    const lib = this.url.protocol === 'https:' ? https : http;
    const headers: http.OutgoingHttpHeaders = {
      'Content-Type': 'text/xml; charset=utf-8',
      SOAPAction: `"urn:vim25/${this.apiVersion}"`,
      'Content-Length': Buffer.byteLength(body),
    };
    if (this.cookie) headers.Cookie = this.cookie;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const req = lib.request(this.url, { method: 'POST', headers, agent: this.agent, signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString('utf8'),
            setCookie: res.headers['set-cookie'] ?? [],
          }),
        );
        res.on('error', (err) => reject(signal?.aborted ? signal.reason : err));
      });
      req.setTimeout(this.timeoutMs, () =>
        req.destroy(new VimTransportError(`no answer from ${this.url.host} within ${this.timeoutMs} ms`)),
      );
      req.on('error', (err) => {
        if (signal?.aborted) {
          reject(signal.reason);
          return;
        }
        if (err instanceof VimTransportError || err instanceof TlsTrustError) {
          reject(err);
          return;
        }
        const code = errnoOf(err) ?? '';
        if (untrustedCertificateCodes.has(code)) {
          // Reached, but its certificate is not one the system trusts (a vCenter's own self-signed
          // one, most often): say how to pin it.
          void presentedThumbprint(this.url).then((thumbprint) =>
            reject(
              new VimTransportError(
                // Node's reason alone: Node 24 appends a hint about its own flags (--use-system-ca).
                `${this.url.host} presents a certificate this system does not trust (${err.message.replace(/;.*$/s, '')})` +
                  (thumbprint
                    ? `; its SHA-256 thumbprint is ${colonHex(thumbprint)}. Check it with the vCenter's administrator, then pass --thumbprint ${colonHex(thumbprint)}`
                    : '; pass its SHA-256 thumbprint with --thumbprint') +
                  ' (or --insecure, in a lab only).',
                { cause: err },
              ),
            ),
          );
          return;
        }
        if (code === 'EPROTO' && /wrong version number|packet length too long/i.test(err.message)) {
          reject(
            new VimTransportError(
              `${this.url.host} does not answer TLS on this port: if it serves plain HTTP, give an http:// URL; otherwise check the port.`,
              { cause: err },
            ),
          );
          return;
        }
        reject(new VimTransportError(`cannot reach ${this.url.host}: ${err.message}`, { cause: err }));
      });
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

function faultFrom(method: string, fault: XmlNode): VimFaultError {
  const detail = fault.child('detail')?.children[0];
  // The detail element carries the fault type as xsi:type; some servers only name the element
  // `<TypeFault>`.
  const faultType =
    detail?.type?.ns === NS.xsd ? detail.name : (detail?.type?.local ?? detail?.name.replace(/Fault$/, ''));
  return new VimFaultError(method, faultType ?? 'SoapFault', fault.str('faultstring') ?? '', detail);
}
