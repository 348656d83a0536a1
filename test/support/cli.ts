import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { main } from '../../cli/main.ts';

export const repoRoot = join(import.meta.dirname, '..', '..');

export interface CliResult {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** Runs `odt` in this process, capturing what a person would see. */
export async function odt(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  const out = new PassThrough();
  const err = new PassThrough();
  const text = { out: '', err: '' };
  out.on('data', (c) => {
    text.out += String(c);
  });
  err.on('data', (c) => {
    text.err += String(c);
  });
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    const code = await main(args, { out, err });
    return { code, ...text };
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** Runs a command and collects its output (the age CLI, sha256sum, tar). */
export function run(
  cmd: string,
  args: readonly string[],
  options: { input?: Buffer; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => {
      stderr += String(c);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr }));
    child.stdin.end(options.input);
  });
}

/** Creates an ODT node identity and an export agent under `work`; returns the recipient. */
export async function initParties(work: string): Promise<string> {
  const node = await odt(['node', 'init', '--dir', join(work, 'node')]);
  if (node.code !== 0) throw new Error(`odt node init failed: ${node.err}`);
  const agent = await odt(['agent', 'init', '--dir', join(work, 'agent')]);
  if (agent.code !== 0) throw new Error(`odt agent init failed: ${agent.err}`);
  return node.out.trim().split('\n').at(-1)!;
}

/** The customer site `odt export` signs into the packages of the tests (exportArgs). */
export const exportSite = 'acme';

/**
 * The arguments of `odt export` of `items` from a vCenter into `nas` as `transfer`, encrypted to
 * `recipient`, with the agent of `<work>/agent` (see initParties), for site `exportSite`. The
 * password goes in ODT_VCENTER_PASSWORD; add flags such as `--parallel` after these. `nas` is a
 * plain folder of the test (`--nas-plain-folder`), made here when missing, as a mounted NAS would
 * be there; the NAS checks themselves are tested in test/cli/export-nas.test.ts.
 */
export function exportArgs(
  vcenter: { url: string; username: string },
  work: string,
  recipient: string,
  items: readonly string[],
  nas: string,
  transfer: string,
): string[] {
  try {
    mkdirSync(nas, { recursive: true });
  } catch {
    // A test that gives a file as the NAS wants the export's own error.
  }
  return [
    'export',
    '--vcenter',
    vcenter.url,
    '--username',
    vcenter.username,
    ...items.flatMap((i) => ['--item', i]),
    '--nas',
    nas,
    '--nas-plain-folder',
    '--recipient',
    recipient,
    '--transfer',
    transfer,
    '--site',
    exportSite,
    '--agent-dir',
    join(work, 'agent'),
  ];
}

/**
 * `odt export` of `items` from a simulator into `nas` as `transfer`, with the agent of
 * `<work>/agent` (see initParties); throws with what odt printed unless it exported cleanly.
 */
export async function exportItems(
  sim: { url: string; username: string; password: string },
  work: string,
  recipient: string,
  items: readonly string[],
  nas: string,
  transfer: string,
): Promise<void> {
  const r = await odt(exportArgs(sim, work, recipient, items, nas, transfer), {
    ODT_VCENTER_PASSWORD: sim.password,
  });
  if (r.code !== 0 || r.err !== '') throw new Error(`odt export failed (${r.code}): ${r.err}`);
}

/**
 * The arguments of `odt import` of `transfer` from `nas` into a vCenter, with the node identity
 * and agent certificate that initParties made under `work`, keeping its state in `state`. The
 * password goes in ODT_VCENTER_PASSWORD; add flags such as `--json` after these.
 */
export function importArgs(
  vcenter: { url: string; username: string },
  work: string,
  nas: string,
  transfer: string,
  state: string,
): string[] {
  return [
    'import',
    '--vcenter',
    vcenter.url,
    '--username',
    vcenter.username,
    '--nas',
    nas,
    '--transfer',
    transfer,
    '--identity',
    join(work, 'node', 'identity.txt'),
    '--agent-cert',
    join(work, 'agent', 'agent.crt.pem'),
    '--state-dir',
    state,
  ];
}
