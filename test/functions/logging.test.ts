/**
 * Issue #23, point 5, on AWS: the Lambda handlers log JSON lines (the same logger as `odt serve`)
 * with the transfer, task and agent ids and Lambda's request id; the agent API's 500s with their
 * stack; the level from ODT_LOG_LEVEL.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initAgentIdentity } from '../../agent/identity/agent-identity.ts';
import { AgentApiClient } from '../../agent/runtime/api-client.ts';
import type { AgentRegistry } from '../../core/ports/agents.ts';
import { JsonLinesChat } from '../../core/service/json-lines-chat.ts';
import type { TransferService } from '../../core/service/transfer-service.ts';
import { agentApiHandler, type HttpApiEvent, type HttpApiResult } from '../../functions/agent-api.ts';
import { agentTaskHandler } from '../../functions/agent-task.ts';
import { awaitHandler } from '../../functions/await.ts';
import { ConfigError, parseConfig } from '../../functions/config.ts';
import { createRuntime, type Runtime } from '../../functions/runtime.ts';
import { stepHandler } from '../../functions/step.ts';
import { captureLogs } from '../support/logs.ts';
import { type Dynalite, functionConfig, RecordingEngine, request, startDynalite } from './support.ts';

const adminToken = 'lambda-admin-token-never-logged';
let db: Dynalite;
let rt: Runtime;

beforeAll(async () => {
  db = await startDynalite('odt-logging');
  rt = createRuntime(functionConfig(db), {
    dynamodb: db.client(),
    workflow: new RecordingEngine(),
    chat: new JsonLinesChat(() => {}),
  });
});
afterAll(() => db?.close());

const context = { awsRequestId: 'c0ffee00-0000-4000-8000-000000000001' };

describe('the workflow functions', () => {
  it('log JSON lines with the transfer id and the request id; a coded failure at warn', async () => {
    const logs = captureLogs('debug');
    const service = () => rt.service as TransferService;
    const t = await rt.service.request(request());
    await stepHandler(service, () => logs.logger)({ transferId: t.id, action: 'validate' }, context);
    await awaitHandler(service, () => logs.logger)(
      { transferId: t.id, wait: 'approval', taskToken: 'opaque-task-token-never-logged' },
      context,
    );
    await expect(
      stepHandler(service, () => logs.logger)({ transferId: 'tr-missing', action: 'validate' }, context),
    ).rejects.toMatchObject({ name: 'NotFoundError' });

    const lines = logs.lines();
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'debug',
        msg: 'workflow step',
        transferId: t.id,
        action: 'validate',
        requestId: context.awsRequestId,
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({ msg: 'workflow wait', transferId: t.id, wait: 'approval' }),
    );
    const failed = lines.find((l) => l.msg === 'workflow step failed')!;
    expect(failed).toMatchObject({ level: 'warn', transferId: 'tr-missing', code: 'NOT_FOUND' });
    expect(failed.err).toBeUndefined();
    expect(logs.text()).not.toContain('opaque-task-token-never-logged');
  });

  it('the agent-task function logs the transfer id and the kind, and why it was refused', async () => {
    const logs = captureLogs('debug');
    const t = await rt.service.request(request());
    // Not approved yet: the export cannot start.
    await expect(
      agentTaskHandler(
        () => rt.service,
        () => logs.logger,
      )({ transferId: t.id, kind: 'export', taskToken: 'task-token-x' }, context),
    ).rejects.toMatchObject({ code: 'ILLEGAL_TRANSITION' });
    expect(logs.lines()).toContainEqual(
      expect.objectContaining({
        level: 'debug',
        msg: 'workflow agent task',
        transferId: t.id,
        kind: 'export',
      }),
    );
    expect(logs.lines()).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        msg: 'workflow agent task failed',
        transferId: t.id,
        code: 'ILLEGAL_TRANSITION',
      }),
    );
  });
});

describe('the agent API function', () => {
  let keys: string;
  beforeAll(async () => {
    keys = await mkdtemp(join(tmpdir(), 'odt-fn-log-keys-'));
  });
  afterAll(() => rm(keys, { recursive: true, force: true }));

  const event = (method: string, target: string, body = '', headers: Record<string, string> = {}) => {
    const [rawPath = '/', rawQueryString = ''] = target.split('?');
    return {
      version: '2.0',
      rawPath,
      rawQueryString,
      headers: { 'content-type': 'application/json', ...headers },
      ...(body ? { body } : {}),
      requestContext: { http: { method } },
    } as HttpApiEvent;
  };
  const admin = (method: string, target: string, body?: unknown) =>
    event(method, target, body === undefined ? '' : JSON.stringify(body), {
      authorization: `Bearer ${adminToken}`,
    });

  it('logs enrollments and requests with the agent, site and task ids; never the code or the token', async () => {
    const logs = captureLogs('debug');
    const handler = agentApiHandler(() => ({
      service: rt.service,
      tasks: rt.store.tasks,
      registry: rt.registry,
      clock: rt.clock,
      adminToken: async () => adminToken,
      heartbeatSeconds: 600,
      emit: () => {},
      logger: logs.logger,
    }));
    const call = async (e: HttpApiEvent) => {
      const r = (await handler(e, context)) as HttpApiResult;
      return { status: r.statusCode, body: JSON.parse(r.body) as Record<string, unknown> };
    };
    const issued = await call(admin('POST', '/admin/enrollments', { site: 'acme' }));
    const code = String(issued.body.code);
    const identity = (await initAgentIdentity(join(keys, 'a'), { commonName: 'a' })).identity;
    const anon = new AgentApiClient({ server: 'http://unused', keyPem: identity.keyPem });
    const enrollBody = JSON.stringify({ code, certificate: identity.certPem });
    const enrolled = await call(
      event('POST', '/agents/enroll', enrollBody, anon.signHeaders('POST', '/agents/enroll', enrollBody)),
    );
    expect(enrolled.status).toBe(201);
    const agentId = String(enrolled.body.agentId);
    const agent = new AgentApiClient({ server: 'http://unused', keyPem: identity.keyPem, agentId });
    await rt.store.tasks.enqueue(
      {
        id: 'acme-log-1',
        kind: 'export',
        site: 'acme',
        transferId: 'tr-log',
        itemIds: ['i1'],
        heartbeatSeconds: 600,
      },
      new Date(),
    );
    const path = '/agent/tasks/acme-log-1';
    expect((await call(event('GET', path, '', agent.signHeaders('GET', path, '')))).status).toBe(200);

    const lines = logs.lines();
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'info', msg: 'enrollment code issued', site: 'acme' }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'info', msg: 'agent enrolled', agentId, site: 'acme' }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'debug',
        msg: 'request',
        method: 'GET',
        path,
        agentId,
        site: 'acme',
        taskId: 'acme-log-1',
        status: 200,
        requestId: context.awsRequestId,
      }),
    );
    expect(logs.text()).not.toContain(code);
    expect(logs.text()).not.toContain(adminToken);
    expect(logs.text()).not.toContain(identity.keyPem.split('\n')[1]!);
  });

  it('logs a 500 at error with its stack (and no longer as a bare console line)', async () => {
    const logs = captureLogs('info');
    const registry = {
      list: async () => {
        throw new Error('DynamoDB is on fire');
      },
    } as unknown as AgentRegistry;
    const handler = agentApiHandler(() => ({
      service: rt.service,
      tasks: rt.store.tasks,
      registry,
      clock: rt.clock,
      adminToken: async () => adminToken,
      heartbeatSeconds: 600,
      logger: logs.logger,
    }));
    const r = (await handler(admin('GET', '/admin/agents'), context)) as HttpApiResult;
    expect(r.statusCode).toBe(500);
    const [line] = logs.lines();
    expect(line).toMatchObject({
      level: 'error',
      msg: 'request failed',
      method: 'GET',
      path: '/admin/agents',
      status: 500,
      requestId: context.awsRequestId,
      err: { message: 'DynamoDB is on fire' },
    });
    expect(String((line!.err as { stack: string }).stack)).toMatch(/DynamoDB is on fire\n\s+at /);
    expect(logs.text()).not.toContain(adminToken);
  });
});

describe('ODT_LOG_LEVEL', () => {
  const env = {
    TABLE_NAME: 'odt',
    STATE_MACHINE_ARN: 'arn:aws:states:eu-west-1:123456789012:stateMachine:Sneakernet-transfer',
  };

  it('sets the functions’ level (default info), and a bad one fails the cold start naming it', () => {
    expect(parseConfig(env).logLevel).toBe('info');
    expect(parseConfig({ ...env, ODT_LOG_LEVEL: 'DEBUG' }).logLevel).toBe('debug');
    expect(() => parseConfig({ ...env, ODT_LOG_LEVEL: 'loud' })).toThrow(ConfigError);
    expect(() => parseConfig({ ...env, ODT_LOG_LEVEL: 'loud' })).toThrow(
      /ODT_LOG_LEVEL is invalid \(use one of fatal, error, warn, info, debug, trace, silent\)/,
    );
  });
});
