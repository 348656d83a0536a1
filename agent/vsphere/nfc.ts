import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';

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

/** Bytes the response body buffers before the socket is paused: a few 64 KiB socket reads. */
const bodyHighWaterMark = 1 << 20;

/**
 * Opens a device URL for reading; resolves with the response once the status is checked. A
 * connection the server drops mid-body fails the body with an error (a pipeline stops at once).
 */
export function nfcGet(options: NfcGetOptions): Promise<{ body: IncomingMessage; length?: number }> {
  const lib = options.url.protocol === 'https:' ? https : http;
  const headers: http.OutgoingHttpHeaders = {};
  if (options.cookie) headers.Cookie = options.cookie;
  if (options.offset) headers.Range = `bytes=${options.offset}-`;
  return new Promise((resolve, reject) => {
    const get = { agent: options.agent, headers, signal: options.signal, highWaterMark: bodyHighWaterMark };
    const req = lib.get(options.url, get, (res) => {
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
      res.on('aborted', () => {
        if (!res.destroyed) {
          res.destroy(
            new NfcTransferError(`${options.url.pathname}: the server closed the connection mid-body`),
          );
        }
      });
      const length = res.headers['content-length'];
      resolve({ body: res, ...(length === undefined ? {} : { length: Number(length) }) });
    });
    req.on('error', (err) =>
      reject(new NfcTransferError(`GET ${options.url.href} failed: ${err.message}`, { cause: err })),
    );
  });
}

/**
 * A check for the end of a download (`writeEncryptedFile`'s `checkSize`): an error if it ended with
 * fewer (or more) bytes than announced, as a download cut short must never be taken for a complete
 * disk.
 */
export function lengthCheck(expected: number | undefined, what: string): (seen: number) => Error | undefined {
  return (seen) =>
    expected === undefined || seen === expected
      ? undefined
      : new NfcTransferError(`${what} ended after ${seen} of ${expected} bytes`);
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
