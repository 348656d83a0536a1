/**
 * `odt serve` as its own process, for the tests that stop it (kill -9, SIGTERM) and start it again
 * over the same state directory, and the admin CLI and API they drive it with.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Transfer } from '../../core/index.ts';
import { poll } from '../../core/wait.ts';
import { type CliResult, odt, repoRoot } from './cli.ts';

/** A running `odt serve`: its process, the URL of its API, what it has printed so far, its exit. */
export interface ServeProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly out: () => string;
  readonly exited: Promise<number | null>;
}

/**
 * Starts `odt serve` over `dir` (any free ports unless `extra` gives --port or --agent-port, or
 * `anyAgentPort: false` leaves the agent port to serve; approver `bob`); resolves once its API listens.
 */
export async function startServe(
  dir: string,
  extra: readonly string[] = [],
  options: { anyAgentPort?: boolean } = {},
): Promise<ServeProcess> {
  const ports = [
    ...(extra.includes('--port') ? [] : ['--port', '0']),
    ...(extra.includes('--agent-port') || options.anyAgentPort === false ? [] : ['--agent-port', '0']),
  ];
  const child = spawn(
    process.execPath,
    [join(repoRoot, 'bin/odt.mjs'), 'serve', '--state-dir', dir, ...ports, '--approvers', 'bob', ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout!.on('data', (c) => {
    out += String(c);
  });
  child.stderr!.on('data', (c) => {
    err += String(c);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await poll({
    what: 'odt serve to listen',
    until: async () => {
      if (child.exitCode !== null) throw new Error(`odt serve exited ${child.exitCode}: ${err}`);
      return /API (http:\/\/[^\s,]+)/.exec(out)?.[1];
    },
    intervalMs: 20,
    timeoutMs: 30_000,
  });
  return { child, url, out: () => out, exited };
}

/** Waits for `f` to give something truthy (a failure counts as not yet), for up to 15 s. */
export const until = <T>(what: string, f: () => Promise<T | undefined | false>): Promise<T> =>
  poll({
    what,
    until: async () => (await f().catch(() => undefined)) || undefined,
    intervalMs: 20,
    timeoutMs: 15_000,
  });

/** The admin CLI and API of the `odt serve` over `dir`, as `odt transfer --state-dir` finds it. */
export function serveAdmin(dir: string) {
  const cli = (...args: string[]): Promise<CliResult> => odt([...args, '--state-dir', dir]);
  return {
    cli,
    /** An admin API call; throws the API's error when it answers with one. */
    api: async <T>(method: string, path: string, body?: unknown): Promise<T> => {
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
    },
    show: async (id: string) => JSON.parse((await cli('transfer', 'show', id, '--json')).out) as Transfer,
  };
}

/**
 * Runs `odt <args>` as its own process and waits up to `timeoutMs` for it to exit; one still
 * running then is killed and reported as code `'running'` (e.g. a second serve that started).
 */
export async function runOdtProcess(
  args: readonly string[],
  timeoutMs = 15_000,
): Promise<{ code: number | null | 'running'; out: string; err: string }> {
  const child = spawn(process.execPath, [join(repoRoot, 'bin/odt.mjs'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c) => {
    out += String(c);
  });
  child.stderr!.on('data', (c) => {
    err += String(c);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const code = await Promise.race([
    exited,
    new Promise<'running'>((r) => setTimeout(() => r('running'), timeoutMs)),
  ]);
  if (code === 'running') {
    child.kill('SIGKILL');
    await exited;
  }
  return { code, out, err };
}
