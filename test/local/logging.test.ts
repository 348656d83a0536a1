/**
 * Issue #23, point 5: structured logs. `odt serve` and `odt agent run` write JSON lines (level,
 * time, msg, the transfer, task and agent ids) on stderr at --log-level / ODT_LOG_LEVEL; a bad level
 * is refused by name; every 500 of the agent and admin APIs is logged with its stack; and the
 * secrets in play (admin token, enrollment code, Slack tokens and signing secret, vCenter password)
 * never appear in what the processes write.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadAgentIdentity } from '../../agent/identity/agent-identity.ts';
import { NotFoundError, systemClock, type TransferService } from '../../core/index.ts';
import type { AgentRegistry } from '../../core/ports/agents.ts';
import { startControlApi } from '../../local/control-api.ts';
import { startAgentApi } from '../../shared/agent-api.ts';
import { defaultScopes, type FakeSlackApi, startFakeSlackApi } from '../peers/slack/fake-slack-api.ts';
import { type FakeSocketMode, startFakeSocketMode } from '../peers/slack/fake-socket-mode.ts';
import { odt, repoRoot } from '../support/cli.ts';
import { answerKeyTaskOverApi } from '../support/fake-node.ts';
import { captureLogs, jsonLines, type LogLine } from '../support/logs.ts';
import { nodeCertificate } from '../support/node-cert.ts';
import { serveAdmin, until as untilSettled } from '../support/serve-process.ts';
import { writeTransferRequest } from '../support/transfer-request.ts';
import { until as untilTruthy } from '../support/until.ts';

interface Proc {
  readonly child: ChildProcess;
  out(): string;
  err(): string;
  readonly exited: Promise<number | null>;
}

/** `odt …` as its own process, with none of this process's ODT_ / SLACK_ variables. */
function startOdt(args: readonly string[], env: Record<string, string> = {}): Proc {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('ODT_') && !k.startsWith('SLACK_')),
  );
  const child = spawn(process.execPath, [join(repoRoot, 'bin/odt.mjs'), ...args], {
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const text = { out: '', err: '' };
  child.stdout!.on('data', (c) => {
    text.out += String(c);
  });
  child.stderr!.on('data', (c) => {
    text.err += String(c);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out: () => text.out, err: () => text.err, exited };
}

/** Waits on the processes' output: 30 s by default, every 25 ms. */
const until = <T>(
  f: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  ms = 30_000,
) => untilTruthy(f, what, ms, 25);

/** Starts `odt serve` in `dir`; resolves once it printed its API line. */
async function startServe(dir: string, flags: readonly string[], env: Record<string, string> = {}) {
  const serve = startOdt(
    ['serve', '--state-dir', dir, '--port', '0', '--agent-port', '0', '--approvers', 'bob', ...flags],
    env,
  );
  await Promise.race([
    until(() => /API http:/.test(serve.out()), 'odt serve to start'),
    serve.exited.then((code) => {
      throw new Error(`odt serve exited ${code}: ${serve.err()}`);
    }),
  ]);
  return serve;
}

/** SIGTERM, as a service manager stops it; SIGKILL if it has not exited 10 s later. */
async function stop(p: Proc): Promise<number | null> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
  const late = setTimeout(() => p.child.kill('SIGKILL'), 10_000);
  try {
    return await p.exited;
  } finally {
    clearTimeout(late);
  }
}

const requestFile = (dir: string): Promise<string> =>
  writeTransferRequest(join(dir, 'request.json'), {
    kind: 'vm',
    source: 'web-01',
    target: { vdc: 'acme-vdc' },
  });

const levels = 'fatal, error, warn, info, debug, trace, silent';
const isoTime = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

let dirs: string[] = [];
const tempDir = async (name: string) => {
  const d = await mkdtemp(join(tmpdir(), name));
  dirs.push(d);
  return d;
};
let procs: Proc[] = [];
afterEach(async () => {
  await Promise.all(procs.map(stop));
  procs = [];
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  dirs = [];
});

describe('odt serve --log-level debug', () => {
  it('writes JSON lines with level, time and msg, and the transfer id on the lines of a transfer it runs', async () => {
    const dir = await tempDir('odt-log-serve-');
    const serve = await startServe(dir, ['--log-level', 'debug']);
    procs.push(serve);
    const requested = await odt([
      'transfer',
      'request',
      '--file',
      await requestFile(dir),
      '--state-dir',
      dir,
    ]);
    expect(requested.code).toBe(0);
    const id = requested.out.trim();
    await odt(['transfer', 'approve', id, '--as', 'bob', '--state-dir', dir]);
    await until(
      // Approved: the workflow asks the ODT node for the transfer's key (#18).
      () => jsonLines(serve.err()).some((l) => l.transferId === id && l.kind === 'make-key'),
      'the lines of the transfer',
    );
    await until(() => serve.err().includes('/approve'), 'the approval request line');

    // Every line is JSON, with a level, an ISO time and a message.
    const lines = jsonLines(serve.err());
    for (const line of lines) {
      expect(line).toMatchObject({ level: expect.any(String), time: expect.stringMatching(isoTime) });
      expect(typeof line.msg).toBe('string');
    }
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'info', process: 'serve', msg: 'control plane started' }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'debug', transferId: id, action: 'validate', msg: 'workflow step' }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'debug', transferId: id, wait: 'approval', msg: 'workflow wait' }),
    );
    // The admin API's request for the transfer, named by its id.
    expect(lines).toContainEqual(
      expect.objectContaining({
        method: 'POST',
        path: `/transfers/${id}/approve`,
        transferId: id,
        status: 200,
        msg: 'request',
      }),
    );
    // stdout keeps the one line a person reads.
    expect(serve.out()).toMatch(/^odt serve: API http:/);
  }, 60_000);

  it('logs at info by default: no debug lines', async () => {
    const dir = await tempDir('odt-log-info-');
    const serve = await startServe(dir, []);
    procs.push(serve);
    await until(() => serve.err().includes('control plane started'), 'the start line');
    expect(jsonLines(serve.err()).map((l) => l.level)).not.toContain('debug');
  }, 60_000);
});

describe('a bad log level', () => {
  it('is refused in one line naming --log-level or ODT_LOG_LEVEL and the levels', async () => {
    const dir = await tempDir('odt-log-bad-');
    const flag = await odt(['serve', '--log-level', 'loud', '--approvers', 'bob', '--state-dir', dir]);
    expect(flag.code).toBe(2);
    expect(flag.err.trim().split('\n')).toHaveLength(1);
    expect(flag.err).toContain(`--log-level: 'loud' is not a log level; use one of ${levels}`);

    const env = await odt(['serve', '--approvers', 'bob', '--state-dir', dir], { ODT_LOG_LEVEL: 'chatty' });
    expect(env.code).toBe(2);
    expect(env.err.trim().split('\n')).toHaveLength(1);
    expect(env.err).toContain(`ODT_LOG_LEVEL: 'chatty' is not a log level; use one of ${levels}`);

    const agent = await odt(['agent', 'run', '--log-level', 'verbose']);
    expect(agent.code).toBe(2);
    expect(agent.err).toContain(`--log-level: 'verbose' is not a log level; use one of ${levels}`);
  });
});

describe('the agent API and the admin API', () => {
  const token = 'admin-token-that-must-not-be-logged';
  const failingRegistry = {
    list: async () => {
      throw new Error('the registry is on fire');
    },
  } as unknown as AgentRegistry;

  it('log a 500 of the agent API at error with its stack, method and path; never the headers', async () => {
    const logs = captureLogs('info');
    const api = await startAgentApi({
      service: {} as TransferService,
      tasks: {} as never,
      registry: failingRegistry,
      adminToken: token,
      clock: systemClock,
      logger: logs.logger,
    });
    try {
      const res = await fetch(`${api.url}/admin/agents?site=acme`, {
        headers: { authorization: `Bearer ${token}`, cookie: 'session=cookie-value-not-logged' },
      });
      expect(res.status).toBe(500);
      const wrong = await fetch(`${api.url}/admin/agents`, { headers: { authorization: 'Bearer nope' } });
      expect(wrong.status).toBe(401);
    } finally {
      await api.close();
    }
    const [failed] = logs.lines().filter((l) => l.level === 'error');
    expect(failed).toMatchObject({
      msg: 'request failed',
      method: 'GET',
      path: '/admin/agents',
      status: 500,
      code: 'INTERNAL',
      err: { message: 'the registry is on fire' },
    });
    expect(String((failed!.err as { stack: string }).stack)).toMatch(/the registry is on fire\n\s+at /);
    // A refusal: at warn, without a stack.
    const refused = logs.lines().find((l) => l.status === 401) as LogLine;
    expect(refused).toMatchObject({ level: 'warn', msg: 'request refused', code: 'UNAUTHORIZED' });
    expect(refused.err).toBeUndefined();
    expect(logs.text()).not.toContain(token);
    expect(logs.text()).not.toContain('cookie-value-not-logged');
    expect(logs.text()).not.toContain('site=acme');
  });

  it('log a 500 of the admin API at error with its stack; a 404 at info with the transfer id', async () => {
    const logs = captureLogs('info');
    const service = {
      list: async () => {
        throw new TypeError('the store is on fire');
      },
      get: async (id: string) => {
        throw new NotFoundError('transfer', id);
      },
    } as unknown as TransferService;
    const api = await startControlApi({ service, adminToken: token, logger: logs.logger });
    const headers = { authorization: `Bearer ${token}` };
    try {
      expect((await fetch(`${api.url}/transfers`, { headers })).status).toBe(500);
      expect((await fetch(`${api.url}/transfers/tr-missing`, { headers })).status).toBe(404);
    } finally {
      await api.close();
    }
    const failed = logs.lines().find((l) => l.status === 500) as LogLine;
    expect(failed).toMatchObject({
      level: 'error',
      method: 'GET',
      path: '/transfers',
      err: { type: 'TypeError' },
    });
    expect(String((failed.err as { stack: string }).stack)).toMatch(/the store is on fire\n\s+at /);
    const missing = logs.lines().find((l) => l.status === 404) as LogLine;
    expect(missing).toMatchObject({ level: 'info', transferId: 'tr-missing', code: 'NOT_FOUND' });
    expect(missing.err).toBeUndefined();
    expect(logs.text()).not.toContain(token);
  });
});

/**
 * A vCenter that answers RetrieveServiceContent, and refuses every Login with a fault that repeats
 * the password it was sent (so that the password reaches the agent's error messages).
 */
async function startEchoingVcenter(): Promise<{ url: string; passwords: string[]; close(): Promise<void> }> {
  const passwords: string[] = [];
  const envelope = (body: string) =>
    `<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>${body}</soapenv:Body></soapenv:Envelope>`;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += String(c);
    });
    req.on('end', () => {
      const method = /<soapenv:Body><(\w+)/.exec(body)?.[1];
      res.setHeader('Content-Type', 'text/xml');
      if (method === 'RetrieveServiceContent') {
        res.end(
          envelope(
            '<RetrieveServiceContentResponse xmlns="urn:vim25"><returnval><rootFolder type="Folder">group-d1</rootFolder><propertyCollector type="PropertyCollector">propertyCollector</propertyCollector><viewManager type="ViewManager">ViewManager</viewManager><about><fullName>Echoing vCenter</fullName><apiType>VirtualCenter</apiType><apiVersion>8.0.2.0</apiVersion></about><sessionManager type="SessionManager">SessionManager</sessionManager><searchIndex type="SearchIndex">SearchIndex</searchIndex><ovfManager type="OvfManager">OvfManager</ovfManager></returnval></RetrieveServiceContentResponse>',
          ),
        );
        return;
      }
      const password = /<password>([^<]*)<\/password>/.exec(body)?.[1] ?? '';
      passwords.push(password);
      res.statusCode = 500;
      res.end(
        envelope(
          `<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Cannot complete login due to an incorrect user name or password (${password})</faultstring><detail><InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin"></InvalidLoginFault></detail></soapenv:Fault>`,
        ),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    passwords,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('secrets in play never reach the logs', () => {
  const botToken = 'xoxb-1111-2222-LOGSECRETbot';
  const appToken = 'xapp-1-A0LOG-3333-LOGSECRETapp';
  const signingSecret = '8f14e45fceea167a5a36dedd4bea2543';
  const vcenterPassword = 'Vc3nter-LOGSECRET-pw';
  let api: FakeSlackApi;
  let socket: FakeSocketMode;
  let vcenter: Awaited<ReturnType<typeof startEchoingVcenter>>;

  beforeAll(async () => {
    api = await startFakeSlackApi({ tokens: { [botToken]: defaultScopes } });
    socket = await startFakeSocketMode({ api, appTokens: [appToken] });
    vcenter = await startEchoingVcenter();
  });
  afterAll(async () => {
    await socket?.close();
    await api?.close();
    await vcenter?.close();
  });

  it('admin token, enrollment code, Slack tokens, signing secret and vCenter password: none in any output, at trace', async () => {
    const dir = await tempDir('odt-log-secrets-');
    const serve = await startServe(dir, [], {
      ODT_LOG_LEVEL: 'trace',
      SLACK_BOT_TOKEN: botToken,
      SLACK_APP_TOKEN: appToken,
      SLACK_SIGNING_SECRET: signingSecret,
      SLACK_API_URL: socket.url,
      ODT_APPROVERS_CHANNEL: 'CAPPROVERS',
    });
    procs.push(serve);
    expect(serve.out()).toContain('Slack connected (Socket Mode)');
    const adminToken = (await readFile(join(dir, 'admin-token'), 'utf8')).trim();
    const { agentUrl } = JSON.parse(await readFile(join(dir, 'serve.json'), 'utf8')) as { agentUrl: string };

    // A transfer up to its export task, through the admin API (the admin token in every call).
    const cli = (...args: string[]) => odt([...args, '--state-dir', dir]);
    const id = (await cli('transfer', 'request', '--file', await requestFile(dir))).out.trim();
    await cli('transfer', 'approve', id, '--as', 'bob');
    // The ODT node's key for the transfer, signed by the node the export agent pins (#18): this
    // test runs no node, so its key task is answered over the admin API.
    const work = await tempDir('odt-log-agent-');
    const nodeCert = await nodeCertificate(join(work, 'node-agent'));
    const node = await loadAgentIdentity(join(work, 'node-agent'));
    const admin = serveAdmin(dir);
    await untilSettled('the make-key task', async () =>
      answerKeyTaskOverApi(
        admin.api,
        (await admin.show(id)).providerSite,
        await admin.show(id),
        'node-1',
        node,
      ),
    );
    await cli('transfer', 'event', id, 'appliance-sent', '--as', 'bob');
    await cli('transfer', 'event', id, 'appliance-connected', '--as', 'alice');

    // An enrollment code from the agent API's admin route, spent by an export agent whose vCenter
    // repeats the password in its login fault.
    const issued = await fetch(`${agentUrl}/admin/enrollments`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ site: 'acme', ttl: '15m' }),
    });
    const { code } = (await issued.json()) as { code: string };
    const agent = startOdt(
      [
        'agent',
        'run',
        '--server',
        agentUrl,
        '--role',
        'export',
        '--dir',
        join(work, 'agent'),
        '--code',
        code,
        '--site',
        'acme',
        '--vcenter',
        vcenter.url,
        '--username',
        'administrator@vsphere.local',
        '--nas',
        join(work, 'nas'),
        '--node-cert',
        nodeCert,
        '--poll-max',
        '1s',
        '--log-level',
        'trace',
      ],
      { ODT_VCENTER_PASSWORD: vcenterPassword },
    );
    procs.push(agent);
    await until(
      () => jsonLines(agent.err()).some((l) => l.msg === 'task failed'),
      `the agent's failed task (agent: ${agent.err()})`,
    );
    await stop(agent);
    await until(
      () => jsonLines(serve.err()).some((l) => l.transferId === id && l.msg === 'request' && l.agentId),
      "the agent's requests in the serve log",
    );
    await stop(serve);

    // Each secret was in play…
    expect(vcenter.passwords).toContain(vcenterPassword);
    expect(api.calls.some((c) => c.token === botToken)).toBe(true);
    const agentLines = jsonLines(agent.err());
    expect(agentLines).toContainEqual(expect.objectContaining({ msg: 'enrolled', site: 'acme' }));
    // …and reached an error message, which the log line carries masked.
    const failed = agentLines.find((l) => l.msg === 'task failed')!;
    expect(failed).toMatchObject({
      level: 'warn',
      code: 'VIM_FAULT',
      taskId: `${id}-export-1`,
      transferId: id,
    });
    expect(String(failed.reason)).toContain('incorrect user name or password ([redacted])');
    expect(agentLines).toContainEqual(expect.objectContaining({ msg: 'inventory report failed' }));
    const serveLines = jsonLines(serve.err());
    expect(serveLines).toContainEqual(
      expect.objectContaining({ msg: 'enrollment code issued', site: 'acme' }),
    );
    expect(serveLines).toContainEqual(expect.objectContaining({ msg: 'agent enrolled', site: 'acme' }));

    // …and none of them is anywhere in what either process wrote.
    const everything = serve.out() + serve.err() + agent.out() + agent.err();
    for (const secret of [adminToken, code, botToken, appToken, signingSecret, vcenterPassword]) {
      expect(everything, `a secret (${secret.slice(0, 6)}…) was logged`).not.toContain(secret);
    }
  }, 90_000);
});
