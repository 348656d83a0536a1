import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  checkSite,
  ForbiddenError,
  NotFoundError,
  type ShippingEvent,
  shippingEvents,
  type TransferService,
  ValidationError,
} from '../core/index.ts';
import type { AgentRegistry } from '../core/ports/agents.ts';
import { type Logger, silentLogger } from '../core/ports/logger.ts';
import {
  listen,
  logFailedRequest,
  parseJsonObject,
  readBody,
  requestMeta,
  sendJson,
  statusOfCode,
} from '../shared/http-json.ts';
import type { SqliteOperators } from './operators.ts';

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
  /** The agent registry: `odt agent enroll | list | revoke | inventory` go through this API. */
  registry?: AgentRegistry;
  /**
   * The operators and their tokens (`odt operator add`). A request with an operator's token acts
   * as that operator. Once one exists, the admin token no longer acts for a person: a decision
   * needs an operator's token, and `--as` cannot name someone else.
   */
  operators?: SqliteOperators;
  adminToken: string;
  port?: number;
  host?: string;
  /** Every request at debug; failures as local/http-json.ts `logFailedRequest` says. Default: none. */
  logger?: Logger;
}): Promise<ControlApi> {
  const { service } = options;
  const log = options.logger ?? silentLogger;
  const expected = Buffer.from(`Bearer ${options.adminToken}`);
  const server: Server = createServer((req, res) => {
    const meta = requestMeta(req.method, req.url);
    res.once('finish', () => log.debug({ ...meta, status: res.statusCode }, 'request'));
    void handle(req, res).catch((error: Error & { code?: string }) => {
      const status = statusOfCode(error.code);
      logFailedRequest(log, meta, status, error);
      sendJson(res, status, { error: error.message, code: error.code ?? 'INTERNAL' });
    });
  });
  /** Who is calling: the admin token's holder, or an operator named by the server's own records. */
  function caller(req: IncomingMessage): { kind: 'admin' } | { kind: 'operator'; name: string } | undefined {
    const header = req.headers.authorization ?? '';
    const auth = Buffer.from(header);
    if (auth.length === expected.length && timingSafeEqual(auth, expected)) return { kind: 'admin' };
    const name = header.startsWith('Bearer ') ? options.operators?.nameOf(header.slice(7)) : undefined;
    return name ? { kind: 'operator', name } : undefined;
  }

  /**
   * The person a decision is recorded for. An operator's token names them (an `actor` that names
   * someone else is refused). The admin token names nobody: its `actor` (`--as`) is taken on
   * trust only while the state folder has no operators (a lab, the tests); once one exists, it is
   * refused and the operator's own token is needed.
   */
  function actorOf(who: { kind: 'admin' } | { kind: 'operator'; name: string }, asserted: unknown): string {
    const claimed = typeof asserted === 'string' && asserted.trim() ? asserted.trim() : undefined;
    if (who.kind === 'operator') {
      if (claimed !== undefined && claimed !== who.name)
        throw new ForbiddenError(
          `this operator token is ${who.name}'s; it cannot act as '${claimed}' (drop --as, or use ${claimed}'s own token)`,
        );
      return who.name;
    }
    if (options.operators && options.operators.count() > 0)
      throw new ForbiddenError(
        'the admin token acts for no person once operators exist: use your operator token ' +
          '(--token-file or ODT_OPERATOR_TOKEN_FILE; `odt operator add <name> --out <file>` issues one)',
      );
    return claimed ?? 'admin';
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const who = caller(req);
    if (!who) {
      log.warn({ ...requestMeta(req.method, req.url), status: 401, code: 'UNAUTHORIZED' }, 'request refused');
      sendJson(res, 401, {
        error:
          'missing or wrong token: run the CLI with the same --state-dir as odt serve (admin token), or with your operator token (--token-file)',
        code: 'UNAUTHORIZED',
      });
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const parts = url.pathname.split('/').filter(Boolean);
    const body = req.method === 'POST' ? parseJsonObject(await readBody(req, 1 << 20)) : {};
    // Reads are anyone's with a token; everything that changes something names its person.
    let person: string | undefined;
    const actor = (): string => {
      person ??= actorOf(who, body.actor ?? req.headers['x-odt-actor']);
      return person;
    };
    const adminOnly = () => {
      if (who.kind !== 'admin')
        throw new ForbiddenError(
          `${req.method} ${url.pathname} needs the admin token of the state folder (operator ${who.name} has no admin rights)`,
        );
    };
    if (parts[0] === 'operators') {
      adminOnly();
      operatorsRoute(req.method ?? 'GET', parts[1], body, res);
      return;
    }
    if (parts[0] === 'agents' || parts[0] === 'sites') {
      if (!(req.method === 'GET' && parts[0] === 'agents')) adminOnly();
      await agents(req.method ?? 'GET', parts, url, body, res);
      return;
    }
    if (parts[0] === 'tasks') {
      // Reading the open tasks is anyone's (`transfer show` names what they wait for).
      if (req.method !== 'GET') adminOnly();
      await tasks(req.method ?? 'GET', parts[1], parts[2], url, body, res);
      return;
    }
    if (parts[0] !== 'transfers') {
      sendJson(res, 404, { error: `no such path ${url.pathname}`, code: 'NOT_FOUND' });
      return;
    }
    const id = parts[1];
    const verb = parts[2];
    if (req.method === 'GET' && !id) {
      sendJson(
        res,
        200,
        await service.list({
          ...(url.searchParams.get('site') ? { site: checkSite(url.searchParams.get('site')) } : {}),
        }),
      );
    } else if (req.method === 'GET' && id) {
      sendJson(res, 200, await service.get(id));
    } else if (req.method === 'POST' && !id) {
      sendJson(res, 201, await service.request(requestOf(body.request, who, actor) as never));
    } else if (req.method === 'POST' && id && verb === 'approve') {
      sendJson(res, 200, await service.approve(id, actor()));
    } else if (req.method === 'POST' && id && verb === 'reject') {
      sendJson(res, 200, await service.reject(id, actor(), String(body.reason ?? '')));
    } else if (req.method === 'POST' && id && verb === 'event') {
      const event = String(body.event) as ShippingEvent;
      if (!shippingEvents.includes(event)) {
        sendJson(res, 400, {
          error: `unknown event '${event}'; use one of ${shippingEvents.join(', ')}`,
          code: 'VALIDATION_FAILED',
        });
        return;
      }
      const shipping =
        body.carrier || body.tracking
          ? { carrier: String(body.carrier ?? ''), tracking: String(body.tracking ?? '') }
          : undefined;
      sendJson(res, 200, await service.event(id, event, actor(), shipping));
    } else if (req.method === 'POST' && id && verb === 'retry') {
      sendJson(res, 200, await service.retry(id, actor()));
    } else if (req.method === 'POST' && id && verb === 'cancel') {
      sendJson(res, 200, await service.cancel(id, actor(), String(body.reason ?? 'cancelled')));
    } else {
      sendJson(res, 404, { error: `no such operation ${req.method} ${url.pathname}`, code: 'NOT_FOUND' });
    }
  }
  function operatorsRoute(
    method: string,
    name: string | undefined,
    body: Record<string, unknown>,
    res: ServerResponse,
  ): void {
    const operators = options.operators;
    if (!operators) throw new NotFoundError('operation', '/operators');
    if (method === 'GET' && !name) sendJson(res, 200, operators.list());
    else if (method === 'POST' && !name) {
      const added = operators.add(String(body.name ?? ''), new Date());
      log.info({ operator: added.name }, 'operator added');
      sendJson(res, 201, added);
    } else if (method === 'DELETE' && name) {
      operators.remove(name);
      log.info({ operator: name }, 'operator removed');
      sendJson(res, 200, { ok: true, name });
    } else sendJson(res, 404, { error: `no such operation ${method} /operators`, code: 'NOT_FOUND' });
  }

  /** The agent registry for the admin CLI: the only writer of the state folder is this process. */
  async function agents(
    method: string,
    parts: readonly string[],
    url: URL,
    body: Record<string, unknown>,
    res: ServerResponse,
  ): Promise<void> {
    const registry = options.registry;
    if (!registry) throw new NotFoundError('operation', url.pathname);
    const now = new Date();
    const [what, id, verb] = parts;
    if (what === 'agents' && method === 'GET' && !id) {
      const site = url.searchParams.get('site');
      // The one site-name rule (core/model/enrollment.ts), as everywhere a site name comes in.
      const list = await registry.list(site === null ? undefined : checkSite(site));
      sendJson(
        res,
        200,
        list.map(({ certPem: _c, ...a }) => a),
      );
    } else if (what === 'agents' && method === 'POST' && id === 'enrollments' && !verb) {
      const site = typeof body.site === 'string' ? body.site.trim() : '';
      const ttlMs = Number(body.ttlMs);
      if (!site || !Number.isFinite(ttlMs) || ttlMs <= 0)
        throw new ValidationError('The enrollment', [
          ...(site ? [] : [{ path: 'site', message: 'is required' }]),
          ...(Number.isFinite(ttlMs) && ttlMs > 0 ? [] : [{ path: 'ttlMs', message: 'must be > 0' }]),
        ]);
      const issued = await registry.issueCode(site, ttlMs, now);
      log.info({ site, expiresAt: issued.expiresAt }, 'enrollment code issued');
      sendJson(res, 201, issued);
    } else if (what === 'agents' && method === 'POST' && id && verb === 'revoke') {
      if (!(await registry.revoke(id, now))) throw new NotFoundError('agent', id);
      log.info({ agentId: id }, 'agent revoked');
      sendJson(res, 200, { ok: true, id });
    } else if (what === 'sites' && method === 'GET' && id && verb === 'inventory') {
      const inv = await registry.getInventory(checkSite(id));
      if (!inv) throw new NotFoundError('inventory of site', id);
      sendJson(res, 200, inv);
    } else sendJson(res, 404, { error: `no such operation ${method} ${url.pathname}`, code: 'NOT_FOUND' });
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
    if (method === 'GET' && !id)
      sendJson(res, 200, await service.openTasks(url.searchParams.get('site') ?? ''));
    else if (method === 'POST' && id && verb === 'claim')
      sendJson(res, 200, await service.claimTask(id, String(body.site), agent));
    else if (method === 'POST' && id && verb === 'heartbeat') {
      await service.taskHeartbeat(id, agent, (body.progress as never) ?? []);
      sendJson(res, 200, { ok: true });
    } else if (method === 'POST' && id && verb === 'complete') {
      // A key task ends with the node's statement (core/model/transfer-key.ts), not outcomes.
      await service.taskComplete(id, agent, (body.outcomes as never) ?? [], body.statement as never);
      sendJson(res, 200, { ok: true });
    } else if (method === 'POST' && id && verb === 'fail') {
      await service.taskFail(id, agent, String(body.code ?? 'AGENT_FAILED'), String(body.reason ?? ''));
      sendJson(res, 200, { ok: true });
    } else sendJson(res, 404, { error: `no such operation ${method} ${url.pathname}`, code: 'NOT_FOUND' });
  }

  return listen(server, options.port ?? 0, options.host ?? '127.0.0.1');
}

/**
 * A transfer request as an operator sends it: the requester is the operator (named in the file or
 * not); another name is refused. With the admin token, as `actorOf` allows.
 */
function requestOf(
  request: unknown,
  who: { kind: 'admin' } | { kind: 'operator'; name: string },
  actor: () => string,
): unknown {
  if (typeof request !== 'object' || request === null || Array.isArray(request)) return request;
  const r = request as Record<string, unknown>;
  if (who.kind === 'admin' && r.requester !== undefined) {
    // No person behind the admin token: the file's requester stands while no operators exist.
    actor();
    return r;
  }
  const requester = actor();
  if (r.requester !== undefined && r.requester !== requester)
    throw new ForbiddenError(
      `the request names requester '${String(r.requester)}', but this token is ${requester}'s; drop the requester or use their token`,
    );
  return { ...r, requester };
}
