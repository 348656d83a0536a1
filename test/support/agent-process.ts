import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './cli.ts';

/** A real `odt agent run` process, with what it printed so far. */
export interface AgentProcess {
  readonly child: ChildProcess;
  readonly log: () => string;
  readonly exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs` if it has not exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts `odt agent run <args>` from this checkout; ODT_AGENT_LOG=1 echoes its stderr. */
export function startAgentProcess(args: readonly string[], env: Record<string, string>): AgentProcess {
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'odt.mjs'), 'agent', 'run', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout!.on('data', (c) => {
    text += String(c);
  });
  child.stderr!.on('data', (c) => {
    text += String(c);
    if (process.env.ODT_AGENT_LOG) process.stderr.write(c);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    log: () => text,
    exited,
    async stop(graceMs = 10_000) {
      if (running()) child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, graceMs))]);
      if (running()) child.kill('SIGKILL');
    },
  };
}
