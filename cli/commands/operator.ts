import { writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import type { Command } from 'commander';
import { errnoOf, ValidationError } from '../../core/index.ts';
import type { Io } from '../io.ts';
import { call, defaultStateDir, defaultTokenFile } from './control.ts';

/**
 * `odt operator add | list | remove`: the people who act on transfers from the CLI, each with a
 * token that odt serve issues and checks (issue 22). Through the running serve, with the admin
 * token of its state folder.
 */
export function registerOperator(program: Command, io: Io): void {
  const operator = program
    .command('operator')
    .description('the people who act on transfers from the CLI, each with a token odt serve checks');
  const admin = { admin: true } as const;

  operator
    .command('add <name>')
    .description("issue an operator's token (shown once, written to --out with mode 0600)")
    .requiredOption(
      '--out <file>',
      `where to write the token; hand it to the operator, who keeps it at ${defaultTokenFile.replace(homedir(), '~')} or names it with --token-file`,
    )
    .option('--state-dir <dir>', 'state folder of odt serve', defaultStateDir)
    .action(async (name: string, o: { out: string; stateDir: string }) => {
      const added = (await call(o.stateDir, 'POST', '/operators', { name }, admin)) as {
        name: string;
        token: string;
      };
      try {
        // Never over another file (flag wx), and private from the first byte (mode).
        await writeFile(o.out, `${added.token}\n`, { mode: 0o600, flag: 'wx' });
      } catch (error) {
        // The token exists on the server but is written nowhere: take it back.
        await call(o.stateDir, 'DELETE', `/operators/${encodeURIComponent(name)}`, undefined, admin);
        throw new ValidationError('--out', [
          {
            path: o.out,
            message:
              errnoOf(error) === 'EEXIST'
                ? 'exists; name a new file (a token file is never overwritten)'
                : `cannot be written (${(error as Error).message})`,
          },
        ]);
      }
      io.out.write(`operator ${added.name}: token written to ${o.out} (mode 0600)\n`);
    });

  operator
    .command('list')
    .description('the operators')
    .option('--state-dir <dir>', 'state folder of odt serve', defaultStateDir)
    .option('--json', 'as JSON')
    .action(async (o: { stateDir: string; json?: boolean }) => {
      const list = (await call(o.stateDir, 'GET', '/operators', undefined, admin)) as {
        name: string;
        addedAt: string;
      }[];
      if (o.json) io.out.write(`${JSON.stringify(list, null, 2)}\n`);
      else for (const op of list) io.out.write(`${op.name.padEnd(24)} added ${op.addedAt}\n`);
    });

  operator
    .command('remove <name>')
    .description('remove an operator: their token is refused from now on')
    .option('--state-dir <dir>', 'state folder of odt serve', defaultStateDir)
    .action(async (name: string, o: { stateDir: string }) => {
      await call(o.stateDir, 'DELETE', `/operators/${encodeURIComponent(name)}`, undefined, admin);
      io.out.write(`operator ${name} removed\n`);
    });
}
