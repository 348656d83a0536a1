import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { odt } from '../support/cli.ts';
import { answerKeyTaskOverApi } from '../support/fake-node.ts';
import { runOdtProcess, type ServeProcess, serveAdmin, startServe, until } from '../support/serve-process.ts';
import { writeTransferRequest } from '../support/transfer-request.ts';

// Issue 22: odt serve run as a service — one writer per state folder, ports and flags that say
// what is wrong in one line, registry commands that never create a state folder of their own.

let work: string;
const serves: ServeProcess[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'odt-serve-ops-'));
});
afterEach(async () => {
  for (const s of serves.splice(0)) {
    s.child.kill('SIGTERM');
    await s.exited;
  }
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A TCP port held by this process until `close`. */
async function busyPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, server };
}

const serveArgs = (dir: string, ...flags: string[]) => [
  'serve',
  '--state-dir',
  dir,
  '--approvers',
  'bob',
  ...(flags.includes('--port') ? [] : ['--port', '0']),
  ...(flags.includes('--agent-port') ? [] : ['--agent-port', '0']),
  ...flags,
];

/** One line on stderr, and no stack trace. */
function expectOneLine(err: string): void {
  expect(err.trim().split('\n')).toHaveLength(1);
  expect(err).not.toMatch(/\n\s+at /);
}

describe('one writer per state folder', () => {
  it('a second odt serve on the same --state-dir exits non-zero naming the pid that holds it', async () => {
    const dir = join(work, 'one-writer');
    const first = await startServe(dir);
    serves.push(first);
    const second = await runOdtProcess(serveArgs(dir));
    expect(second.code).toBe(7);
    expect(second.err).toContain(`in use by odt serve pid ${first.child.pid}`);
    expect(second.err).toContain('[STATE_LOCKED]');
    expectOneLine(second.err);
    // The first one's serve.json is still its own.
    const serveJson = JSON.parse(await readFile(join(dir, 'serve.json'), 'utf8')) as { pid: number };
    expect(serveJson.pid).toBe(first.child.pid);
  }, 60_000);

  it('takes over the lock of a serve that is gone (kill -9) and releases its own at a clean stop', async () => {
    const dir = join(work, 'stale');
    await mkdir(dir, { recursive: true });
    // A pid that existed and has ended.
    const gone = spawnSync(process.execPath, ['-e', '']).pid;
    await writeFile(
      join(dir, 'serve.lock'),
      `${JSON.stringify({ pid: gone, host: (await import('node:os')).hostname(), since: '2026-01-01T00:00:00Z' })}\n`,
    );
    const serve = await startServe(dir);
    const lock = JSON.parse(await readFile(join(dir, 'serve.lock'), 'utf8')) as { pid: number };
    expect(lock.pid).toBe(serve.child.pid);
    serve.child.kill('SIGTERM');
    expect(await serve.exited).toBe(0);
    expect(existsSync(join(dir, 'serve.lock'))).toBe(false);
  }, 60_000);
});

describe('ports and flags', () => {
  it('a busy --port or --agent-port is one line naming the flag, before any transfer resumes', async () => {
    const { port, server } = await busyPort();
    try {
      for (const flag of ['--port', '--agent-port']) {
        const r = await odt(serveArgs(join(work, `busy${flag}`), flag, String(port)));
        expect(r.code, flag).toBe(2);
        expect(r.err).toContain(`${flag} ${port}: port ${port} of the`);
        expect(r.err).toContain('is in use');
        expectOneLine(r.err);
        // The lock went with the failed start: the folder can be served at once.
        expect(existsSync(join(work, `busy${flag}`, 'serve.lock'))).toBe(false);
      }
    } finally {
      server.close();
    }
  });

  it('a busy --slack-port is one line naming the flag', async () => {
    const { port, server } = await busyPort();
    try {
      const r = await odt(serveArgs(join(work, 'busy-slack'), '--slack-port', String(port)), {
        SLACK_BOT_TOKEN: 'xoxb-test',
        SLACK_SIGNING_SECRET: 'secret',
        ODT_APPROVERS_CHANNEL: 'C1',
        SLACK_API_URL: 'http://127.0.0.1:9/api/',
        ODT_LOG_LEVEL: 'silent',
      });
      expect(r.code).toBe(2);
      expect(r.err).toContain(`--slack-port ${port}: the port of Slack's requests is in use`);
      expectOneLine(r.err);
    } finally {
      server.close();
    }
  });

  it('an invalid port is refused by the flag’s name', async () => {
    for (const flag of ['--port', '--agent-port', '--slack-port']) {
      const r = await odt(serveArgs(join(work, 'bad-port'), flag, 'abc'));
      expect(r.code, flag).toBe(2);
      expect(r.err).toContain(`option '${flag} <n>' argument 'abc' is invalid`);
      expectOneLine(r.err);
    }
    expect((await odt(serveArgs(join(work, 'bad-port'), '--port', '70000'))).err).toContain(
      'from 0 to 65535',
    );
  });

  it('keeps the agent API port of the last start when --agent-port is not given', async () => {
    const dir = join(work, 'stable');
    const { port, server } = await busyPort();
    server.close();
    const first = await startServe(dir, ['--agent-port', String(port)]);
    expect(first.out()).toContain(`agent API http://127.0.0.1:${port}`);
    first.child.kill('SIGTERM');
    await first.exited;
    // No --agent-port: the port agents were given stays the same.
    const again = await startServe(dir, [], { anyAgentPort: false });
    serves.push(again);
    expect(again.out()).toContain(`agent API http://127.0.0.1:${port}`);
  }, 60_000);

  it('--help says which flags are required and shows durations as durations', async () => {
    const run = await odt(['agent', 'run', '--help']);
    expect(run.out).toMatch(/--role <role>\s+export \(customer site\) or import \(ODT node\)\s+\(required\)/);
    expect(run.out).toMatch(/--dir <dir>[\s\S]*?\(required\)/);
    expect(run.out).toContain('(default: 1m)');
    expect(run.out).toContain('(default: 15m)');
    expect(run.out).not.toMatch(/default: \d{4,}/);
    const enroll = await odt(['agent', 'enroll', '--help']);
    expect(enroll.out).toMatch(/--site <name>\s+the site the agent will serve \(required\)/);
    expect(enroll.out).toContain('(default: 15m)');
    const bad = await odt(['agent', 'enroll', '--site', 'acme', '--ttl', 'soon', '--state-dir', work]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("option '--ttl <duration>' argument 'soon' is invalid");
  });
});

describe('the agent registry goes through odt serve', () => {
  it('enroll, list, revoke and inventory refuse a state folder without a control plane, creating nothing', async () => {
    const typo = join(work, 'typo-state');
    for (const args of [
      ['agent', 'enroll', '--site', 'acme'],
      ['agent', 'list'],
      ['agent', 'revoke', 'agt-1'],
      ['agent', 'inventory', '--site', 'acme'],
    ]) {
      const r = await odt([...args, '--state-dir', typo]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toContain(`no control plane in ${typo}`);
      expect(r.err).toContain('[NO_CONTROL_PLANE]');
      expect(r.out).toBe('');
    }
    expect(existsSync(typo)).toBe(false);
  });

  it('with serve running: a code is issued by it, the agent listed and revoked through it', async () => {
    const dir = join(work, 'registry');
    const serve = await startServe(dir);
    serves.push(serve);
    const code = await odt(['agent', 'enroll', '--site', 'acme', '--ttl', '5m', '--state-dir', dir]);
    expect(code.code).toBe(0);
    expect(code.out.trim()).toMatch(/^[A-Z2-9]{5}(-[A-Z2-9]{5}){3}$/);
    expect(code.err).toContain('valid once for 5m, until ');
    expect((await odt(['agent', 'list', '--json', '--state-dir', dir])).out.trim()).toBe('[]');
    const revoke = await odt(['agent', 'revoke', 'agt-none', '--state-dir', dir]);
    expect(revoke.code).toBe(2);
    expect(revoke.err).toContain("agent 'agt-none' does not exist");
    const inventory = await odt(['agent', 'inventory', '--site', 'acme', '--state-dir', dir]);
    expect(inventory.code).toBe(2);
    expect(inventory.err).toContain('[NOT_FOUND]');
  }, 60_000);
});

describe('a transfer for a site without agents', () => {
  it('warns at request time, and `transfer show` says what the items wait for instead of `exporting`', async () => {
    const dir = join(work, 'no-agents');
    const serve = await startServe(dir);
    serves.push(serve);
    const { cli, show, api } = serveAdmin(dir);
    const requested = await cli(
      'transfer',
      'request',
      '--file',
      await writeTransferRequest(join(work, 'r.json')),
    );
    expect(requested.code).toBe(0);
    const id = requested.out.trim();
    expect(requested.err).toContain(
      'odt: warning: no export agent has enrolled for site acme; the transfer waits for one (`odt agent enroll --site acme`',
    );
    expect(requested.err).toContain('no import agent (ODT node) has enrolled for site cloud');
    await cli('transfer', 'approve', id, '--as', 'bob');
    // The transfer's key is the ODT node's task (#18): with no node enrolled, show says so.
    await until('the make-key wait', async () =>
      (await cli('transfer', 'show', id)).out.includes(
        '\n  waiting for an import agent (ODT node) of site cloud (none enrolled)\n',
      ),
    );
    await until('the make-key task', async () => answerKeyTaskOverApi(api, 'cloud', await show(id)));
    await cli('transfer', 'event', id, 'appliance-sent', '--as', 'bob');
    await cli('transfer', 'event', id, 'appliance-connected', '--as', 'alice');
    await until('exporting', async () => (await show(id)).phase === 'exporting');
    const text = (await cli('transfer', 'show', id)).out;
    expect(text).toMatch(/item-1\s+vm\s+web-01\s+waiting for an export agent of site acme \(none enrolled\)/);
    // A code alone enrolls nobody; the JSON keeps the item's own state.
    await cli('agent', 'enroll', '--site', 'acme');
    expect((await cli('transfer', 'show', id)).out).toContain('waiting for an export agent of site acme');
    expect((await show(id)).items[0]!.result.state).toBe('exporting');
  }, 60_000);
});
