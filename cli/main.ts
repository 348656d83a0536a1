import { Command, CommanderError } from 'commander';
import { VimFaultError } from '../agent/vsphere/wire/soap-connection.ts';
import { codeOf } from '../core/errors.ts';
import { registerAgentRun } from './commands/agent-run.ts';
import { registerControl } from './commands/control.ts';
import { registerDataPath } from './commands/data-path.ts';
import { registerImport } from './commands/import.ts';
import { registerNas } from './commands/nas.ts';
import { registerOpen } from './commands/open.ts';
import { registerOperator } from './commands/operator.ts';
import { exitCodeOf, exitCodes } from './exit-codes.ts';
import { markRequiredOptions } from './flags.ts';
import { withHint } from './hints.ts';
import type { Io } from './io.ts';
import { registerSandbox } from './sandbox.ts';

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
  registerNas(program, io);
  registerImport(program, io);
  registerOpen(program, io);
  registerControl(program, io);
  registerAgentRun(program, io);
  registerOperator(program, io);
  markRequiredOptions(program);
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
    const exit = exitCodeOf(error);
    // Commander has said what was wrong (or shown the help) already.
    if (error instanceof CommanderError) return exit;
    if (exit === exitCodes.unexpected || !(error instanceof Error)) {
      io.err.write(
        `odt: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      return exitCodes.unexpected;
    }
    io.err.write(`odt: ${explain(error)} [${codeOf(error)}]\n`);
    return exit;
  }
}

function explain(error: Error): string {
  if (error instanceof VimFaultError && error.faultType === 'InvalidLogin') {
    return `${error.message}. Check --username and ODT_VCENTER_PASSWORD.`;
  }
  return withHint(error);
}
