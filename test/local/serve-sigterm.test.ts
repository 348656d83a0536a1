import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskRecord } from '../../core/index.ts';
import { answerKeyTaskOverApi } from '../support/fake-node.ts';
import { type ServeProcess, serveAdmin, startServe, until } from '../support/serve-process.ts';
import { writeTransferRequest } from '../support/transfer-request.ts';

// Issue 23, point 3 (and the hang of issue 22): `odt serve` ends within seconds of SIGTERM while
// transfers wait (for approval, on a claimed agent task), printing that they resume; the next
// start resumes them and the transfer finishes. Before, the workflow interpreter's timer of each
// waiting task (TimeoutSeconds: up to 21 days) kept the process running.

let dir: string;
let serve: ServeProcess | undefined;
let request: string;

/** SIGTERM, and how long odt serve took to exit (ms), with what it printed. */
async function sigterm(): Promise<{ ms: number; code: number | null; out: string }> {
  const s = serve!;
  serve = undefined;
  const started = Date.now();
  s.child.kill('SIGTERM');
  const code = await Promise.race([
    s.exited,
    new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000)),
  ]);
  if (code === 'hung') {
    s.child.kill('SIGKILL');
    return { ms: Number.POSITIVE_INFINITY, code: null, out: s.out() };
  }
  return { ms: Date.now() - started, code, out: s.out() };
}

describe('odt serve stops on SIGTERM', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'odt-serve-term-'));
    request = await writeTransferRequest(join(dir, 'request.json'));
  });
  afterAll(async () => {
    if (serve) serve.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('within 5 s while a transfer waits for approval, while an agent task is claimed and while the NAS is shipped; the next start finishes it', async () => {
    const { cli, api, show } = serveAdmin(dir);
    serve = await startServe(dir);
    const requested = await cli('transfer', 'request', '--file', request);
    // No agent is enrolled here: the request warns of it and is accepted (issue 22).
    expect(requested.code).toBe(0);
    expect(requested.err).toContain('no export agent has enrolled for site acme');
    const id = requested.out.trim();
    // The workflow waits for approval once the approval message went out (events.log).
    await until('the approval wait', async () =>
      (await readFile(join(dir, 'events.log'), 'utf8')).includes(id),
    );
    await new Promise((r) => setTimeout(r, 200));

    // 1. SIGTERM while the transfer waits for approval (a 14-day callback timeout).
    const first = await sigterm();
    expect(first.ms).toBeLessThan(5_000);
    expect(first.code).toBe(0);
    expect(first.out).toMatch(/stopped; open transfers resume at the next start/);

    serve = await startServe(dir);
    expect(serve!.out()).toMatch(/resumed 1 open transfer/);
    expect((await cli('transfer', 'approve', id, '--as', 'bob')).err).toBe('');
    // The ODT node's key for the transfer (#18), answered over the admin API as the tasks below.
    await until('the make-key task', async () => answerKeyTaskOverApi(api, 'cloud', await show(id)));
    await cli('transfer', 'event', id, 'appliance-sent', '--as', 'bob');
    await cli('transfer', 'event', id, 'appliance-connected', '--as', 'alice');
    const task = await until(
      'the export task',
      async () => (await api<TaskRecord[]>('GET', '/tasks?site=acme'))[0],
    );
    await api('POST', `/tasks/${task.id}/claim`, { site: 'acme', agent: 'agent-1' });

    // 2. SIGTERM while the export task is claimed (heartbeat and 7-day timers).
    const second = await sigterm();
    expect(second.ms).toBeLessThan(5_000);
    expect(second.code).toBe(0);

    serve = await startServe(dir);
    await api('POST', `/tasks/${task.id}/complete`, {
      agent: 'agent-1',
      outcomes: [{ itemId: 'item-1', ok: true, bytes: 100 }],
    });
    await until('exported', async () => (await show(id)).phase === 'exported');
    await cli('transfer', 'event', id, 'shipped', '--carrier', 'DHL', '--tracking', 'JD01', '--as', 'alice');
    // The workflow waits for the NAS to arrive once shipped is told (events.log).
    await until('the shipping wait', async () =>
      (await readFile(join(dir, 'events.log'), 'utf8'))
        .split('\n')
        .some((l) => l.includes(id) && l.includes('shipped')),
    );
    await new Promise((r) => setTimeout(r, 200));

    // 3. SIGTERM while the NAS is in the mail (a 21-day callback timeout).
    const shipping = await sigterm();
    expect(shipping.ms).toBeLessThan(5_000);
    expect(shipping.code).toBe(0);

    serve = await startServe(dir);
    expect(serve!.out()).toMatch(/resumed 1 open transfer/);
    await cli('transfer', 'event', id, 'received', '--as', 'bob');
    const imp = await until(
      'the import task',
      async () => (await api<TaskRecord[]>('GET', '/tasks?site=cloud'))[0],
    );
    await api('POST', `/tasks/${imp.id}/claim`, { site: 'cloud', agent: 'node-1' });
    await api('POST', `/tasks/${imp.id}/complete`, {
      agent: 'node-1',
      outcomes: [{ itemId: 'item-1', ok: true, state: 'powered-on' }],
    });
    await until('completed', async () => (await show(id)).phase === 'completed');
    const third = await sigterm();
    expect(third.ms).toBeLessThan(5_000);
  });
});
