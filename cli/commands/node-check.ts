import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { fieldKey, markField } from '../../agent/import/import-mark.ts';
import { transferManifestSchema } from '../../agent/package/transfer-manifest.ts';
import { transferFolderProblem } from '../../agent/package/verify.ts';
import { VcdClient } from '../../agent/vcd/client.ts';
import type { VimClient } from '../../agent/vsphere/client.ts';
import { type Placement, resolvePlacement } from '../../agent/vsphere/placement.ts';
import { idSchema, parseOrThrow } from '../../core/index.ts';
import { readEnv } from '../env.ts';
import { exitCodes } from '../exit-codes.ts';
import type { Io } from '../io.ts';
import { addVcenterOptions, connect, type VcenterFlags } from './data-path.ts';

export interface CheckResult {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

interface CheckFlags extends VcenterFlags {
  datacenter?: string;
  datastore?: string;
  pool?: string;
  folder?: string;
  network: string;
  nas?: string;
  transfer?: string;
  json?: boolean;
  vcd?: string;
  vcdUsername?: string;
  vcdThumbprint?: string;
}

const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;

/** Pre-flight of the provider side, before anything is shipped: each failed check says what to fix. */
export async function runNodeChecks(
  flags: CheckFlags,
  connectFn: (f: VcenterFlags) => Promise<VimClient> = connect,
): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  let client: VimClient;
  try {
    client = await connectFn(flags);
    results.push({
      name: 'vcenter',
      ok: true,
      detail: `${client.serviceContent.about.fullName || 'vCenter'} answers; logged in as ${flags.username}`,
    });
  } catch (error) {
    results.push({
      name: 'vcenter',
      ok: false,
      detail: `${(error as Error).message} — check --vcenter, --username, ODT_VCENTER_PASSWORD and --thumbprint`,
    });
    return results;
  }
  try {
    let placement: Placement | undefined;
    try {
      placement = await resolvePlacement(client, {
        ...(flags.datacenter ? { datacenter: flags.datacenter } : {}),
        ...(flags.datastore ? { datastore: flags.datastore } : {}),
        ...(flags.pool ? { pool: flags.pool } : {}),
        ...(flags.folder ? { folder: flags.folder } : {}),
        network: flags.network,
      });
      results.push({
        name: 'placement',
        ok: true,
        detail: `datacenter ${placement.datacenter.name}, datastore ${placement.datastore.name}`,
      });
    } catch (error) {
      results.push({ name: 'placement', ok: false, detail: (error as Error).message });
    }
    if (placement) {
      const missing = placement.hosts.filter((h) => !h.hasNetwork).map((h) => h.name);
      results.push(
        missing.length === 0 && placement.hosts.length > 0
          ? {
              name: 'network',
              ok: true,
              detail: `port group '${flags.network}' on all ${placement.hosts.length} hosts of the target cluster`,
            }
          : {
              name: 'network',
              ok: false,
              detail:
                placement.hosts.length === 0
                  ? 'the target resource pool has no hosts'
                  : `port group '${flags.network}' is missing on ${missing.join(', ')}; add it to every host (imported VMs attach to it first)`,
            },
      );
      try {
        const key = await fieldKey(client);
        results.push({
          name: 'attribute',
          ok: true,
          detail: `custom attribute '${markField}' (key ${key}) marks the VMs imports make`,
        });
      } catch (error) {
        results.push({
          name: 'attribute',
          ok: false,
          detail: `cannot define the custom attribute '${markField}' that marks imported VMs (${(error as Error).message}); give ${flags.username} the privileges to manage and set custom attributes`,
        });
      }
      if (flags.nas && flags.transfer) {
        try {
          const id = parseOrThrow(idSchema, flags.transfer, '--transfer');
          const missingTransfer = await transferFolderProblem(join(flags.nas, id));
          if (missingTransfer) throw new Error(missingTransfer);
          const manifest = transferManifestSchema.parse(
            JSON.parse(await readFile(join(flags.nas, id, 'transfer.json'), 'utf8')),
          );
          const need = manifest.items.flatMap((i) => i.files).reduce((s, f) => s + f.size, 0);
          const free = placement.datastore.freeBytes;
          results.push(
            free >= need
              ? {
                  name: 'datastore',
                  ok: true,
                  detail: `${placement.datastore.name} has ${gib(free)} free for ${gib(need)}`,
                }
              : {
                  name: 'datastore',
                  ok: false,
                  detail: `${placement.datastore.name} has ${gib(free)} free, the transfer needs ${gib(need)}; free space or pass --datastore`,
                },
          );
        } catch (error) {
          results.push({
            name: 'datastore',
            ok: false,
            detail: `cannot read the transfer's size: ${(error as Error).message}`,
          });
        }
      } else {
        results.push({
          name: 'datastore',
          ok: true,
          detail: `${placement.datastore.name} has ${gib(placement.datastore.freeBytes)} free (pass --nas and --transfer to compare with a transfer)`,
        });
      }
    }
  } finally {
    await client.logout();
  }
  if (flags.vcd) results.push(await checkVcd(flags));
  return results;
}

async function checkVcd(flags: CheckFlags): Promise<CheckResult> {
  const password = readEnv().ODT_VCD_PASSWORD;
  if (!flags.vcdUsername || !password) {
    return {
      name: 'vcd',
      ok: false,
      detail: 'give --vcd-username and export ODT_VCD_PASSWORD to check vCloud Director',
    };
  }
  try {
    const vcd = await VcdClient.connect({
      url: flags.vcd!,
      username: flags.vcdUsername,
      password,
      trust: flags.vcdThumbprint
        ? { kind: 'thumbprint', thumbprint: flags.vcdThumbprint }
        : flags.insecure
          ? { kind: 'insecure' }
          : { kind: 'system' },
    });
    const vim = await vcd.vimServer().catch((e: Error) => e);
    await vcd.logout();
    if (vim instanceof Error)
      return {
        name: 'vcd',
        ok: false,
        detail: `vCloud Director answers (API ${vcd.apiVersion}) but ${vim.message}`,
      };
    return {
      name: 'vcd',
      ok: true,
      detail: `vCloud Director answers, API ${vcd.apiVersion}, vCenter '${vim.name}' attached`,
    };
  } catch (error) {
    return {
      name: 'vcd',
      ok: false,
      detail: `${(error as Error).message} — check --vcd, --vcd-username and ODT_VCD_PASSWORD`,
    };
  }
}

export function registerNodeCheck(node: Command, io: Io): void {
  addVcenterOptions(
    node
      .command('check')
      .description(
        'pre-flight of the provider side: vCenter, placement, VM Network on every host, datastore room',
      ),
  )
    .option('--datacenter <name>', 'target datacenter')
    .option('--datastore <name>', 'target datastore')
    .option('--pool <path>', 'resource pool inventory path')
    .option('--folder <path>', 'VM folder inventory path')
    .option('--network <name>', 'port group imported VMs attach to first', 'VM Network')
    .option('--nas <dir>', 'NAS mount point, to size the transfer')
    .option('--transfer <id>', 'transfer id, to size the transfer')
    .option('--vcd <url>', 'vCloud Director URL to check too (password from ODT_VCD_PASSWORD)')
    .option('--vcd-username <user@System>', 'vCloud Director provider user')
    .option('--vcd-thumbprint <sha256>', "pin the vCloud Director certificate's SHA-256 thumbprint")
    .option('--json', 'the results as JSON')
    .action(async (o: CheckFlags) => {
      const results = await runNodeChecks(o);
      if (o.json) io.out.write(`${JSON.stringify(results, null, 2)}\n`);
      else
        for (const r of results) io.out.write(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name.padEnd(10)} ${r.detail}\n`);
      if (results.some((r) => !r.ok)) process.exitCode = exitCodes.preflightFailed;
    });
}
