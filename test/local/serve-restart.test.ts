import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskRecord } from '../../core/index.ts';
import { answerKeyTaskOverApi } from '../support/fake-node.ts';
import { happyPath } from '../support/happy-path.ts';
import { type ServeProcess, serveAdmin, startServe, until } from '../support/serve-process.ts';
import { writeTransferRequest } from '../support/transfer-request.ts';

// Issue 5: `kill -9` of odt serve while a transfer waits for approval, while an export task is
// claimed and heartbeating, and while the NAS is in the mail; each continues after a restart.

let dir: string;
let serve: ServeProcess | undefined;
let request: string;

async function kill9(): Promise<void> {
  const s = serve!;
  serve = undefined;
  s.child.kill('SIGKILL');
  await s.exited;
}

const restart = async () => {
  serve = await startServe(dir);
};

describe('odt serve survives kill -9', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'odt-serve-'));
    request = await writeTransferRequest(join(dir, 'request.json'));
  });
  afterAll(async () => {
    if (serve) await kill9();
    await rm(dir, { recursive: true, force: true });
  });

  it('resumes at the approval wait, at a claimed export task, and with the NAS in the mail', async () => {
    const { cli, api, show } = serveAdmin(dir);
    await restart();
    const requested = await cli('transfer', 'request', '--file', request);
    // No agent is enrolled here: the request warns of it and is accepted (issue 22).
    expect(requested.code).toBe(0);
    expect(requested.err).toContain('no export agent has enrolled for site acme');
    const id = requested.out.trim();
    await until('requested', async () => (await show(id)).phase === 'requested');
    await new Promise((r) => setTimeout(r, 200)); // the workflow reaches AwaitApproval

    // 1. Killed while waiting for approval.
    await kill9();
    await restart();
    const approved = await cli('transfer', 'approve', id, '--as', 'bob');
    expect(approved.err).toBe('');
    // The ODT node's key for the transfer (#18), answered over the admin API as the tasks below.
    await until('the make-key task', async () => answerKeyTaskOverApi(api, 'cloud', await show(id)));
    await cli('transfer', 'event', id, 'appliance-sent', '--as', 'bob');
    await cli('transfer', 'event', id, 'appliance-connected', '--as', 'alice');
    const task = await until(
      'the export task',
      async () => (await api<TaskRecord[]>('GET', '/tasks?site=acme'))[0],
    );
    await api('POST', `/tasks/${task.id}/claim`, { site: 'acme', agent: 'agent-1' });
    await api('POST', `/tasks/${task.id}/heartbeat`, {
      agent: 'agent-1',
      progress: [{ itemId: 'item-1', bytesDone: 5 }],
    });

    // 2. Killed while the export task is claimed and heartbeating.
    await kill9();
    await restart();
    await api('POST', `/tasks/${task.id}/heartbeat`, {
      agent: 'agent-1',
      progress: [{ itemId: 'item-1', bytesDone: 9 }],
    });
    expect(await api<TaskRecord[]>('GET', '/tasks?site=acme')).toEqual([]); // still held, not queued twice
    await api('POST', `/tasks/${task.id}/complete`, {
      agent: 'agent-1',
      outcomes: [{ itemId: 'item-1', ok: true, bytes: 100 }],
    });
    await until('exported', async () => (await show(id)).phase === 'exported');
    await cli('transfer', 'event', id, 'shipped', '--carrier', 'DHL', '--tracking', 'JD01', '--as', 'alice');
    await new Promise((r) => setTimeout(r, 200)); // the workflow reaches AwaitReceived

    // 3. Killed while the NAS is in the mail.
    await kill9();
    await restart();
    await cli('transfer', 'event', id, 'received', '--as', 'bob');
    const imp = await until(
      'the import task',
      async () => (await api<TaskRecord[]>('GET', '/tasks?site=cloud'))[0],
    );
    expect(imp.kind).toBe('import');
    await api('POST', `/tasks/${imp.id}/claim`, { site: 'cloud', agent: 'node-1' });
    await api('POST', `/tasks/${imp.id}/complete`, {
      agent: 'node-1',
      outcomes: [{ itemId: 'item-1', ok: true, state: 'powered-on' }],
    });
    await until('completed', async () => (await show(id)).phase === 'completed');

    const t = await show(id);
    // Nothing lost or repeated: each phase once, in order.
    expect(t.history.map((h) => h.phase)).toEqual(happyPath);
    expect(t.items[0]!.result.state).toBe('powered-on');
  });

  it('the admin CLI says when odt serve is not running', async () => {
    const { cli } = serveAdmin(dir);
    if (serve) await kill9();
    const r = await cli('transfer', 'list');
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/does not answer|start `odt serve/);
  });
});
