import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { type Duplex, Readable } from 'node:stream';
import type tls from 'node:tls';
import { AgentError } from '../errors.ts';
import { batchBuffer, encryptRunBytes } from '../package/age/encrypt.ts';

export class NfcTransferError extends AgentError<'NFC_TRANSFER'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NFC_TRANSFER', message, options);
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

/**
 * Opens a device URL for reading; resolves with the response body once the status is checked.
 * A connection the server drops mid-body fails the body with an error (a pipeline stops at once).
 *
 * The hot path of an export, so it is not node:http: the socket reads straight into 1 MiB buffers
 * (`onread`), which the body hands on whole (for the age encryptor, `batchBuffer()`: no copy
 * on this thread, no 64 KiB buffer per read for the GC). HTTP/1.1 as RFC 9112 frames a response
 * body: Content-Length, chunked, or until the server closes. Connections and TLS come from the
 * same agent as the vim25 calls (`agent.options`, and its `createConnection`, which is where a
 * pinned thumbprint is checked).
 */
export function nfcGet(options: NfcGetOptions): Promise<{ body: Readable; length?: number }> {
  return new Promise((resolve, reject) => {
    const download = new Download(options, resolve, reject);
    download.start();
  });
}

/** One body buffer: the encryptor's run size, so a full one is handed on as is. */
const bufferBytes = encryptRunBytes;
/** Largest response head accepted (status line and headers). */
const maxHead = 64 * 1024;

type Framing =
  | { readonly kind: 'length'; left: number }
  | { readonly kind: 'close' }
  | { readonly kind: 'chunked'; state: 'size' | 'data' | 'data-end' | 'trailer'; line: string; left: number };

class Download {
  readonly #options: NfcGetOptions;
  readonly #resolve: (r: { body: Readable; length?: number }) => void;
  readonly #reject: (e: Error) => void;
  #socket: Duplex | undefined;
  #settled = false;
  /** The response head, until it is complete. */
  #head: Buffer[] = [];
  #framing: Framing | undefined;
  /** The buffer the socket reads into, and how much of it holds body bytes. */
  #buffer = batchBuffer();
  #filled = 0;
  #ended = false;
  #unlisten: (() => void) | undefined;
  readonly body: Readable;

  constructor(
    options: NfcGetOptions,
    resolve: (r: { body: Readable; length?: number }) => void,
    reject: (e: Error) => void,
  ) {
    this.#options = options;
    this.#resolve = resolve;
    this.#reject = reject;
    this.body = new Readable({
      highWaterMark: 2 * bufferBytes,
      read: () => this.#socket?.resume(),
      // Torn down by its consumer (a failed pipeline, a full disk): the download ends here too, and
      // stops listening to the signal, which outlives it.
      destroy: (error, callback) => {
        this.#ended = true;
        this.#unlisten?.();
        this.#socket?.destroy();
        callback(error);
      },
    });
  }

  start(): void {
    const { url, signal } = this.#options;
    if (signal?.aborted) {
      this.#fail(signal.reason as Error);
      return;
    }
    if (signal) {
      const onAbort = () => this.#fail(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
      this.#unlisten = () => signal.removeEventListener('abort', onAbort);
    }
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    const onread = {
      buffer: () => this.#buffer.subarray(this.#filled),
      callback: (n: number) => this.#onRead(n),
    };
    const connected = (socket: Duplex) => {
      // Aborted or torn down while a pinned TLS handshake was still going on: nothing to send.
      if (this.#ended) {
        socket.destroy();
        return;
      }
      this.#socket = socket;
      socket.on('error', (err) =>
        this.#fail(new NfcTransferError(`GET ${url.href} failed: ${err.message}`, { cause: err })),
      );
      socket.on('end', () => this.#onEnd());
      socket.on('close', () => this.#onEnd());
      socket.write(this.#request());
    };
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (url.protocol === 'http:') {
      connected(net.connect({ host, port, onread } as net.NetConnectOpts));
      return;
    }
    const agent = this.#options.agent as https.Agent & {
      options: tls.ConnectionOptions;
      createConnection(
        o: tls.ConnectionOptions,
        cb: (e: Error | null, s?: Duplex) => void,
      ): Duplex | undefined;
    };
    const tlsOptions = {
      ...agent.options,
      host,
      port,
      ...(net.isIP(host) ? {} : { servername: host }),
      onread,
    } as tls.ConnectionOptions;
    // The thumbprint-pinning agent answers through the callback once the certificate matched; a
    // plain https.Agent returns the socket.
    const direct = agent.createConnection(tlsOptions, (err, socket) => {
      if (err) this.#fail(new NfcTransferError(`GET ${url.href} failed: ${err.message}`, { cause: err }));
      else if (socket) connected(socket);
    });
    if (direct) connected(direct);
  }

  #request(): string {
    const { url, cookie, offset } = this.#options;
    const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`, 'Connection: close'];
    if (cookie) lines.push(`Cookie: ${cookie}`);
    if (offset) lines.push(`Range: bytes=${offset}-`);
    return `${lines.join('\r\n')}\r\n\r\n`;
  }

  /** `n` bytes arrived at `#filled` in `#buffer`. Returns false to pause the socket. */
  #onRead(n: number): boolean {
    if (this.#ended) return false;
    const at = this.#filled;
    if (this.#framing === undefined) return this.#onHead(at, n);
    return this.#onBody(at, n);
  }

  #onHead(at: number, n: number): boolean {
    const bytes = Buffer.from(this.#buffer.subarray(at, at + n));
    this.#head.push(bytes);
    const all = Buffer.concat(this.#head);
    const end = all.indexOf('\r\n\r\n');
    if (end < 0) {
      if (all.length > maxHead) this.#fail(new NfcTransferError(`${this.#what()}: no HTTP response head`));
      return true;
    }
    this.#head = [];
    const lines = all.subarray(0, end).toString('latin1').split('\r\n');
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const code = status ? Number(status[1]) : 0;
    const ok = this.#options.offset ? code === 206 : code === 200;
    if (!ok) {
      this.#fail(
        new NfcTransferError(
          status
            ? `GET ${this.#options.url.pathname} answered HTTP ${code}; the lease may have expired or been aborted.`
            : `GET ${this.#options.url.pathname}: the answer is not HTTP/1.1`,
        ),
      );
      return false;
    }
    const te = headers.get('transfer-encoding')?.toLowerCase();
    const cl = headers.get('content-length');
    let length: number | undefined;
    if (te !== undefined && te !== 'identity') {
      if (te !== 'chunked') {
        this.#fail(new NfcTransferError(`${this.#what()}: unsupported Transfer-Encoding '${te}'`));
        return false;
      }
      this.#framing = { kind: 'chunked', state: 'size', line: '', left: 0 };
    } else if (cl !== undefined) {
      length = Number(cl);
      if (!/^\d+$/.test(cl) || !Number.isSafeInteger(length)) {
        this.#fail(new NfcTransferError(`${this.#what()}: bad Content-Length '${cl}'`));
        return false;
      }
      this.#framing = { kind: 'length', left: length };
    } else {
      this.#framing = { kind: 'close' };
    }
    this.#settled = true;
    this.#resolve({ body: this.body, ...(length === undefined ? {} : { length }) });
    // The body bytes that came with the head go to the start of the buffer.
    const rest = all.subarray(end + 4);
    this.#filled = 0;
    rest.copy(this.#buffer, 0);
    return this.#onBody(0, rest.length);
  }

  /** Body bytes at [at, at + n) of the buffer: frames them, hands on full buffers. */
  #onBody(at: number, n: number): boolean {
    const f = this.#framing!;
    let end = at + n;
    if (f.kind === 'length') {
      if (n > f.left) end = at + f.left;
      f.left -= end - at;
      this.#filled = end;
      if (f.left === 0) {
        this.#finish();
        return false;
      }
    } else if (f.kind === 'close') {
      this.#filled = end;
    } else {
      const r = this.#dechunk(f, at, end);
      if (r === undefined) return false;
      this.#filled = r.filled;
      if (r.done) {
        this.#finish();
        return false;
      }
    }
    return this.#handOn();
  }

  /**
   * Removes chunked framing from [at, end) in place: data bytes are moved down to follow the body
   * bytes before them. Returns where the body bytes end, and whether the last chunk was read.
   */
  #dechunk(
    f: Extract<Framing, { kind: 'chunked' }>,
    at: number,
    end: number,
  ): { filled: number; done: boolean } | undefined {
    const b = this.#buffer;
    let r = at;
    let w = at;
    while (r < end) {
      if (f.state === 'data') {
        const k = Math.min(f.left, end - r);
        if (w !== r) b.copyWithin(w, r, r + k);
        w += k;
        r += k;
        f.left -= k;
        if (f.left === 0) f.state = 'data-end';
        continue;
      }
      // A line: a chunk size, the CRLF after a chunk's data, or a trailer field.
      const nl = b.subarray(r, end).indexOf(10);
      const stop = nl < 0 ? end : r + nl;
      f.line += b.toString('latin1', r, stop);
      r = stop;
      if (f.line.length > 1024) {
        this.#fail(new NfcTransferError(`${this.#what()}: malformed chunked encoding`));
        return undefined;
      }
      if (stop === end) break;
      r += 1;
      const line = f.line.replace(/\r$/, '');
      f.line = '';
      if (f.state === 'data-end') {
        if (line !== '') {
          this.#fail(new NfcTransferError(`${this.#what()}: malformed chunked encoding`));
          return undefined;
        }
        f.state = 'size';
      } else if (f.state === 'size') {
        const size = /^([0-9a-fA-F]+)(;.*)?$/.exec(line);
        if (!size) {
          this.#fail(new NfcTransferError(`${this.#what()}: malformed chunk size '${line.slice(0, 20)}'`));
          return undefined;
        }
        f.left = Number.parseInt(size[1]!, 16);
        f.state = f.left === 0 ? 'trailer' : 'data';
      } else if (line === '') {
        return { filled: w, done: true };
      }
    }
    return { filled: w, done: false };
  }

  /** Pushes the buffer once full; false when the body wants no more for now. */
  #handOn(): boolean {
    if (this.#filled < this.#buffer.length) return true;
    const full = this.#buffer;
    this.#buffer = batchBuffer();
    this.#filled = 0;
    return this.body.push(full);
  }

  #finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#unlisten?.();
    if (this.#filled > 0) this.body.push(this.#buffer.subarray(0, this.#filled));
    this.#filled = 0;
    this.body.push(null);
    this.#socket?.destroy();
  }

  #onEnd(): void {
    if (this.#ended || this.body.destroyed) return;
    if (!this.#settled) {
      this.#fail(new NfcTransferError(`${this.#what()}: the server closed the connection before answering`));
      return;
    }
    if (this.#framing?.kind === 'close') {
      this.#finish();
      return;
    }
    this.#fail(
      new NfcTransferError(`${this.#options.url.pathname}: the server closed the connection mid-body`),
    );
  }

  #fail(error: Error): void {
    this.#ended = true;
    this.#unlisten?.();
    this.#socket?.destroy();
    if (!this.#settled) {
      this.#settled = true;
      this.#reject(error);
    } else {
      // Maybe in the same tick that handed the body out: its consumer attaches after this.
      setImmediate(() => {
        if (!this.body.destroyed) this.body.destroy(error);
      });
    }
  }

  #what(): string {
    return `GET ${this.#options.url.pathname}`;
  }
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

/**
 * A body the upload pulls chunk by chunk (AgeFileReader): each chunk is handed back with
 * `release` once the socket is done with it, or once it is not going to be sent (the upload
 * failed or was answered first), so its buffer can take another read. A chunk whose write failed
 * is not handed back: it is left to the garbage collector.
 */
export interface PulledBody {
  next(): Promise<Buffer | undefined>;
  release(chunk: Buffer): void;
}

export interface NfcPutOptions {
  readonly url: URL;
  readonly agent: http.Agent;
  readonly cookie?: string;
  readonly signal?: AbortSignal;
  readonly body: PulledBody;
  readonly size: number;
  /** Disks go as a streamOptimized VMDK stream (POST), other files as PUT, as vCenter expects. */
  readonly disk: boolean;
}

/**
 * Uploads one file to an import lease's device URL; resolves when the server accepted all of it.
 * A body that fails fails the upload with its own error (the request is cut, so the server never
 * sees a whole file); a pulled body must give exactly `size` bytes.
 */
export function nfcPut(options: NfcPutOptions): Promise<void> {
  const lib = options.url.protocol === 'https:' ? https : http;
  const where = options.url.pathname;
  const headers: http.OutgoingHttpHeaders = {
    'Content-Length': options.size,
    'Content-Type': options.disk ? 'application/x-vnd.vmware-streamVmdk' : 'application/octet-stream',
    Overwrite: 't',
  };
  if (options.cookie) headers.Cookie = options.cookie;
  return new Promise((resolve, reject) => {
    /** The body's own failure: the upload fails with it, not with the cut request it caused. */
    let bodyError: Error | undefined;
    let settled = false;
    const settle = (error?: Error) => {
      if (settled) return;
      settled = true;
      // Answered or failed with the body not all sent: stop sending (the pump sees it destroyed).
      if (!req.writableFinished) req.destroy();
      if (error) reject(bodyError ?? error);
      else resolve();
    };
    const req = lib.request(
      options.url,
      { method: options.disk ? 'POST' : 'PUT', agent: options.agent, headers, signal: options.signal },
      (res) => {
        res.resume();
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300)
            settle(new NfcTransferError(`upload to ${where} answered HTTP ${status}`));
          else if (!req.writableEnded)
            settle(
              new NfcTransferError(
                `upload to ${where} answered HTTP ${status} before the whole file was sent`,
              ),
            );
          else settle();
        });
        // Cut off mid-answer: no 'end', and no 'error' on the request either.
        res.on('close', () => {
          if (!res.complete)
            settle(
              new NfcTransferError(`upload to ${where}: its answer (HTTP ${res.statusCode}) was cut off`),
            );
        });
      },
    );
    req.on('error', (err) =>
      settle(new NfcTransferError(`upload to ${options.url.href} failed: ${err.message}`, { cause: err })),
    );
    pump(options.body, req, options.size, where).catch((err: Error) => {
      bodyError = err;
      req.destroy(err);
    });
  });
}

/**
 * Writes `body` into `req` as the socket takes it, then ends the request: exactly `size` bytes.
 * Stops, handing back what it pulled and did not write, once the request is destroyed (answered
 * early, aborted, failed).
 */
async function pump(body: PulledBody, req: http.ClientRequest, size: number, where: string): Promise<void> {
  const longer = () =>
    new NfcTransferError(`upload to ${where}: the file is longer than the ${size} bytes announced`);
  let sent = 0;
  let chunk = await body.next();
  while (chunk !== undefined) {
    const pulled = chunk;
    if (req.destroyed) return body.release(pulled);
    sent += pulled.length;
    if (sent > size) {
      body.release(pulled);
      throw longer();
    }
    // The last bytes go only once the body is known to end with them: the server takes a
    // request whole at its Content-Length, so a longer body must fail before that.
    if (sent === size) {
      const extra = await body.next();
      if (extra !== undefined) {
        body.release(extra);
        body.release(pulled);
        throw longer();
      }
      // Answered or aborted while it looked ahead.
      if (req.destroyed) return body.release(pulled);
    }
    // Handed back only once written: until then the socket (or TLS) may still read from it.
    const more = req.write(pulled, (error) => {
      if (!error) body.release(pulled);
    });
    if (!more && !(await drained(req))) return;
    chunk = sent === size ? undefined : await body.next();
  }
  if (sent < size) {
    throw new NfcTransferError(
      `upload to ${where}: the file ended after ${sent} of the ${size} bytes announced`,
    );
  }
  if (!req.destroyed) req.end();
}

/** Resolves true at the request's next 'drain', false if it is destroyed or closes first. */
function drained(req: http.ClientRequest): Promise<boolean> {
  if (req.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      req.off('drain', onDrain);
      req.off('close', onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    req.on('drain', onDrain);
    req.on('close', onClose);
  });
}
