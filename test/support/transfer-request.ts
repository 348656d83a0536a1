/**
 * The transfer the end-to-end tests ask for: one VM of the customer site `acme`, requested by
 * `alice`, to be moved to the provider site `cloud` (where `bob` approves).
 */
import { writeFile } from 'node:fs/promises';
import type { TransferRequest } from '../../core/index.ts';
import { odt } from './cli.ts';

type RequestItem = TransferRequest['items'][number];

/** Writes the request of `item` (default: `web-01` into vDC `v`) to `file`, for `odt transfer request --file`; returns `file`. */
export async function writeTransferRequest(
  file: string,
  item: RequestItem = { kind: 'vm', source: 'web-01', target: { vdc: 'v' } },
): Promise<string> {
  await writeFile(
    file,
    JSON.stringify({ site: 'acme', providerSite: 'cloud', requester: 'alice', items: [item] }),
  );
  return file;
}

/** `odt transfer …` against the state directory `state`; a failure throws, else it resolves to stdout. */
export function transferCli(state: string) {
  return async (...args: string[]): Promise<string> => {
    const r = await odt([...args, '--state-dir', state]);
    if (r.code !== 0) throw new Error(`odt ${args.join(' ')} failed: ${r.err}`);
    return r.out;
  };
}

/**
 * Requests the transfer of `file` with `cli` and takes it to where the export agent starts: bob
 * approves and sends the NAS, alice connects it. Resolves to the transfer's id.
 */
export async function requestUntilConnected(
  cli: (...args: string[]) => Promise<string>,
  file: string,
): Promise<string> {
  const id = (await cli('transfer', 'request', '--file', file)).trim();
  await cli('transfer', 'approve', id, '--as', 'bob');
  await cli('transfer', 'event', id, 'appliance-sent', '--as', 'bob');
  await cli('transfer', 'event', id, 'appliance-connected', '--as', 'alice');
  return id;
}
