import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServeProcess, serveAdmin, startServe, until } from '../support/serve-process.ts';
import { writeTransferRequest } from '../support/transfer-request.ts';

// Issue 22, "Signals": SIGINT (Ctrl-C in a terminal) ends `odt serve` as SIGTERM does
// (test/local/serve-sigterm.test.ts): within seconds while a transfer waits, and the next start
// resumes it. Before, only a second signal ended it.

let dir: string;
let serve: ServeProcess | undefined;

describe('odt serve stops on SIGINT', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'odt-serve-int-'));
  });
  afterAll(async () => {
    serve?.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('within 5 s while a transfer waits for approval; the next start resumes it', async () => {
    const { cli, show } = serveAdmin(dir);
    serve = await startServe(dir);
    const requested = await cli(
      'transfer',
      'request',
      '--file',
      await writeTransferRequest(join(dir, 'r.json')),
    );
    expect(requested.code, requested.err).toBe(0);
    const id = requested.out.trim();
    // The workflow waits for approval once the approval message went out (events.log).
    await until('the approval wait', async () =>
      (await readFile(join(dir, 'events.log'), 'utf8')).includes(id),
    );

    const s = serve;
    serve = undefined;
    const started = Date.now();
    s.child.kill('SIGINT');
    const code = await Promise.race([
      s.exited,
      new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000)),
    ]);
    if (code === 'hung') s.child.kill('SIGKILL');
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(s.out()).toMatch(/stopped; open transfers resume at the next start/);

    serve = await startServe(dir);
    expect(serve.out()).toMatch(/resumed 1 open transfer/);
    expect((await cli('transfer', 'approve', id, '--as', 'bob')).code).toBe(0);
    await until('approved', async () => (await show(id)).history.some((h) => h.phase === 'approved'));
  });
});
