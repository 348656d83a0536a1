import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ValidationError } from '../core/index.ts';
import type { Logger } from '../core/ports/logger.ts';

/** The JSON-over-HTTP plumbing the localhost APIs of `odt serve` share (admin and agent). */

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** The whole request body, refused past `maxBytes` (code TOO_LARGE → 413). */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > maxBytes)
      throw Object.assign(new Error(`request body over ${maxBytes} bytes`), { code: 'TOO_LARGE' });
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** An empty body is `{}`; anything but a JSON object is a ValidationError. */
export function parseJsonObject(raw: Buffer): Record<string, unknown> {
  if (raw.length === 0) return {};
  try {
    const v = JSON.parse(raw.toString('utf8')) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch {
    throw new ValidationError('The request body', [{ path: '', message: 'is not a JSON object' }]);
  }
}

/**
 * What a log line says of a request: its method and path, and the transfer or task the path names
 * (`…/transfers/<id>`, `…/tasks/<id>`); never its query, headers or body.
 */
export function requestMeta(method: string | undefined, target: string | undefined): Record<string, string> {
  let path = '/';
  try {
    path = new URL(target ?? '/', 'http://localhost').pathname;
  } catch {
    // Logged as `/`: a target that is no URL is refused by the handler anyway.
  }
  const parts = path.split('/').filter(Boolean);
  const after = (name: string) => {
    const i = parts.indexOf(name);
    return i >= 0 && parts[i + 1] ? { [`${name.slice(0, -1)}Id`]: parts[i + 1]! } : {};
  };
  return { method: method ?? 'GET', path, ...after('transfers'), ...after('tasks') };
}

/**
 * A request that ended in an error: a 5xx at error level with the error's stack (a bug or an
 * outage to look into), 401 and 403 at warn, other 4xx at info, both without a stack.
 */
export function logFailedRequest(
  log: Logger,
  meta: Readonly<Record<string, unknown>>,
  status: number,
  error: Error & { code?: string },
): void {
  const line = { ...meta, status, code: error.code ?? 'INTERNAL' };
  if (status >= 500) log.error({ ...line, err: error }, 'request failed');
  else if (status === 401 || status === 403) log.warn({ ...line, reason: error.message }, 'request refused');
  else log.info({ ...line, reason: error.message }, 'request refused');
}

/** HTTP status for the stable error codes of core/ and the APIs. */
export function statusOfCode(code: string | undefined): number {
  switch (code) {
    case 'VALIDATION_FAILED':
      return 400;
    case 'UNAUTHORIZED':
      return 401;
    case 'FORBIDDEN':
    case 'NOT_ALLOWED':
    case 'OWN_REQUEST':
      return 403;
    case 'NOT_FOUND':
      return 404;
    case 'CONFLICT':
    case 'ILLEGAL_TRANSITION':
      return 409;
    case 'TOO_LARGE':
      return 413;
    default:
      return 500;
  }
}

/** Listens on the loopback (or `host`); `close` ends open connections too. */
export async function listen(
  server: Server,
  port = 0,
  host = '127.0.0.1',
): Promise<{ url: string; close(): Promise<void> }> {
  // A busy or forbidden port rejects (EADDRINUSE, EACCES) instead of an uncaught 'error' event.
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${bound}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
