import type { Command } from 'commander';
import type { Io } from './main.ts';

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

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
    .action(async (o: { dir: string; diskSize: string }) => {
      // Loaded here so that other commands do not pay for the simulators and the workflow engine.
      const { runSandbox } = await import('../local/sandbox/run-sandbox.ts');
      const controller = new AbortController();
      const onSignal = () => controller.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        io.out.write('Sneakernet sandbox: one transfer from request to wipe, all on this machine\n');
        const r = await runSandbox({
          dir: o.dir,
          diskSize: o.diskSize,
          out: io.out,
          signal: controller.signal,
        });
        const t = r.transfer;
        io.out.write(`\nReport for ${t.id} (${t.phase})\n`);
        const rows = t.items.map((i) => [
          i.id,
          i.kind,
          i.source,
          i.target.placement === 'catalog' ? `catalog ${i.target.catalog}` : `vApp in ${i.target.vdc}`,
          i.result.state,
          mb(i.result.bytes),
        ]);
        const head = ['ITEM', 'KIND', 'SOURCE', 'PLACED AS', 'RESULT', 'BYTES'];
        const widths = head.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]!.length)));
        for (const row of [head, ...rows])
          io.out.write(`  ${row.map((v, c) => v.padEnd(widths[c]!)).join('  ')}\n`);
        io.out.write(
          `\n  ${mb(r.bytes)} exported in ${r.exportSeconds.toFixed(1)} s (${mb(r.bytes / Math.max(0.001, r.exportSeconds))}/s, encrypted and signed), imported and onboarded in ${r.importSeconds.toFixed(1)} s; ${r.totalSeconds.toFixed(1)} s in all\n`,
        );
        io.out.write(
          `\n  state and logs: ${r.dir}/state (events.log, odt.sqlite)\n  NAS folder:     ${r.dir}/nas/${t.id}\n  node identity:  ${r.dir}/odt-node/identity.txt (decrypt by hand: docs/package-format.md)\n`,
        );
        if (t.items.some((i) => i.result.state === 'failed')) process.exitCode = 3;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
