// A deliberately tiny vim25 SOAP client for testing the vSphere peer on the wire: it posts
// envelope strings written by hand and pulls values out of responses with regular expressions.
// It is not the project's client and must not grow into one; the point is that these tests
// see exactly the bytes a real client would send and receive.

import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';

export interface HttpOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** SHA-256 fingerprint (colon hex, as Node prints it) the server certificate must have. */
  pinSha256?: string;
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * Sends one request with node:http(s) and resolves with the whole response. With https the
 * self-signed certificate is accepted only when pinSha256 matches it (or when no pin is given).
 */
export function httpRequestStream(url: string, opts: HttpOptions = {}): Promise<http.IncomingMessage> {
  const u = new URL(url);
  const isTls = u.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const req = (isTls ? https : http).request(
      u,
      {
        method: opts.method ?? 'GET',
        headers: opts.headers,
        ...(isTls ? { rejectUnauthorized: false, agent: false } : { agent: false }),
      },
      resolve,
    );
    req.on('error', reject);
    if (isTls && opts.pinSha256) {
      const pin = opts.pinSha256;
      req.on('socket', (socket) => {
        socket.on('secureConnect', () => {
          const seen = (socket as TLSSocket).getPeerCertificate().fingerprint256;
          if (seen !== pin)
            req.destroy(new Error(`certificate fingerprint ${seen} is not the pinned ${pin}`));
        });
      });
    }
    req.end(opts.body);
  });
}

export async function httpRequest(url: string, opts: HttpOptions = {}): Promise<HttpResult> {
  const res = await httpRequestStream(url, opts);
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) };
}

// ---- XML by regular expression -------------------------------------------------------------

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

export function decodeXml(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|lt|gt|amp|quot|apos);/g, (_, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(Number.parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(Number.parseInt(e.slice(1), 10));
    return ENTITIES[e] ?? '';
  });
}

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** The whole elements (tag included) with this local name, whatever their prefix; not nested. */
export function elements(xml: string, name: string): string[] {
  const re = new RegExp(`<(?:[\\w.-]+:)?${name}(?:\\s[^>]*)?(?:/>|>[\\s\\S]*?</(?:[\\w.-]+:)?${name}>)`, 'g');
  return xml.match(re) ?? [];
}

/** The inner XML of each element with this local name. */
export function inners(xml: string, name: string): string[] {
  return elements(xml, name).map((e) => {
    if (e.endsWith('/>') && !e.includes('></')) return '';
    return e.slice(e.indexOf('>') + 1, e.lastIndexOf('</'));
  });
}

/** The decoded text of the first element with this local name, or undefined. */
export function text(xml: string, name: string): string | undefined {
  const inner = inners(xml, name)[0];
  return inner === undefined ? undefined : decodeXml(inner);
}

export function texts(xml: string, name: string): string[] {
  return inners(xml, name).map(decodeXml);
}

/** An attribute of the first element with this local name (attribute prefix ignored). */
export function attr(xml: string, element: string, name: string): string | undefined {
  const el = elements(xml, element)[0];
  if (!el) return undefined;
  const start = el.slice(0, el.indexOf('>') + 1);
  const m = new RegExp(`\\s(?:[\\w.-]+:)?${name}="([^"]*)"`).exec(start);
  return m?.[1] === undefined ? undefined : decodeXml(m[1]);
}

// ---- SOAP ----------------------------------------------------------------------------------

const XSI = 'http://www.w3.org/2001/XMLSchema-instance';

/**
 * Wraps a body in an envelope. The simulator writes xsi:type under the prefix
 * "XMLSchema-instance"; declaring it here too lets a test paste response fragments verbatim.
 */
export function envelope(body: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"' +
    ` xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="${XSI}" xmlns:XMLSchema-instance="${XSI}">` +
    `<soapenv:Body>${body}</soapenv:Body></soapenv:Envelope>`
  );
}

export function moRef(tag: string, type: string, value: string): string {
  return `<${tag} type="${escapeXml(type)}">${escapeXml(value)}</${tag}>`;
}

export class SoapFault extends Error {
  constructor(
    /** The fault type from the detail, e.g. "InvalidLogin", "InvalidPowerState". */
    readonly faultType: string,
    readonly faultString: string,
    readonly detail: string,
  ) {
    super(`${faultType}: ${faultString}`);
    this.name = 'SoapFault';
  }
}

export function parseFault(xml: string): SoapFault | undefined {
  if (!/<(?:\w+:)?Fault[\s>]/.test(xml)) return undefined;
  const detail = inners(xml, 'detail')[0] ?? '';
  const first = /<(?:[\w.-]+:)?(\w+?)(?:Fault)?(?:\s([^>]*))?>/.exec(detail);
  const typeAttr = first?.[2] ? /(?:^|\s)(?:[\w.-]+:)?type="([^"]+)"/.exec(first[2])?.[1] : undefined;
  return new SoapFault(typeAttr ?? first?.[1] ?? 'unknown', text(xml, 'faultstring') ?? '', detail);
}

export interface SoapClientOptions {
  pinSha256?: string;
  apiVersion?: string;
}

/** One vim25 session: a cookie jar of one cookie. */
export class RawSoapClient {
  private cookie: string | undefined;

  constructor(
    readonly sdkUrl: string,
    private readonly opts: SoapClientOptions = {},
  ) {}

  /** Posts a body and returns the response envelope; a SOAP fault is thrown as SoapFault. */
  async call(body: string): Promise<string> {
    const headers: Record<string, string> = {
      'Content-Type': 'text/xml; charset=utf-8',
      SOAPAction: `"urn:vim25/${this.opts.apiVersion ?? '7.0'}"`,
    };
    if (this.cookie) headers.Cookie = this.cookie;
    const res = await httpRequest(this.sdkUrl, {
      method: 'POST',
      headers,
      body: envelope(body),
      pinSha256: this.opts.pinSha256,
    });
    const setCookie = res.headers['set-cookie']?.[0];
    if (setCookie) this.cookie = setCookie.split(';')[0];
    const xml = res.body.toString('utf8');
    const fault = parseFault(xml);
    if (fault) throw fault;
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${xml.slice(0, 200)}`);
    return xml;
  }

  async login(userName: string, password: string): Promise<string> {
    return this.call(
      `<Login xmlns="urn:vim25">${moRef('_this', 'SessionManager', 'SessionManager')}` +
        `<userName>${escapeXml(userName)}</userName><password>${escapeXml(password)}</password></Login>`,
    );
  }

  /** RetrievePropertiesEx of some properties of one object; returns name → raw <val> element. */
  async properties(type: string, value: string, paths: string[]): Promise<Map<string, string>> {
    const xml = await this.call(
      `<RetrievePropertiesEx xmlns="urn:vim25">${moRef('_this', 'PropertyCollector', 'propertyCollector')}` +
        `<specSet><propSet><type>${type}</type>${paths.map((p) => `<pathSet>${p}</pathSet>`).join('')}</propSet>` +
        `<objectSet>${moRef('obj', type, value)}</objectSet></specSet><options/></RetrievePropertiesEx>`,
    );
    const out = new Map<string, string>();
    for (const prop of inners(xml, 'propSet')) {
      const name = text(prop, 'name');
      const val = elements(prop, 'val')[0];
      if (name !== undefined && val !== undefined) out.set(name, val);
    }
    return out;
  }
}

// ---- NFC leases ----------------------------------------------------------------------------

export interface DeviceUrl {
  key: string;
  importKey: string;
  url: string;
  sslThumbprint: string;
  disk: boolean;
  targetId: string | undefined;
}

export interface LeaseSnapshot {
  state: string | undefined;
  /** Fault type of the lease's error, e.g. "Timedout". */
  errorType: string | undefined;
  errorMessage: string | undefined;
  entity: string | undefined;
  leaseTimeout: number | undefined;
  totalDiskCapacityInKB: number | undefined;
  deviceUrls: DeviceUrl[];
}

export async function leaseSnapshot(client: RawSoapClient, lease: string): Promise<LeaseSnapshot> {
  const props = await client.properties('HttpNfcLease', lease, ['state', 'error', 'info']);
  const info = props.get('info') ?? '';
  const error = props.get('error');
  const timeout = text(info, 'leaseTimeout');
  const capacity = text(info, 'totalDiskCapacityInKB');
  return {
    state: props.get('state') === undefined ? undefined : text(props.get('state') ?? '', 'val'),
    errorType: error ? attr(error, 'fault', 'type') : undefined,
    errorMessage: error ? text(error, 'localizedMessage') : undefined,
    entity: info ? text(info, 'entity') : undefined,
    leaseTimeout: timeout === undefined ? undefined : Number(timeout),
    totalDiskCapacityInKB: capacity === undefined ? undefined : Number(capacity),
    deviceUrls: inners(info, 'deviceUrl').map((d) => ({
      key: text(d, 'key') ?? '',
      importKey: text(d, 'importKey') ?? '',
      url: text(d, 'url') ?? '',
      sslThumbprint: text(d, 'sslThumbprint') ?? '',
      disk: text(d, 'disk') === 'true',
      targetId: text(d, 'targetId'),
    })),
  };
}

/** Polls RetrievePropertiesEx until the lease leaves `initializing` (or the time is up). */
export async function waitLease(
  client: RawSoapClient,
  lease: string,
  timeoutMs = 10_000,
): Promise<LeaseSnapshot> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const snap = await leaseSnapshot(client, lease);
    if (snap.state !== 'initializing' || Date.now() > end) return snap;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A device URL with the `*` host replaced by the host the SDK was reached at (and the scheme
 * by the SDK's); a URL that names a host (a separate NFC listener) is used as it is.
 */
export function deviceHref(sdkUrl: string, deviceUrl: string): string {
  if (!/^[a-z]+:\/\/\*[:/]/i.test(deviceUrl)) return deviceUrl;
  const sdk = new URL(sdkUrl);
  const u = new URL(deviceUrl.replace('://*/', '://placeholder/'));
  u.protocol = sdk.protocol;
  u.host = sdk.host;
  return u.toString();
}

export function leaseCall(method: string, lease: string, extra = ''): string {
  return `<${method} xmlns="urn:vim25">${moRef('_this', 'HttpNfcLease', lease)}${extra}</${method}>`;
}
