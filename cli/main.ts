import { Command, CommanderError } from 'commander';
import { OdtError } from '../core/index.ts';
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
  return program;
}

/** Runs the CLI and returns the exit code; errors end here, once (STYLE.md 5). */
export async function main(
  argv: readonly string[],
  io: Io = { out: process.stdout, err: process.stderr },
): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (error instanceof OdtError) {
      io.err.write(`odt: ${error.message} [${error.code}]\n`);
      return 2;
    }
    io.err.write(
      `odt: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return 1;
  }
}
