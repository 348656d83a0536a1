import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskRecord, Transfer } from '../../core/index.ts';
import { odt, repoRoot } from '../support/cli.ts';
import { happyPath } from '../support/happy-path.ts';

// Issue 5: `kill -9` of odt serve while a transfer waits for approval, while an export task is
// claimed and heartbeating, and while the NAS is in the mail; each continues after a restart.

let dir: string;
let serve: ChildProcess | undefined;

async function startServe(): Promise<string> {
  const child = spawn(
    process.execPath,
    [join(repoRoot, 'bin/odt.mjs'), 'serve', '--state-dir', dir, '--port', '0', '--approvers', 'bob'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  serve = child;
  let out = '';
  let err = '';
  child.stderr!.on('data', (c) => {
    err += String(c);
  });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (c) => {
      out += String(c);
      const m = /API (http:\/\/[^\s,]+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`odt serve exited ${code}: ${err}`)));
  });
}

function kill9(): Promise<void> {
  const child = serve!;
  serve = undefined;
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

const cli = (...args: string[]) => odt([...args, '--state-dir', dir]);

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const { url } = JSON.parse(await readFile(join(dir, 'serve.json'), 'utf8')) as { url: string };
  const token = (await readFile(join(dir, 'admin-token'), 'utf8')).trim();
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const json = (await res.json()) as T & { error?: string };
  if (!res.ok) throw new Error(json.error);
  return json;
}

async function until<T>(f: () => Promise<T | undefined | false>, what: string): Promise<T> {
  for (let i = 0; i < 500; i++) {
    const v = await f().catch(() => undefined);
    if (v) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const show = async (id: string) => JSON.parse((await cli('transfer', 'show', id, '--json')).out) as Transfer;

describe('odt serve survives kill -9', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'odt-serve-'));
    await writeFile(
      join(dir, 'request.json'),
      JSON.stringify({
        site: 'acme',
        providerSite: 'cloud',
        requester: 'alice',
        items: [{ kind: 'vm', source: 'web-01', target: { vdc: 'v' } }],
      }),
    );
  });
  afterAll(async () => {
    if (serve) await kill9();
    await rm(dir, { recursive: true, force: true });
  });

  it('resumes at the approval wait, at a claimed export task, and with the NAS in the mail', async () => {
    await startServe();
    const requested = await cli('transfer', 'request', '--file', join(dir, 'request.json'));
    expect(requested.err).toBe('');
    const id = requested.out.trim();
    await until(async () => (await show(id)).phase === 'requested', 'requested');
    await new Promise((r) => setTimeout(r, 200)); // the workflow reaches AwaitApproval

    // 1. Killed while waiting for approval.
    await kill9();
    await startServe();
    const approved = await cli('transfer', 'approve', id, '--as', 'bob');
    expect(approved.err).toBe('');
    await cli('transfer', 'event', id, 'appliance-sent', '--as', 'bob');
    await cli('transfer', 'event', id, 'appliance-connected', '--as', 'alice');
    const task = await until(
      async () => (await api<TaskRecord[]>('GET', '/tasks?site=acme'))[0],
      'the export task',
    );
    await api('POST', `/tasks/${task.id}/claim`, { site: 'acme', agent: 'agent-1' });
    await api('POST', `/tasks/${task.id}/heartbeat`, {
      agent: 'agent-1',
      progress: [{ itemId: 'item-1', bytesDone: 5 }],
    });

    // 2. Killed while the export task is claimed and heartbeating.
    await kill9();
    await startServe();
    await api('POST', `/tasks/${task.id}/heartbeat`, {
      agent: 'agent-1',
      progress: [{ itemId: 'item-1', bytesDone: 9 }],
    });
    expect(await api<TaskRecord[]>('GET', '/tasks?site=acme')).toEqual([]); // still held, not queued twice
    await api('POST', `/tasks/${task.id}/complete`, {
      agent: 'agent-1',
      outcomes: [{ itemId: 'item-1', ok: true, bytes: 100 }],
    });
    await until(async () => (await show(id)).phase === 'exported', 'exported');
    await cli('transfer', 'event', id, 'shipped', '--carrier', 'DHL', '--tracking', 'JD01', '--as', 'alice');
    await new Promise((r) => setTimeout(r, 200)); // the workflow reaches AwaitReceived

    // 3. Killed while the NAS is in the mail.
    await kill9();
    await startServe();
    await cli('transfer', 'event', id, 'received', '--as', 'bob');
    const imp = await until(
      async () => (await api<TaskRecord[]>('GET', '/tasks?site=cloud'))[0],
      'the import task',
    );
    expect(imp.kind).toBe('import');
    await api('POST', `/tasks/${imp.id}/claim`, { site: 'cloud', agent: 'node-1' });
    await api('POST', `/tasks/${imp.id}/complete`, {
      agent: 'node-1',
      outcomes: [{ itemId: 'item-1', ok: true, state: 'powered-on' }],
    });
    await until(async () => (await show(id)).phase === 'completed', 'completed');

    const t = await show(id);
    // Nothing lost or repeated: each phase once, in order.
    expect(t.history.map((h) => h.phase)).toEqual(happyPath);
    expect(t.items[0]!.result.state).toBe('powered-on');
  });

  it('the admin CLI says when odt serve is not running', async () => {
    if (serve) await kill9();
    const r = await cli('transfer', 'list');
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/does not answer|start `odt serve/);
  });
});
