import { join } from 'node:path';
import type { Command } from 'commander';
import { type FileProgress, importPlan } from '../../agent/file-progress.ts';
import { type ItemImportResult, importTransfer } from '../../agent/import/import-transfer.ts';
import { describeNas, inspectNas } from '../../agent/nas/nas-check.ts';
import { parseIdentityFile } from '../../agent/package/age/keys.ts';
import { transferFolderProblem, type VerifyProgress } from '../../agent/package/verify.ts';
import { VcdClient } from '../../agent/vcd/client.ts';
import { codeOf } from '../../core/errors.ts';
import { idSchema, OdtError, parseOrThrow, siteSchema, ValidationError } from '../../core/index.ts';
import { readEnv } from '../env.ts';
import { exitCodes } from '../exit-codes.ts';
import { identityFileHelp, readFlagFile } from '../flag-file.ts';
import { withHint } from '../hints.ts';
import { type Interrupt, interruptOnSignals } from '../interrupt.ts';
import type { Io } from '../io.ts';
import { jsonProgress, type ProgressSink, ttyProgress } from '../progress.ts';
import {
  type SignerFlags,
  SignerNotPinnedError,
  signerCertificate,
  signerOptionHelp,
} from '../trusted-signer.ts';
import { addVcenterOptions, connect, type VcenterFlags } from './data-path.ts';
import { importDryRun } from './import-dry-run.ts';

interface ImportFlags extends VcenterFlags, SignerFlags {
  nas: string;
  transfer: string;
  identity: string;
  site?: string;
  datacenter?: string;
  datastore?: string;
  pool?: string;
  folder?: string;
  network: string;
  stateDir: string;
  parallel: number;
  json?: boolean;
  verifyFirst?: boolean;
  vcd?: string;
  vcdUsername?: string;
  vcdThumbprint?: string;
  vdc?: string;
  catalog?: string;
  vdcNetwork?: string;
  powerOn?: boolean;
  dryRun?: boolean;
}

export function registerImport(program: Command, io: Io): void {
  addVcenterOptions(
    program.command('import').description('verify, decrypt and import a transfer into vCenter (ODT node)'),
  )
    .requiredOption('--nas <dir>', 'NAS mount point')
    .requiredOption('--transfer <id>', 'transfer id')
    .requiredOption('--identity <file>', "the ODT node's age identity file")
    .option('--agent-cert <file>', signerOptionHelp.agentCert)
    .option('--trust-nas-signer', signerOptionHelp.trustNasSigner)
    .option('--site <name>', 'the customer site the transfer is from: the signed manifest must name it')
    .option('--datacenter <name>', 'target datacenter (default: the first)')
    .option('--datastore <name>', 'target datastore (default: the one with the most free space)')
    .option('--pool <path>', 'resource pool inventory path (default: the first cluster)')
    .option('--folder <path>', 'VM folder inventory path (default: the datacenter VM folder)')
    .option('--network <name>', 'port group every imported NIC is mapped to', 'VM Network')
    .option('--state-dir <dir>', "the ODT node's state folder (import journal)", './.odt/node')
    .option('--vcd <url>', 'vCloud Director URL: onboard each imported item (password from ODT_VCD_PASSWORD)')
    .option('--vcd-username <user@System>', 'vCloud Director provider user')
    .option('--vcd-thumbprint <sha256>', "pin the vCloud Director certificate's SHA-256 thumbprint")
    .option('--vdc <name>', 'target org VDC')
    .option('--catalog <name>', 'catalog for templates')
    .option('--vdc-network <name>', 'org VDC network every NIC is connected to')
    .option(
      '--power-on',
      'deploy and power on each vApp; a template goes into --catalog and also runs as a vApp, powered on',
    )
    .option('--parallel <n>', 'files uploaded at once per item', (v) => Number.parseInt(v, 10), 2)
    .option(
      '--verify-first',
      'check every byte of the NAS before anything reaches vCenter, then read each disk again to upload it (default: one pass, each 64 MiB segment checked just before it is sent)',
    )
    .option(
      '--dry-run',
      'check everything that changes nothing (NAS, signature, binding and every hash, vCenter placement, network and room, vCloud Director targets) and print what the import would do',
    )
    .option('--json', 'one JSON line per progress event and per item')
    .action(async (o: ImportFlags) => {
      // vCloud Director's options do nothing without --vcd: say so rather than import without them.
      const vcdOnly = [
        ['--vdc', o.vdc],
        ['--catalog', o.catalog],
        ['--vdc-network', o.vdcNetwork],
        ['--vcd-username', o.vcdUsername],
        ['--power-on', o.powerOn],
      ].filter(([, v]) => v !== undefined && v !== false);
      if (!o.vcd && vcdOnly.length > 0) {
        throw new ValidationError(
          'The vCloud Director options',
          vcdOnly.map(([flag]) => ({
            path: String(flag),
            message: 'needs --vcd <url> (the items are onboarded into vCloud Director only with it)',
          })),
        );
      }
      // Before anything is asked of vCloud Director, vCenter or the NAS: whose signature counts.
      if (!o.agentCert && !o.trustNasSigner) throw new SignerNotPinnedError('odt import');
      const vcd = o.vcd ? await connectVcd(o) : undefined;
      if (!Number.isInteger(o.parallel) || o.parallel < 1 || o.parallel > 32) {
        throw new ValidationError('--parallel', [
          { path: 'parallel', message: 'must be a whole number from 1 to 32' },
        ]);
      }
      const identities = parseIdentityFile(await readFlagFile('--identity', o.identity, identityFileHelp));
      const transferId = parseOrThrow(idSchema, o.transfer, '--transfer');
      const site = o.site === undefined ? undefined : parseOrThrow(siteSchema, o.site, '--site');
      // The NAS first: a folder not mounted or a mistyped id is said before vCenter is asked.
      const missing = await transferFolderProblem(join(o.nas, transferId));
      if (missing) throw new OdtError('NOT_FOUND', `${missing} (--nas ${o.nas}, --transfer ${transferId})`);
      const signer = await signerCertificate(o, join(o.nas, transferId), io, 'odt import');
      // Which NAS came back: its marker (odt nas init) names it.
      const nas = await inspectNas(o.nas);
      if (o.json)
        io.out.write(`${JSON.stringify({ event: 'nas', path: nas.path, marker: nas.marker ?? null })}\n`);
      else io.out.write(`from ${describeNas(nas)}\n`);
      const placement = {
        ...(o.datacenter ? { datacenter: o.datacenter } : {}),
        ...(o.datastore ? { datastore: o.datastore } : {}),
        ...(o.pool ? { pool: o.pool } : {}),
        ...(o.folder ? { folder: o.folder } : {}),
        network: o.network,
      };
      if (o.dryRun) {
        try {
          await importDryRun(io, {
            root: join(o.nas, transferId),
            transferId,
            nas,
            identities,
            agentCertPem: signer.certPem,
            ...(site ? { site } : {}),
            placement,
            connect: () => connect(o),
            ...(vcd
              ? {
                  vcd: {
                    client: vcd,
                    vdc: o.vdc!,
                    ...(o.catalog ? { catalog: o.catalog } : {}),
                    ...(o.vdcNetwork ? { network: o.vdcNetwork } : {}),
                  },
                }
              : {}),
            json: o.json === true,
          });
        } finally {
          await vcd?.logout();
        }
        return;
      }
      const client = await connect(o);
      const tty = !o.json && (io.out as NodeJS.WriteStream).isTTY === true;
      const sink: ProgressSink | undefined = o.json
        ? jsonProgress(io.out)
        : tty
          ? ttyProgress(io.out as NodeJS.WriteStream)
          : undefined;
      // The check of the NAS is shown too (with --json as `verify` events; on a terminal as
      // `verify/<item>/<file>.age` lines): before the import, and in one pass each disk's segments
      // as they are checked during its upload.
      const verifySink = o.json ? jsonProgress(io.out, Date.now, 'verify') : sink;
      // Ctrl-C stops the import cleanly from the point where it creates something; during the
      // verification of the NAS (which creates nothing, and cannot be cut yet) it ends the process.
      const stop = new AbortController();
      let interrupt: Interrupt | undefined;
      let plan: ReturnType<typeof importPlan> = [];
      try {
        const results = await importTransfer({
          client,
          signal: stop.signal,
          onVerified: (manifest) => {
            interrupt = interruptOnSignals(stop);
            // The whole import's size from the signed manifest: the overall line's total (#19).
            plan = importPlan(manifest.items);
            sink?.planFiles?.(plan);
          },
          nas: o.nas,
          transferId,
          identities,
          agentCertPem: signer.certPem,
          ...(site ? { site } : {}),
          placement,
          stateDir: o.stateDir,
          parallel: o.parallel,
          ...(o.verifyFirst ? { verifyFirst: true } : {}),
          ...(vcd
            ? {
                vcd: {
                  client: vcd,
                  target: (item) => ({
                    vdc: o.vdc!,
                    placement: item.kind === 'template' ? ('catalog' as const) : ('vapp' as const),
                    ...(o.catalog ? { catalog: o.catalog } : {}),
                    ...(o.vdcNetwork ? { network: o.vdcNetwork } : {}),
                    deploy: o.powerOn === true,
                    powerOn: o.powerOn === true,
                  }),
                },
              }
            : {}),
          ...(sink ? { onProgress: (p) => sink.update(p) } : {}),
          ...(verifySink
            ? {
                onVerifyProgress: (p) => verifySink.update(verifyProgress(p, o.json)),
                onSegmentProgress: (p) => verifySink.update(verifyProgress(p, o.json)),
              }
            : {}),
          onItem: (r) => {
            // An item imported by an earlier run moves nothing: its planned files count as kept.
            if (r.skipped)
              for (const f of plan.filter((f) => f.item === r.item.id))
                sink?.update({
                  item: f.item,
                  file: f.file,
                  bytes: f.bytes,
                  total: f.bytes,
                  done: true,
                  skipped: true,
                });
            if (o.json) io.out.write(`${JSON.stringify(itemEvent(r))}\n`);
          },
        });
        sink?.end();
        // Stopped, not failed: what completed is journaled, and a rerun goes on from there.
        stop.signal.throwIfAborted();
        const failed = results.filter((r) => !r.ok);
        if (!o.json) {
          for (const r of results) {
            io.out.write(
              r.ok
                ? `${r.item.id} ${r.item.name}: ${r.skipped ? 'already imported' : 'imported'} as '${r.record!.name}' (${r.record!.entity.value})${membersText(r)}${onboardText(r)}\n`
                : r.record
                  ? // In vCenter but not where it was asked to go: said as such, not as imported (#19).
                    `${r.item.id} ${r.item.name}: in vCenter as '${r.record.name}' (${r.record.entity.value})${membersText(r)}, but NOT onboarded into vCloud Director (see below)\n`
                  : '',
            );
          }
        }
        for (const r of failed)
          io.err.write(`odt: ${r.item.id} (${r.item.name}) failed: ${withHint(r.error!)}\n`);
        if (failed.length > 0) {
          io.err.write(
            `odt: ${failed.length} of ${results.length} items failed; fix the cause and run the same command again (imported items are skipped).\n`,
          );
          process.exitCode = exitCodes.itemsFailed;
        }
      } finally {
        interrupt?.dispose();
        await client.logout();
        await vcd?.logout();
      }
    });
}

const itemEvent = (r: ItemImportResult) => ({
  event: 'item',
  item: r.item.id,
  name: r.item.name,
  ok: r.ok,
  // Where its VMs are in vCenter, also when the onboarding after failed (#19).
  ...(r.record
    ? {
        vm: r.record.entity.value,
        vcenterName: r.record.name,
        vcenterVms: vcenterVms(r),
        skipped: r.skipped ?? false,
      }
    : {}),
  ...(r.onboarded
    ? {
        onboarded: {
          name: r.onboarded.name,
          vapp: r.onboarded.vappHref ?? null,
          template: r.onboarded.templateHref ?? null,
          poweredOn: r.onboarded.poweredOn,
        },
      }
    : {}),
  ...(r.failedAt ? { failedAt: r.failedAt } : {}),
  ...(r.ok ? {} : { error: r.error!.message, code: codeOf(r.error) ?? null }),
});

/** The name and moref of every VM the item is in vCenter (a vApp: its members). */
const vcenterVms = (r: ItemImportResult) =>
  (r.record!.members ?? [{ name: r.record!.name, entity: r.record!.entity }]).map((m) => ({
    name: m.name,
    vm: m.entity.value,
  }));

/** A vApp's member VMs in vCenter, by name. */
function membersText(r: ItemImportResult): string {
  const members = r.record!.members;
  return members ? `, VMs ${members.map((m) => `'${m.name}' (${m.entity.value})`).join(', ')}` : '';
}

function onboardText(r: ItemImportResult): string {
  if (!r.onboarded) return '';
  const where = r.onboarded.templateHref ? 'catalog template' : 'vApp';
  return `; onboarded into vCloud Director as the ${where} '${r.onboarded.name}'${r.onboarded.poweredOn ? ', powered on' : ''}${r.onboarded.skipped ? ' (earlier)' : ''}`;
}

async function connectVcd(o: ImportFlags): Promise<VcdClient> {
  const password = readEnv().ODT_VCD_PASSWORD;
  const missing = [
    ...(o.vcdUsername ? [] : [{ path: 'vcd-username', message: 'is required with --vcd' }]),
    ...(o.vdc ? [] : [{ path: 'vdc', message: 'is required with --vcd' }]),
    ...(password
      ? []
      : [{ path: 'ODT_VCD_PASSWORD', message: 'is not set; export it with the vCloud Director password' }]),
  ];
  if (missing.length > 0) throw new ValidationError('The vCloud Director options', missing);
  return VcdClient.connect({
    url: o.vcd!,
    username: o.vcdUsername!,
    password: password!,
    trust: o.vcdThumbprint
      ? { kind: 'thumbprint', thumbprint: o.vcdThumbprint }
      : o.insecure
        ? { kind: 'insecure' }
        : { kind: 'system' },
  });
}

/**
 * A file's verification as a progress line: with --json its item and its path in the transfer
 * folder; on a terminal `verify/<path>`.
 */
function verifyProgress(p: VerifyProgress, json: boolean | undefined): FileProgress {
  return {
    item: json ? p.item : 'verify',
    file: p.file,
    bytes: p.bytes,
    total: p.total,
    ...(p.done ? { done: true } : {}),
  };
}
