import type { Command } from 'commander';
import { exitCodes } from './exit-codes.ts';
import { interruptOnSignals } from './interrupt.ts';
import type { Io } from './io.ts';

/**
 * `odt sandbox` (what `npm start` runs): one complete offline transfer on this machine, with the
 * real control plane, agents and data path against simulated vCenters and vCloud Director.
 */
export function registerSandbox(program: Command, io: Io): void {
  program
    .command('sandbox')
    .description('run a complete offline transfer on this machine (no AWS, no Slack account)')
    .option('--dir <dir>', 'where state, logs and the NAS folder go (emptied first)', '.odt/sandbox')
    .option('--disk-size <size>', 'size of each simulated disk', '64MiB')
    .option(
      '--keep-key',
      "stop before the wipe: the transfer's key stays in odt-node/transfer-keys/ to open a package by hand (docs/package-format.md)",
    )
    .action(async (o: { dir: string; diskSize: string; keepKey?: boolean }) => {
      // Loaded here so that other commands do not pay for the simulators and the workflow engine.
      const { runSandbox } = await import('../local/sandbox/run-sandbox.ts');
      const { formatReport } = await import('../local/sandbox/report.ts');
      const interrupt = interruptOnSignals();
      try {
        io.out.write('Sneakernet sandbox: one transfer from request to wipe, all on this machine\n');
        const r = await runSandbox({
          dir: o.dir,
          diskSize: o.diskSize,
          out: io.out,
          signal: interrupt.signal,
          ...(o.keepKey ? { wipe: false } : {}),
        });
        const t = r.transfer;
        io.out.write(`\n${formatReport(r)}`);
        if (t.items.some((i) => i.result.state === 'failed')) process.exitCode = exitCodes.itemsFailed;
      } finally {
        interrupt.dispose();
      }
    });
}
