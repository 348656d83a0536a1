/**
 * Slack's side of Socket Mode, for offline tests, written from Slack's Socket Mode guide
 * (docs.slack.dev/apis/events-api/using-socket-mode) and the `apps.connections.open` method page
 * (docs.slack.dev/reference/methods/apps.connections.open):
 *
 * - `apps.connections.open` takes an app-level token (`xapp-…`, scope `connections:write`) and
 *   answers `{ ok: true, url: "wss://…" }`; a bot token is refused with `not_allowed_token_type`,
 *   an unknown one with `invalid_auth`. Every other Web API method is passed through to the fake
 *   Web API (`FakeSlackApi`), so one base URL serves the app as Slack's does.
 * - The WebSocket URL is single use (a ticket). On connect Slack sends `hello` (`num_connections`,
 *   `connection_info.app_id`, `debug_info`).
 * - Events arrive as envelopes `{ envelope_id, type, payload, accepts_response_payload,
 *   retry_attempt, retry_reason }`, type one of `slash_commands`, `interactive`, `events_api`; the
 *   app acknowledges with `{ envelope_id, payload? }`, where the optional payload is the response
 *   (a slash command's reply, a modal's `response_action`). Slack waits 3 seconds for it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import type { FakeSlackApi } from './fake-slack-api.ts';

export type EnvelopeType = 'slash_commands' | 'interactive' | 'events_api';

export interface FakeSocketMode {
  /** Base URL ending with `/api/`: `apps.connections.open` here, every other method forwarded. */
  readonly url: string;
  /** Open WebSocket connections. */
  connections(): number;
  /** Resolves when an app has connected and received `hello`. */
  connected(): Promise<void>;
  /**
   * Sends an envelope to the connected app; resolves with the acknowledgement's payload (or `{}`),
   * rejects when no acknowledgement comes within `ackTimeoutMs` (Slack's 3 seconds).
   */
  send(type: EnvelopeType, payload: Record<string, unknown>): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

export interface FakeSocketModeOptions {
  readonly api: FakeSlackApi;
  /** Valid app-level tokens. Default `xapp-test`. */
  readonly appTokens?: readonly string[];
  readonly appId?: string;
  readonly ackTimeoutMs?: number;
}

const readBody = async (req: IncomingMessage): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
};

export async function startFakeSocketMode(options: FakeSocketModeOptions): Promise<FakeSocketMode> {
  const appTokens = new Set(options.appTokens ?? ['xapp-test']);
  const appId = options.appId ?? 'AODT';
  const ackTimeoutMs = options.ackTimeoutMs ?? 3000;
  const tickets = new Set<string>();
  const sockets = new Set<WebSocket>();
  const pending = new Map<string, (payload: Record<string, unknown>) => void>();
  let onConnect: (() => void)[] = [];

  const server: Server = createServer(async (req, res) => {
    const body = await readBody(req);
    const method = new URL(req.url ?? '/', 'http://x').pathname.replace(/^\/api\//, '');
    if (method === 'apps.connections.open') {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const answer = !token
        ? { ok: false, error: 'not_authed' }
        : !token.startsWith('xapp-')
          ? { ok: false, error: 'not_allowed_token_type' }
          : !appTokens.has(token)
            ? { ok: false, error: 'invalid_auth' }
            : (() => {
                const ticket = randomBytes(8).toString('hex');
                tickets.add(ticket);
                return { ok: true, url: `ws://127.0.0.1:${port()}/link/?ticket=${ticket}&app_id=${appId}` };
              })();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
      return;
    }
    // Everything else is the Web API's.
    const hopByHop = new Set(['host', 'content-length', 'connection', 'keep-alive', 'transfer-encoding']);
    try {
      const forwarded = await fetch(new URL(method, options.api.url), {
        method: req.method ?? 'POST',
        headers: Object.fromEntries(
          Object.entries(req.headers).filter(
            (e): e is [string, string] => typeof e[1] === 'string' && !hopByHop.has(e[0]),
          ),
        ),
        ...(body.length > 0 ? { body } : {}),
      });
      res
        .writeHead(forwarded.status, {
          'content-type': forwarded.headers.get('content-type') ?? 'application/json',
        })
        .end(Buffer.from(await forwarded.arrayBuffer()));
    } catch (error) {
      res.writeHead(502).end(String(error));
    }
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const ticket = url.searchParams.get('ticket') ?? '';
    if (url.pathname !== '/link/' || !tickets.delete(ticket)) {
      socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      ws.on('message', (data) => {
        let msg: { envelope_id?: string; payload?: Record<string, unknown> };
        try {
          msg = JSON.parse(String(data)) as typeof msg;
        } catch {
          return;
        }
        const resolve = msg.envelope_id ? pending.get(msg.envelope_id) : undefined;
        if (resolve) {
          pending.delete(msg.envelope_id!);
          resolve(msg.payload ?? {});
        }
      });
      ws.send(
        JSON.stringify({
          type: 'hello',
          num_connections: sockets.size,
          debug_info: { host: 'fake-socket-mode', approximate_connection_time: 3600 },
          connection_info: { app_id: appId },
        }),
      );
      const waiting = onConnect;
      onConnect = [];
      for (const w of waiting) w();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = () => (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port()}/api/`,
    connections: () => sockets.size,
    connected: () => (sockets.size > 0 ? Promise.resolve() : new Promise<void>((r) => onConnect.push(r))),
    send(type, payload) {
      const ws = [...sockets].at(-1);
      if (!ws) return Promise.reject(new Error('no app is connected over Socket Mode'));
      const envelopeId = randomUUID();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(envelopeId);
          reject(new Error(`no acknowledgement of ${type} envelope ${envelopeId} within ${ackTimeoutMs} ms`));
        }, ackTimeoutMs);
        pending.set(envelopeId, (p) => {
          clearTimeout(timer);
          resolve(p);
        });
        ws.send(
          JSON.stringify({
            envelope_id: envelopeId,
            type,
            payload,
            accepts_response_payload: type !== 'events_api',
            retry_attempt: 0,
            retry_reason: '',
          }),
        );
      });
    },
    async close() {
      for (const ws of sockets) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
