import type { Command } from 'commander';
import type { Io } from './main.ts';

/**
 * `odt sandbox`: the whole product on one machine. It grows with each capability; until the
 * control plane and the agents exist it says exactly what it can show and what it cannot yet.
 */
export function registerSandbox(program: Command, io: Io): void {
  program
    .command('sandbox')
    .description('run a complete offline transfer on this machine (no AWS, no Slack account)')
    .action(() => {
      io.out.write(
        [
          'Sneakernet sandbox',
          '',
          'Ready today:',
          '  - the transfer model and its lifecycle rules (core/), with unit tests',
          '  - the vSphere simulator peer (test/peers/vsphere/): export and import leases, NFC',
          '    downloads and uploads, TLS and credentials; `npm test` builds and exercises it',
          '  - the export data path: odt node init, agent init, inventory, export, verify',
          '    (vim25 client, age-encrypted signed OVF packages, resume after a crash)',
          '',
          'Not built yet (see the open issues), so this sandbox cannot run a transfer yet:',
          '  - ODT node import and vCloud Director onboarding',
          '  - the workflow engine (`odt serve`), the agent API and the Slack app',
          '',
          'Run `npm test` to see what works.',
          '',
        ].join('\n'),
      );
    });
}
