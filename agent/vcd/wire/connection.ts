import http from 'node:http';
import https from 'node:https';
import { AgentError, type VcdErrorCode } from '../../errors.ts';
import { createHttpAgent, type TlsTrust, TlsTrustError } from '../../vsphere/wire/tls.ts';
import { parseVcdXml, type VcdNode } from './xml.ts';

export type { VcdErrorCode } from '../../errors.ts';

/** Any failure of a vCloud Director call; `minorErrorCode` and `vcdMessage` come from the server's Error element. */
export class VcdError extends AgentError<VcdErrorCode> {
  readonly status: number | undefined;
  readonly minorErrorCode: string | undefined;
  readonly vcdMessage: string | undefined;

  constructor(
    code: VcdErrorCode,
    message: string,
    details: { status?: number; minorErrorCode?: string; vcdMessage?: string; cause?: unknown } = {},
  ) {
    super(code, message, { cause: details.cause });
    this.name = 'VcdError';
    this.status = details.status;
    this.minorErrorCode = details.minorErrorCode;
    this.vcdMessage = details.vcdMessage;
  }
}

export interface VcdResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
}

export interface RequestOptions {
  readonly body?: string;
  readonly contentType?: string;
  /** Default `application/*+xml;version=<negotiated>`. */
  readonly accept?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Statuses that are returned instead of thrown (default: 2xx only). */
  readonly okStatuses?: readonly number[];
  /** Cuts the request; it then rejects with the signal's reason. */
  readonly signal?: AbortSignal | undefined;
}

/**
 * The wire layer: base URL, TLS trust, the negotiated API version in every Accept header, the
 * bearer token, and Error documents turned into VcdError. Knows nothing of vApps or tasks.
 */
export class VcdConnection {
  readonly baseUrl: URL;
  readonly agent: http.Agent;
  apiVersion: string | undefined;
  token: string | undefined;
  private readonly timeoutMs: number;

  constructor(options: { url: string | URL; trust: TlsTrust; timeoutMs?: number }) {
    this.baseUrl = vcdBaseUrl(String(options.url));
    this.agent = createHttpAgent(this.baseUrl, options.trust);
    this.timeoutMs = options.timeoutMs ?? 120_000;
  }

  /** Resolves `/api/...` against the server, or checks that an absolute href points at it. */
  resolve(pathOrHref: string): URL {
    const url = new URL(pathOrHref, this.baseUrl);
    // hrefs in documents name the server's public address; requests stay on the one we trust.
    url.protocol = this.baseUrl.protocol;
    url.host = this.baseUrl.host;
    return url;
  }

  get xmlAccept(): string {
    return `application/*+xml;version=${this.apiVersion ?? '1.5'}`;
  }

  async request(method: string, pathOrHref: string, options: RequestOptions = {}): Promise<VcdResponse> {
    const url = this.resolve(pathOrHref);
    const headers: http.OutgoingHttpHeaders = {
      Accept: options.accept ?? this.xmlAccept,
      ...options.headers,
    };
    if (this.token && !('Authorization' in headers)) headers.Authorization = `Bearer ${this.token}`;
    if (options.body !== undefined) {
      headers['Content-Type'] = options.contentType ?? 'application/xml';
      headers['Content-Length'] = Buffer.byteLength(options.body);
    }
    const res = await this.send(method, url, headers, options.body, options.signal);
    const ok = (res.status >= 200 && res.status < 300) || options.okStatuses?.includes(res.status);
    if (!ok) throw errorFrom(method, url, res);
    return res;
  }

  /** GET/POST/PUT returning the parsed document. */
  async xml(method: string, pathOrHref: string, options: RequestOptions = {}): Promise<VcdNode> {
    const res = await this.request(method, pathOrHref, options);
    try {
      return parseVcdXml(res.text);
    } catch (error) {
      throw new VcdError(
        'VCD_TRANSPORT',
        `${method} ${this.resolve(pathOrHref).pathname}: the answer is not a vCloud API document (${(error as Error).message})`,
        { status: res.status, cause: error },
      );
    }
  }

  private send(
    method: string,
    url: URL,
    headers: http.OutgoingHttpHeaders,
    body: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<VcdResponse> {
    const lib = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const req = lib.request(url, { method, headers, agent: this.agent, signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', (err) => reject(signal?.aborted ? signal.reason : err));
      });
      req.setTimeout(this.timeoutMs, () =>
        req.destroy(new VcdError('VCD_TRANSPORT', `no answer from ${url.host} within ${this.timeoutMs} ms`)),
      );
      req.on('error', (err) => {
        if (signal?.aborted) {
          reject(signal.reason);
          return;
        }
        if (err instanceof VcdError || err instanceof TlsTrustError) {
          reject(err);
          return;
        }
        reject(
          new VcdError('VCD_TRANSPORT', `cannot reach vCloud Director at ${url.host}: ${err.message}`, {
            cause: err,
          }),
        );
      });
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** What people type for vCloud Director (`vcd.example.com`, `https://vcd/`, `https://vcd/api`) → its root URL. */
export function vcdBaseUrl(input: string): URL {
  const withScheme = /^[a-z]+:\/\//i.test(input) ? input : `https://${input}`;
  const url = new URL(withScheme);
  url.pathname = '/';
  url.search = '';
  url.hash = '';
  url.username = '';
  url.password = '';
  return url;
}

/** An Error document (or JSON error of /cloudapi) → VcdError. */
export function errorFrom(method: string, url: URL, res: VcdResponse): VcdError {
  let minor: string | undefined;
  let message: string | undefined;
  if (res.text.trimStart().startsWith('<')) {
    try {
      const doc = parseVcdXml(res.text);
      const err = doc.name === 'Error' ? doc : doc.find('Error')[0];
      minor = err?.attr('minorErrorCode');
      message = err?.attr('message');
    } catch {
      // not XML after all; fall through to the status line
    }
  } else if (res.text.trimStart().startsWith('{')) {
    try {
      const j = JSON.parse(res.text) as { minorErrorCode?: string; message?: string };
      minor = j.minorErrorCode;
      message = j.message;
    } catch {
      // ignore
    }
  }
  const what = `${method} ${url.pathname}`;
  const detail = message ? `: ${message}` : '';
  return new VcdError(
    'VCD_ERROR',
    `${what} failed with HTTP ${res.status}${minor ? ` ${minor}` : ''}${detail}`,
    {
      status: res.status,
      ...(minor === undefined ? {} : { minorErrorCode: minor }),
      ...(message === undefined ? {} : { vcdMessage: message }),
    },
  );
}
