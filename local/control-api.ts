import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ShippingEvent, shippingEvents, type TransferService } from '../core/index.ts';

/**
 * The service layer on localhost for the admin CLI (`odt transfer …`): JSON over HTTP, each
 * request carrying the admin token from the state folder. The Slack bot and the agent API call
 * the same TransferService.
 */
export interface ControlApi {
  readonly url: string;
  close(): Promise<void>;
}

export async function startControlApi(options: {
  service: TransferService;
  adminToken: string;
  port?: number;
  host?: string;
}): Promise<ControlApi> {
  const { service } = options;
  const expected = Buffer.from(`Bearer ${options.adminToken}`);
  const server: Server = createServer((req, res) => {
    void handle(req, res).catch((error: Error & { code?: string }) => {
      const status = statusOf(error.code);
      send(res, status, { error: error.message, code: error.code ?? 'INTERNAL' });
    });
  });
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const auth = Buffer.from(req.headers.authorization ?? '');
    if (auth.length !== expected.length || !timingSafeEqual(auth, expected)) {
      send(res, 401, {
        error: 'missing or wrong admin token; run the CLI with the same --state-dir as odt serve',
        code: 'UNAUTHORIZED',
      });
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const parts = url.pathname.split('/').filter(Boolean);
    const body = req.method === 'POST' ? await readJson(req) : {};
    const actor = String(body.actor ?? req.headers['x-odt-actor'] ?? 'admin');
    if (parts[0] === 'tasks') {
      await tasks(req.method ?? 'GET', parts[1], parts[2], url, body, res);
      return;
    }
    if (parts[0] !== 'transfers') {
      send(res, 404, { error: `no such path ${url.pathname}`, code: 'NOT_FOUND' });
      return;
    }
    const id = parts[1];
    const verb = parts[2];
    if (req.method === 'GET' && !id) {
      send(
        res,
        200,
        await service.list({
          ...(url.searchParams.get('site') ? { site: url.searchParams.get('site')! } : {}),
        }),
      );
    } else if (req.method === 'GET' && id) {
      send(res, 200, await service.get(id));
    } else if (req.method === 'POST' && !id) {
      send(res, 201, await service.request(body.request as never));
    } else if (req.method === 'POST' && id && verb === 'approve') {
      send(res, 200, await service.approve(id, actor));
    } else if (req.method === 'POST' && id && verb === 'reject') {
      send(res, 200, await service.reject(id, actor, String(body.reason ?? '')));
    } else if (req.method === 'POST' && id && verb === 'event') {
      const event = String(body.event) as ShippingEvent;
      if (!shippingEvents.includes(event)) {
        send(res, 400, {
          error: `unknown event '${event}'; use one of ${shippingEvents.join(', ')}`,
          code: 'VALIDATION_FAILED',
        });
        return;
      }
      const shipping =
        body.carrier || body.tracking
          ? { carrier: String(body.carrier ?? ''), tracking: String(body.tracking ?? '') }
          : undefined;
      send(res, 200, await service.event(id, event, actor, shipping));
    } else if (req.method === 'POST' && id && verb === 'retry') {
      send(res, 200, await service.retry(id, actor));
    } else if (req.method === 'POST' && id && verb === 'cancel') {
      send(res, 200, await service.cancel(id, actor, String(body.reason ?? 'cancelled')));
    } else {
      send(res, 404, { error: `no such operation ${req.method} ${url.pathname}`, code: 'NOT_FOUND' });
    }
  }
  /**
   * Agent work through the admin token, for tests and the sandbox's built-in agents; enrolled
   * agents use the agent API with their own keys (a later issue).
   */
  async function tasks(
    method: string,
    id: string | undefined,
    verb: string | undefined,
    url: URL,
    body: Record<string, unknown>,
    res: ServerResponse,
  ): Promise<void> {
    const agent = String(body.agent ?? '');
    if (method === 'GET' && !id) send(res, 200, await service.openTasks(url.searchParams.get('site') ?? ''));
    else if (method === 'POST' && id && verb === 'claim')
      send(res, 200, await service.claimTask(id, String(body.site), agent));
    else if (method === 'POST' && id && verb === 'heartbeat') {
      await service.taskHeartbeat(id, agent, (body.progress as never) ?? []);
      send(res, 200, { ok: true });
    } else if (method === 'POST' && id && verb === 'complete') {
      await service.taskComplete(id, agent, (body.outcomes as never) ?? []);
      send(res, 200, { ok: true });
    } else if (method === 'POST' && id && verb === 'fail') {
      await service.taskFail(id, agent, String(body.code ?? 'AGENT_FAILED'), String(body.reason ?? ''));
      send(res, 200, { ok: true });
    } else send(res, 404, { error: `no such operation ${method} ${url.pathname}`, code: 'NOT_FOUND' });
  }

  await new Promise<void>((resolve) =>
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve),
  );
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const statusOf = (code: string | undefined): number =>
  code === 'VALIDATION_FAILED'
    ? 400
    : code === 'NOT_FOUND'
      ? 404
      : code === 'FORBIDDEN'
        ? 403
        : code === 'CONFLICT' || code === 'ILLEGAL_TRANSITION'
          ? 409
          : 500;

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > 1 << 20)
      throw Object.assign(new Error('request body over 1 MiB'), { code: 'VALIDATION_FAILED' });
    chunks.push(c);
  }
  if (chunks.length === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw Object.assign(new Error('the request body is not JSON'), { code: 'VALIDATION_FAILED' });
  }
}
