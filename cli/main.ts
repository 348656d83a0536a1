import { constants } from 'node:os';
import { Command, CommanderError } from 'commander';
import { InterruptedError, OdtError } from '../core/index.ts';
import { registerAgentRun } from './commands/agent-run.ts';
import { registerControl } from './commands/control.ts';
import { registerDataPath } from './commands/data-path.ts';
import { registerImport } from './commands/import.ts';
import { withHint } from './hints.ts';
import { registerSandbox } from './sandbox.ts';

export interface Io {
  readonly out: NodeJS.WritableStream;
  readonly err: NodeJS.WritableStream;
}

const version = '0.1.0';

/** Builds the `odt` command tree; `io` lets tests capture what a person would see. */
export function buildProgram(io: Io): Command {
  const program = new Command('odt')
    .description('Sneakernet: move VMware VMs into vCloud Director on a shipped NAS')
    .version(version)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out.write(s),
      writeErr: (s) => io.err.write(s),
    });
  registerSandbox(program, io);
  registerDataPath(program, io);
  registerImport(program, io);
  registerControl(program, io);
  registerAgentRun(program, io);
  return program;
}

/** Runs the CLI and returns the exit code; errors end here, once (STYLE.md 5). */
export async function main(
  argv: readonly string[],
  io: Io = { out: process.stdout, err: process.stderr },
): Promise<number> {
  const program = buildProgram(io);
  try {
    process.exitCode = undefined;
    await program.parseAsync([...argv], { from: 'user' });
    // Commands report partial failure through process.exitCode without throwing.
    const code = Number(process.exitCode ?? 0);
    process.exitCode = undefined;
    return code;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (error instanceof InterruptedError) {
      io.err.write(`odt: ${error.message} [${error.code}]\n`);
      // As a shell reports a process ended by the signal: 130 for SIGINT, 143 for SIGTERM.
      return 128 + constants.signals[error.signal];
    }
    if (error instanceof OdtError || hasCode(error)) {
      io.err.write(`odt: ${explain(error)} [${error.code}]\n`);
      return 2;
    }
    io.err.write(
      `odt: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return 1;
  }
}

/** Errors of the product and of the system carry a stable string code; anything else is a bug and shows its stack. */
const hasCode = (e: unknown): e is Error & { code: string } =>
  e instanceof Error && typeof (e as unknown as { code?: unknown }).code === 'string';

function explain(error: Error & { code: string }): string {
  if (error.name === 'VimFaultError' && (error as { faultType?: string }).faultType === 'InvalidLogin') {
    return `${error.message}. Check --username and ODT_VCENTER_PASSWORD.`;
  }
  return withHint(error);
}
