// Runs the real `age` / `age-keygen` CLI (Debian package, /usr/bin) with stdin and stdout piped.

import { spawn } from 'node:child_process';

export interface CliResult {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** Runs `command args`, writing `input` to its stdin; resolves whatever the exit code. */
export function runCli(
  command: 'age' | 'age-keygen',
  args: readonly string[],
  input?: Buffer,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
    // The CLI may exit before reading all of stdin (e.g. on a bad header): not an error here.
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? Buffer.alloc(0));
  });
}

/** Like `runCli` but fails with the CLI's stderr unless it exits 0. */
export async function runCliOk(
  command: 'age' | 'age-keygen',
  args: readonly string[],
  input?: Buffer,
): Promise<Buffer> {
  const result = await runCli(command, args, input);
  if (result.code !== 0)
    throw new Error(`${command} ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}
