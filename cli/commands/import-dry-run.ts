import { describeNas, type NasInfo } from '../../agent/nas/nas-check.ts';
import { formatBytes } from '../../agent/nas/space-check.ts';
import { verifyTransfer } from '../../agent/package/verify.ts';
import type { VcdClient } from '../../agent/vcd/client.ts';
import type { VimClient } from '../../agent/vsphere/client.ts';
import { type PlacementInput, resolvePlacement } from '../../agent/vsphere/placement.ts';
import { exitCodes } from '../exit-codes.ts';
import type { Io } from '../io.ts';

export interface ImportDryRunOptions {
  readonly root: string;
  readonly transferId: string;
  readonly nas: NasInfo;
  readonly identities: readonly string[];
  readonly agentCertPem: string;
  readonly site?: string;
  readonly placement: PlacementInput;
  /** Connects to the vCenter (login only). */
  readonly connect: () => Promise<VimClient>;
  readonly vcd?: {
    readonly client: VcdClient;
    readonly vdc: string;
    readonly catalog?: string;
    readonly network?: string;
  };
  readonly json: boolean;
}

interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/**
 * `odt import --dry-run`: every check of an import that changes nothing, and what it would do.
 * The package is checked in full (signature, binding, every file's digest, and decrypted, every
 * plaintext hash), as `odt verify --identity` does; the vCenter and vCloud Director are only read
 * (placement, network, datastore room, VDC, catalog, network). Nothing is created or defined in
 * either (not even the custom attribute an import marks its VMs with) and nothing is journaled.
 */
export async function importDryRun(io: Io, o: ImportDryRunOptions): Promise<void> {
  const checks: Check[] = [{ name: 'nas', ok: true, detail: describeNas(o.nas) }];
  const report = await verifyTransfer({
    root: o.root,
    identities: o.identities,
    agentCertPem: o.agentCertPem,
    expected: { transfer: o.transferId, ...(o.site ? { site: o.site } : {}) },
    decrypt: 'all',
  });
  checks.push(
    report.ok
      ? {
          name: 'package',
          ok: true,
          detail: `signed by the pinned agent, bound to ${o.transferId}${o.site ? ` and site ${o.site}` : ''}; ${report.files.length} files decrypted and checked`,
        }
      : {
          name: 'package',
          ok: false,
          detail: report.problems.map((p) => `${p.file}: ${p.message} [${p.code}]`).join('; '),
        },
  );
  const manifest = report.manifest;
  const need = manifest ? manifest.items.flatMap((i) => i.files).reduce((s, f) => s + f.size, 0) : 0;
  let client: VimClient | undefined;
  try {
    client = await o.connect();
    checks.push({
      name: 'vcenter',
      ok: true,
      detail: `${client.serviceContent.about.fullName || 'vCenter'} answers`,
    });
    try {
      const placement = await resolvePlacement(client, o.placement);
      checks.push({
        name: 'placement',
        ok: true,
        detail: `datacenter ${placement.datacenter.name}, datastore ${placement.datastore.name}`,
      });
      const missing = placement.hosts.filter((h) => !h.hasNetwork).map((h) => h.name);
      checks.push(
        missing.length === 0
          ? {
              name: 'network',
              ok: true,
              detail: `port group '${placement.network.name}' on every host of the pool`,
            }
          : {
              name: 'network',
              ok: false,
              detail: `port group '${placement.network.name}' is missing on ${missing.join(', ')}`,
            },
      );
      const free = placement.datastore.freeBytes;
      checks.push({
        name: 'datastore',
        ok: free >= need,
        detail: `${placement.datastore.name} has ${formatBytes(free)} free for ${formatBytes(need)}${free >= need ? '' : '; free space or pass --datastore'}`,
      });
    } catch (error) {
      checks.push({ name: 'placement', ok: false, detail: (error as Error).message });
    }
  } catch (error) {
    checks.push({ name: 'vcenter', ok: false, detail: (error as Error).message });
  } finally {
    await client?.logout().catch(() => {});
  }
  if (o.vcd) {
    const { client: vcd, vdc, catalog, network } = o.vcd;
    const find = async (name: string, what: () => Promise<unknown>, detail: string) => {
      try {
        await what();
        checks.push({ name, ok: true, detail });
      } catch (error) {
        checks.push({ name, ok: false, detail: (error as Error).message });
      }
    };
    await find('vdc', () => vcd.findVdc(vdc), `org VDC '${vdc}'`);
    if (catalog) await find('catalog', () => vcd.findCatalog(catalog), `catalog '${catalog}'`);
    if (network)
      await find(
        'vdc-network',
        () => vcd.findOrgVdcNetwork(vdc, network),
        `network '${network}' in '${vdc}'`,
      );
  }
  const plan = (manifest?.items ?? []).map((i) => ({
    id: i.id,
    kind: i.kind,
    name: i.name,
    source: i.source,
    bytes: i.files.reduce((s, f) => s + f.size, 0),
  }));
  const ok = checks.every((c) => c.ok);
  if (o.json) {
    io.out.write(
      `${JSON.stringify({ dryRun: true, ok, transfer: o.transferId, checks, items: plan }, null, 2)}\n`,
    );
  } else {
    io.out.write('dry run: nothing was imported, created or journaled\n');
    for (const c of checks) io.out.write(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(11)} ${c.detail}\n`);
    for (const i of plan)
      io.out.write(
        `${i.id}  ${i.kind}  ${i.name}  ${formatBytes(i.bytes)}: ${ok ? 'would be imported' : 'would not be imported'}\n`,
      );
  }
  if (!report.ok) process.exitCode = exitCodes.notTrusted;
  else if (!ok) process.exitCode = exitCodes.preflightFailed;
}
