import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { codeOf, ForbiddenError, NotFoundError, ValidationError } from '../core/errors.ts';
import { checkEnrollment, checkSite } from '../core/model/enrollment.ts';
import { exportCaptureSchema, placedNamesSchema, type Transfer } from '../core/model/transfer.ts';
import { type SignedStatement, signedStatementSchema } from '../core/model/transfer-key.ts';
import {
  AgentAuthError,
  type AgentRecord,
  type AgentRegistry,
  type AgentTransferView,
  admitAgentHeaders,
  authenticateAgentRequest,
  certificateSha256Of,
  checkSignature,
  checkSignedHeaders,
  EnrollmentError,
  parseDuration,
  signatureWindowMs,
  verifyWithCertificate,
} from '../core/ports/agents.ts';
import type { Clock } from '../core/ports/clock.ts';
import { type Logger, silentLogger } from '../core/ports/logger.ts';
import type { ItemOutcome, TaskProgress, TaskQueue, TaskRecord } from '../core/ports/task-queue.ts';
import type { TransferService } from '../core/service/transfer-service.ts';
import { fieldIssues } from '../core/validate.ts';
import {
  listen,
  logFailedRequest,
  parseJsonObject,
  readBody,
  requestMeta,
  sendJson,
  statusOfCode,
} from './http-json.ts';

/**
 * The agent API on localhost (mounted by `odt serve` next to the admin API).
 *
 * The request handling is transport-independent (`createAgentApiHandler`): the Lambda function on
 * AWS (functions/agent-api.ts) serves the same routes through it.
 *
 * Agents: `POST /agents/enroll` once with a one-time code, then every `/agent/...` request signed
 * with the enrolled key (core/ports/agents.ts). An agent sees only its own site: its tasks, and
 * transfers whose site or provider site is its site. Admin (bearer admin token): enrollment codes,
 * agents, revocation, site inventories.
 */
export interface AgentApi {
  readonly url: string;
  close(): Promise<void>;
}

export interface AgentApiOptions extends AgentApiHandlerOptions {
  readonly port?: number;
  readonly host?: string;
}

/**
 * The most body each kind of call may carry (bytes), enforced once the headers were checked and
 * before more is read (issue #18). Sized from the largest legitimate request of each:
 * - task calls (claim, heartbeat, complete, fail, release): 1 MiB. The largest is `complete` for a
 *   transfer's 200 items (its maximum), each with a reason and the names of its VMs; at 4 KiB an
 *   item (a 1,000-character reason and ten 255-character names) that is 0.8 MB; a heartbeat for
 *   200 items is about 30 KB (test/agents/agent-api-admission.test.ts measures both).
 * - the inventory: 4 MiB, about 10,000 VMs at the 300-400 bytes an item takes.
 * - enrollment and the admin calls: 64 KiB (a certificate is about 2 KB).
 */
export const agentBodyLimits = { task: 1 << 20, inventory: 4 << 20, other: 64 << 10 } as const;

/** A request before its body: what the API checks first. */
export type AgentApiHead = Omit<AgentApiRequest, 'body'>;

/** The answer to a request's head: refused (nothing of the body is read), or how much body it may send. */
export type Admission = { readonly refused: AgentApiResponse } | { readonly maxBody: number };

/** The transport-independent handler, and its check of a request's head alone. */
export interface AgentApiHandler {
  (request: AgentApiRequest): Promise<AgentApiResponse>;
  /**
   * Checks a request's head before any of its body is read: the route exists; an agent call names
   * a known, active agent and carries well-formed signature headers inside the clock window; an
   * enrollment carries signature headers inside the window; an admin call the admin token. The
   * handler itself checks it again (the Lambda has no separate head).
   */
  admit(head: AgentApiHead): Promise<Admission>;
}

const tooLarge = (maxBody: number): AgentApiResponse => ({
  status: 413,
  body: {
    error: `request body over ${maxBody} bytes, the most this call takes; send less per call`,
    code: 'TOO_LARGE',
  },
});

/** A request as both transports see it: the request target as sent (path and query), raw body. */
export interface AgentApiRequest {
  readonly method: string;
  /** Path and query string exactly as the client sent them (the signature covers them). */
  readonly target: string;
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
}

export interface AgentApiResponse {
  readonly status: number;
  readonly body: unknown;
}

export interface AgentApiHandlerOptions {
  readonly service: TransferService;
  readonly tasks: TaskQueue;
  readonly registry: AgentRegistry;
  /** The admin bearer token, or how to get it (on AWS: from Secrets Manager, once per container). */
  readonly adminToken: string | (() => Promise<string>);
  readonly clock: Clock;
  /** Called after a heartbeat was accepted, with the task as it was before (for metrics). */
  readonly onHeartbeat?: (agent: AgentRecord, before: TaskRecord) => void;
  /**
   * Every request at debug (with the agent's id and site once it is authenticated), enrollments
   * and revocations at info, failures as local/http-json.ts `logFailedRequest` says: a 5xx at
   * error with its stack. Default: none.
   */
  readonly logger?: Logger;
}

/**
 * The agent API without a transport: `odt serve` (node:http, below) and the Lambda function
 * (functions/agent-api.ts) both call this. Never throws: errors become their status and
 * `{ error, code }`.
 */
export function createAgentApiHandler(options: AgentApiHandlerOptions): AgentApiHandler {
  const { service, tasks, registry, clock } = options;
  const log = options.logger ?? silentLogger;
  const adminToken =
    typeof options.adminToken === 'string'
      ? (
          (t: string) => async () =>
            t
        )(options.adminToken)
      : options.adminToken;

  const refusal = (error: Error & { code?: string }, meta: Record<string, unknown>): AgentApiResponse => {
    const status = statusOf(error);
    logFailedRequest(log, meta, status, error);
    return { status, body: { error: error.message, code: error.code ?? 'INTERNAL' } };
  };

  async function admit(head: AgentApiHead): Promise<Admission> {
    const method = head.method.toUpperCase();
    const meta = requestMeta(method, head.target);
    try {
      const parts = new URL(head.target, 'http://localhost').pathname.split('/').filter(Boolean);
      if (method === 'POST' && parts[0] === 'agents' && parts[1] === 'enroll' && parts.length === 2) {
        checkSignedHeaders(head, clock.now());
        return { maxBody: agentBodyLimits.other };
      }
      if (parts[0] === 'agent') {
        await admitAgentHeaders(registry, head, clock.now());
        return { maxBody: parts[1] === 'inventory' ? agentBodyLimits.inventory : agentBodyLimits.task };
      }
      if (parts[0] === 'admin' || parts[0] === 'sites') {
        await requireAdmin(head);
        return { maxBody: agentBodyLimits.other };
      }
      throw new NotFoundError('path', new URL(head.target, 'http://localhost').pathname);
    } catch (e) {
      return { refused: refusal(e as Error, meta) };
    }
  }

  const handler = async (request: AgentApiRequest): Promise<AgentApiResponse> => {
    const admission = await admit(request);
    if ('refused' in admission) return admission.refused;
    if (request.body.length > admission.maxBody) return tooLarge(admission.maxBody);
    // Filled in as the request is understood (agentId and site once authenticated).
    const meta: Record<string, unknown> = requestMeta(request.method.toUpperCase(), request.target);
    try {
      const response = await handle(request, meta);
      log.debug({ ...meta, status: response.status }, 'request');
      return response;
    } catch (e) {
      return refusal(e as Error, meta);
    }
  };
  return Object.assign(handler, { admit });

  async function handle(req: AgentApiRequest, meta: Record<string, unknown>): Promise<AgentApiResponse> {
    const method = req.method.toUpperCase();
    const target = req.target;
    const url = new URL(target, 'http://localhost');
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const raw = req.body;
    const json = (): Record<string, unknown> => parseJsonObject(raw);

    if (method === 'POST' && parts[0] === 'agents' && parts[1] === 'enroll' && parts.length === 2) {
      const enrolled = await enroll(req, target, raw, json());
      log.info({ ...meta, agentId: enrolled.agentId, site: enrolled.site }, 'agent enrolled');
      return { status: 201, body: enrolled };
    }
    if (parts[0] === 'agent') {
      const agent = await authenticateAgentRequest(
        registry,
        { method, path: target, headers: req.headers, body: raw },
        clock.now(),
      );
      Object.assign(meta, { agentId: agent.id, site: agent.site });
      return agentRoute(agent, method, parts.slice(1), json);
    }
    if (parts[0] === 'admin' || parts[0] === 'sites') {
      await requireAdmin(req);
      // `/admin/sites/<site>/inventory` is the same as `/sites/<site>/inventory` (on AWS only
      // `/admin/...` is routed).
      const adminParts = parts[0] === 'admin' && parts[1] === 'sites' ? parts.slice(1) : parts;
      return adminRoute(method, adminParts, url, json);
    }
    throw new NotFoundError('path', url.pathname);
  }

  async function enroll(
    req: AgentApiRequest,
    target: string,
    raw: Buffer,
    body: Record<string, unknown>,
  ): Promise<{ agentId: string; site: string; certSha256: string }> {
    const code = str(body.code, 'code');
    const certPem = str(body.certificate ?? body.certPem, 'certificate');
    const name = typeof body.name === 'string' && body.name.trim() ? body.name.trim().slice(0, 255) : 'agent';
    let certSha256: string;
    try {
      certSha256 = certificateSha256Of(certPem);
    } catch {
      throw new ValidationError('The enrollment', [
        { path: 'certificate', message: 'is not a PEM X.509 certificate (CSRs are not accepted)' },
      ]);
    }
    const now = clock.now();
    // Proof of possession: the enrollment itself is signed with the certificate's key.
    await checkSignature(
      { method: 'POST', path: target, headers: req.headers, body: raw },
      certPem,
      now,
      (n) => registry.useNonce(`enroll:${certSha256}`, n, now, signatureWindowMs),
    );
    // The site the agent was started for (--site): a code of another site is refused unspent.
    const site =
      typeof body.site === 'string' && body.site.trim()
        ? checkSite(body.site.trim(), 'The enrollment')
        : undefined;
    const agent = await registry.enroll(
      {
        code,
        certPem,
        certSha256,
        name,
        id: `agt-${randomBytes(6).toString('hex')}`,
        ...(site ? { site } : {}),
      },
      now,
    );
    return { agentId: agent.id, site: agent.site, certSha256: agent.certSha256 };
  }

  /** The task, if it is the agent's site's; another site's task is refused (403) without details. */
  async function ownTask(agent: AgentRecord, taskId: string): Promise<TaskRecord> {
    const task = await tasks.get(taskId);
    if (!task) throw new NotFoundError('task', taskId);
    if (task.site !== agent.site) {
      throw new ForbiddenError(
        `task '${taskId}' belongs to another site; an agent acts only on its own site's tasks`,
      );
    }
    return task;
  }

  async function agentRoute(
    agent: AgentRecord,
    method: string,
    parts: readonly string[],
    json: () => Record<string, unknown>,
  ): Promise<AgentApiResponse> {
    const [what, id, verb] = parts;
    if (method === 'GET' && what === 'me' && !id) {
      return {
        status: 200,
        body: { id: agent.id, site: agent.site, name: agent.name, certSha256: agent.certSha256 },
      };
    }
    if (method === 'GET' && what === 'tasks' && !id) {
      return { status: 200, body: await service.openTasks(agent.site) };
    }
    if (method === 'GET' && what === 'tasks' && id && !verb) {
      return { status: 200, body: await ownTask(agent, id) };
    }
    if (method === 'POST' && what === 'tasks' && id && verb) {
      const before = await ownTask(agent, id);
      const body = json();
      switch (verb) {
        case 'claim':
          return { status: 200, body: await service.claimTask(id, agent.site, agent.id) };
        case 'heartbeat':
          await service.taskHeartbeat(id, agent.id, progressOf(body.progress));
          options.onHeartbeat?.(agent, before);
          break;
        case 'complete':
          await service.taskComplete(id, agent.id, outcomesOf(body.outcomes), statementOf(agent, body));
          break;
        case 'fail':
          await service.taskFail(
            id,
            agent.id,
            typeof body.code === 'string' && body.code ? body.code : 'AGENT_FAILED',
            typeof body.reason === 'string' ? body.reason : '',
          );
          break;
        case 'release':
          await tasks.release(id, agent.id);
          break;
        default:
          throw new NotFoundError('operation', `POST /agent/tasks/${id}/${verb}`);
      }
      return { status: 200, body: { ok: true } };
    }
    if (method === 'GET' && what === 'transfers' && id && !verb) {
      return { status: 200, body: await transferView(agent, id) };
    }
    if (method === 'POST' && what === 'inventory' && !id) {
      const body = json();
      if (!Array.isArray(body.items)) {
        throw new ValidationError('The inventory', [{ path: 'items', message: 'must be an array' }]);
      }
      await registry.putInventory({
        site: agent.site,
        agentId: agent.id,
        reportedAt: clock.now().toISOString(),
        items: body.items,
      });
      return { status: 200, body: { ok: true, items: body.items.length } };
    }
    throw new NotFoundError('operation', `${method} /agent/${parts.join('/')}`);
  }

  async function transferView(agent: AgentRecord, id: string): Promise<AgentTransferView> {
    const t = await service.get(id).catch((error: unknown) => {
      throw error instanceof NotFoundError ? new NotFoundError('transfer', id) : error;
    });
    if (t.site !== agent.site && t.providerSite !== agent.site) {
      throw new ForbiddenError(`transfer '${id}' is not for site '${agent.site}'`);
    }
    let exportAgent: AgentTransferView['exportAgent'];
    if (t.providerSite === agent.site) {
      // The signer of the package: the holder of the latest completed export task.
      let signer: string | undefined;
      for (let round = 1; round < 1000; round++) {
        const task = await tasks.get(`${id}-export-${round}`);
        if (!task) break;
        if (task.status === 'completed' && task.holder) signer = task.holder;
      }
      const rec = signer ? await registry.get(signer) : undefined;
      if (rec && !rec.revoked && rec.site === t.site) {
        exportAgent = { id: rec.id, certPem: rec.certPem, certSha256: rec.certSha256 };
      }
    }
    return {
      id: t.id,
      site: t.site,
      providerSite: t.providerSite,
      phase: t.phase,
      items: t.items.map((i) => ({
        id: i.id,
        kind: i.kind,
        source: i.source,
        target: i.target,
        state: i.result.state,
      })),
      ...(exportAgent ? { exportAgent } : {}),
      // The node's signed recipient (the export agent checks it against the node it pinned), and
      // for the node's wipe statement, who confirmed the NAS erase.
      ...(t.key ? { key: t.key } : {}),
      ...nasErase(t),
    };
  }

  /**
   * A key task's signed statement (issue #18), when the body carries one: it must verify with the
   * certificate of the agent that sends it, so a node cannot hand in another's statement.
   */
  function statementOf(agent: AgentRecord, body: Record<string, unknown>): SignedStatement | undefined {
    if (body.statement === undefined) return undefined;
    const parsed = signedStatementSchema.safeParse(body.statement);
    if (!parsed.success) {
      throw new ValidationError('The task statement', fieldIssues(parsed.error, ['statement']));
    }
    const { payload, signature } = parsed.data;
    if (
      !verifyWithCertificate(agent.certPem, Buffer.from(payload, 'base64'), Buffer.from(signature, 'base64'))
    ) {
      throw new ValidationError('The task statement', [
        {
          path: 'statement.signature',
          message: `does not verify with agent ${agent.id}'s enrolled certificate`,
        },
      ]);
    }
    return parsed.data;
  }

  async function requireAdmin(req: AgentApiHead): Promise<void> {
    const expectedAdmin = Buffer.from(`Bearer ${await adminToken()}`);
    const given = req.headers.authorization;
    const auth = Buffer.from((Array.isArray(given) ? given[0] : given) ?? '');
    if (auth.length !== expectedAdmin.length || !timingSafeEqual(auth, expectedAdmin)) {
      throw new AgentAuthError('missing or wrong admin token; use the admin token of the state folder');
    }
  }

  async function adminRoute(
    method: string,
    parts: readonly string[],
    url: URL,
    json: () => Record<string, unknown>,
  ): Promise<AgentApiResponse> {
    const now = clock.now();
    if (
      method === 'GET' &&
      parts[0] === 'sites' &&
      parts[1] &&
      parts[2] === 'inventory' &&
      parts.length === 3
    ) {
      const inv = await registry.getInventory(checkSite(parts[1]));
      if (!inv) throw new NotFoundError('inventory of site', parts[1]);
      return { status: 200, body: inv };
    }
    if (method === 'POST' && parts[1] === 'enrollments' && parts.length === 2) {
      const body = json();
      const ttlText = String(body.ttl ?? '15m');
      const ms = parseDuration(ttlText);
      if (ms === undefined)
        throw new ValidationError('The enrollment', [
          { path: 'ttl', message: `'${ttlText}': use e.g. 15m, 1h, 7d` },
        ]);
      // Before anything is stored: the one site-name rule, a lifetime of at most 30 days.
      const { site, ttlMs } = checkEnrollment(body.site, ms);
      const issued = await registry.issueCode(site, ttlMs, now);
      // Never the code itself.
      log.info({ site, expiresAt: issued.expiresAt }, 'enrollment code issued');
      return { status: 201, body: issued };
    }
    if (method === 'GET' && parts[1] === 'agents' && parts.length === 2) {
      const site = url.searchParams.get('site');
      const list = await registry.list(site === null ? undefined : checkSite(site));
      return { status: 200, body: list.map(({ certPem: _c, ...rest }) => rest) };
    }
    if (method === 'POST' && parts[1] === 'agents' && parts[2] && parts[3] === 'revoke') {
      if (!(await registry.revoke(parts[2], now))) throw new NotFoundError('agent', parts[2]);
      log.info({ agentId: parts[2] }, 'agent revoked');
      return { status: 200, body: { ok: true, id: parts[2] } };
    }
    throw new NotFoundError('operation', `${method} ${url.pathname}`);
  }
}

/**
 * Answers and closes the connection: the rest of the request's body is never read (Node ends the
 * socket after the answer when it says `Connection: close`).
 */
function answerAndClose(res: ServerResponse, r: AgentApiResponse): void {
  res.setHeader('Connection', 'close');
  sendJson(res, r.status, r.body);
}

/**
 * The agent API on node:http (`odt serve`), over the shared handler. The head is checked before
 * any of the body is read; a refused head, and a body over the call's limit (413, by its
 * Content-Length or once the limit is passed), are answered with `Connection: close`.
 */
export async function startAgentApi(options: AgentApiOptions): Promise<AgentApi> {
  const handle = createAgentApiHandler(options);
  const log = options.logger ?? silentLogger;
  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const head: AgentApiHead = { method: req.method ?? 'GET', target: req.url ?? '/', headers: req.headers };
    const admission = await handle.admit(head);
    if ('refused' in admission) return answerAndClose(res, admission.refused);
    const { maxBody } = admission;
    if (Number(req.headers['content-length'] ?? 0) > maxBody) return answerAndClose(res, tooLarge(maxBody));
    let body: Buffer;
    try {
      body = await readBody(req, maxBody);
    } catch (error) {
      if (codeOf(error) === 'TOO_LARGE') return answerAndClose(res, tooLarge(maxBody));
      throw error;
    }
    const r = await handle({ ...head, body });
    sendJson(res, r.status, r.body);
  };
  const server: Server = createServer((req, res) => {
    serve(req, res).catch((error: Error & { code?: string }) => {
      // The body could not be read (the handler logs everything else).
      logFailedRequest(log, requestMeta(req.method, req.url), statusOf(error), error);
      if (!res.headersSent)
        answerAndClose(res, {
          status: statusOf(error),
          body: { error: error.message, code: error.code ?? 'INTERNAL' },
        });
    });
  });

  return listen(server, options.port ?? 0, options.host ?? '127.0.0.1');
}

export function statusOf(error: Error & { code?: string }): number {
  if (error instanceof AgentAuthError || error instanceof EnrollmentError) return 401;
  return statusOfCode(error.code);
}

const str = (v: unknown, path: string): string => {
  if (typeof v !== 'string' || v.trim() === '') {
    throw new ValidationError('The request', [{ path, message: 'is required' }]);
  }
  return v;
};

function progressOf(v: unknown): TaskProgress[] {
  if (v === undefined) return [];
  if (!Array.isArray(v))
    throw new ValidationError('The heartbeat', [{ path: 'progress', message: 'must be an array' }]);
  return v.map((p: Record<string, unknown>, i) => {
    if (typeof p?.itemId !== 'string' || typeof p.bytesDone !== 'number') {
      throw new ValidationError('The heartbeat', [
        { path: `progress.${i}`, message: 'needs itemId (string) and bytesDone (number)' },
      ]);
    }
    if (p.stage !== undefined && p.stage !== 'verifying') {
      throw new ValidationError('The heartbeat', [
        { path: `progress.${i}.stage`, message: "must be 'verifying' or absent" },
      ]);
    }
    return {
      itemId: p.itemId,
      bytesDone: p.bytesDone,
      ...(typeof p.bytesTotal === 'number' ? { bytesTotal: p.bytesTotal } : {}),
      ...(typeof p.bytesPerSecond === 'number' ? { bytesPerSecond: p.bytesPerSecond } : {}),
      ...(p.stage === 'verifying' ? { stage: 'verifying' as const } : {}),
    };
  });
}

const outcomeStates = new Set(['imported', 'onboarded', 'powered-on']);

function outcomesOf(v: unknown): ItemOutcome[] {
  if (!Array.isArray(v))
    throw new ValidationError('The result', [{ path: 'outcomes', message: 'must be an array' }]);
  return v.map((o: Record<string, unknown>, i) => {
    if (typeof o?.itemId !== 'string' || typeof o.ok !== 'boolean') {
      throw new ValidationError('The result', [
        { path: `outcomes.${i}`, message: 'needs itemId (string) and ok (boolean)' },
      ]);
    }
    if (o.state !== undefined && !outcomeStates.has(String(o.state))) {
      throw new ValidationError('The result', [
        { path: `outcomes.${i}.state`, message: 'is one of imported, onboarded, powered-on' },
      ]);
    }
    const names = o.names === undefined ? undefined : placedNamesSchema.safeParse(o.names);
    const capture = o.capture === undefined ? undefined : exportCaptureSchema.safeParse(o.capture);
    if (capture && !capture.success) {
      throw new ValidationError('The result', fieldIssues(capture.error, ['outcomes', i, 'capture']));
    }
    if (names && !names.success) {
      throw new ValidationError('The result', fieldIssues(names.error, ['outcomes', i, 'names']));
    }
    return {
      itemId: o.itemId,
      ok: o.ok,
      ...(typeof o.reason === 'string' ? { reason: o.reason } : {}),
      ...(typeof o.code === 'string' ? { code: o.code } : {}),
      ...(typeof o.bytes === 'number' ? { bytes: o.bytes } : {}),
      ...(o.state ? { state: o.state as ItemOutcome['state'] } : {}),
      ...(names?.success ? { names: names.data } : {}),
      ...(capture?.success ? { capture: capture.data } : {}),
    } as ItemOutcome;
  });
}

/** Who confirmed the NAS erase of a wiped transfer, and when (the node's wipe statement names them); exported for its test. */
export function nasErase(t: Transfer): Pick<AgentTransferView, 'nasErase'> {
  // The entry that moved it to wiped: a person's confirmation, or the workflow closing it when
  // nobody confirmed in time (then nobody confirmed the erase).
  const entry = t.history.find((h) => h.phase === 'wiped');
  return entry && entry.actor !== 'workflow' ? { nasErase: { by: entry.actor, at: entry.at } } : {};
}
