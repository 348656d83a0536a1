import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { Transform, type TransformCallback } from 'node:stream';

export class NfcTransferError extends Error {
  readonly code = 'NFC_TRANSFER';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NfcTransferError';
  }
}

export interface NfcGetOptions {
  readonly url: URL;
  readonly agent: http.Agent;
  /** The vim25 session cookie: NFC on vCenter authorizes by session or by the lease ticket in the URL. */
  readonly cookie?: string;
  readonly signal?: AbortSignal;
  /** First byte to read (HTTP Range), to resume a download; default 0. */
  readonly offset?: number;
}

/** Opens a device URL for reading; resolves with the response once the status is checked. */
export function nfcGet(options: NfcGetOptions): Promise<{ body: IncomingMessage; length?: number }> {
  const lib = options.url.protocol === 'https:' ? https : http;
  const headers: http.OutgoingHttpHeaders = {};
  if (options.cookie) headers.Cookie = options.cookie;
  if (options.offset) headers.Range = `bytes=${options.offset}-`;
  return new Promise((resolve, reject) => {
    const req = lib.get(options.url, { agent: options.agent, headers, signal: options.signal }, (res) => {
      const ok = options.offset ? res.statusCode === 206 : res.statusCode === 200;
      if (!ok) {
        res.resume();
        reject(
          new NfcTransferError(
            `GET ${options.url.pathname} answered HTTP ${res.statusCode}; the lease may have expired or been aborted.`,
          ),
        );
        return;
      }
      const length = res.headers['content-length'];
      resolve({ body: res, ...(length === undefined ? {} : { length: Number(length) }) });
    });
    req.on('error', (err) =>
      reject(new NfcTransferError(`GET ${options.url.href} failed: ${err.message}`, { cause: err })),
    );
  });
}

/**
 * Fails the stream if it ends with fewer (or more) bytes than announced: a download cut short
 * must never be taken for a complete disk.
 */
export class LengthCheck extends Transform {
  private seen = 0;

  constructor(
    private readonly expected: number | undefined,
    private readonly what: string,
  ) {
    super({ highWaterMark: 1 << 20 });
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (this.expected !== undefined && this.seen !== this.expected) {
      done(new NfcTransferError(`${this.what} ended after ${this.seen} of ${this.expected} bytes`));
      return;
    }
    done();
  }
}

export interface NfcPutOptions {
  readonly url: URL;
  readonly agent: http.Agent;
  readonly cookie?: string;
  readonly signal?: AbortSignal;
  readonly body: Readable;
  readonly size: number;
  /** Disks go as a streamOptimized VMDK stream (POST), other files as PUT, as vCenter expects. */
  readonly disk: boolean;
}

/** Uploads one file to an import lease's device URL; resolves when the server accepted all of it. */
export function nfcPut(options: NfcPutOptions): Promise<void> {
  const lib = options.url.protocol === 'https:' ? https : http;
  const headers: http.OutgoingHttpHeaders = {
    'Content-Length': options.size,
    'Content-Type': options.disk ? 'application/x-vnd.vmware-streamVmdk' : 'application/octet-stream',
    Overwrite: 't',
  };
  if (options.cookie) headers.Cookie = options.cookie;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      options.url,
      { method: options.disk ? 'POST' : 'PUT', agent: options.agent, headers, signal: options.signal },
      (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300) resolve();
          else
            reject(new NfcTransferError(`upload to ${options.url.pathname} answered HTTP ${res.statusCode}`));
        });
      },
    );
    req.on('error', (err) =>
      reject(new NfcTransferError(`upload to ${options.url.href} failed: ${err.message}`, { cause: err })),
    );
    options.body.on('error', (err) => req.destroy(err));
    options.body.pipe(req);
  });
}
