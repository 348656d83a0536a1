import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { type Command, Option } from 'commander';
import { type ExportPlan, exportTransfer, planTransferExport } from '../../agent/export/export-transfer.ts';
import { initAgentIdentity, loadAgentIdentity } from '../../agent/identity/agent-identity.ts';
import { initNodeIdentity } from '../../agent/identity/node-identity.ts';
import { describeNas, inspectNas } from '../../agent/nas/nas-check.ts';
import { formatBytes } from '../../agent/nas/space-check.ts';
import { parseIdentityFile, parseRecipient } from '../../agent/package/age/keys.ts';
import { captureText, deltaSync, type ManifestItem } from '../../agent/package/transfer-manifest.ts';
import { transferFolderProblem, verifyTransfer } from '../../agent/package/verify.ts';
import { sdkUrl, VimClient } from '../../agent/vsphere/client.ts';
import { readInventory } from '../../agent/vsphere/inventory.ts';
import { livePrivileges, missingPrivilegesOn } from '../../agent/vsphere/live-capture.ts';
import type { TlsTrust } from '../../agent/vsphere/wire/tls.ts';
import { codeOf } from '../../core/errors.ts';
import { idSchema, OdtError, parseOrThrow, ValidationError } from '../../core/index.ts';
import { readEnv, vcenterPassword } from '../env.ts';
import { exitCodes } from '../exit-codes.ts';
import { identityFileHelp, readFlagFile } from '../flag-file.ts';
import { withHint } from '../hints.ts';
import { interruptOnSignals } from '../interrupt.ts';
import type { Io } from '../io.ts';
import { jsonProgress, type ProgressSink, ttyProgress } from '../progress.ts';
import {
  type SignerFlags,
  SignerNotPinnedError,
  signerCertificate,
  signerOptionHelp,
} from '../trusted-signer.ts';
import { nasFsLine } from './nas.ts';
import { registerNodeCheck } from './node-check.ts';

export interface VcenterFlags {
  vcenter: string;
  username: string;
  thumbprint?: string;
  insecure?: boolean;
}

export const addVcenterOptions = (cmd: Command): Command =>
  cmd
    .requiredOption('--vcenter <url>', 'vCenter URL or host (password from ODT_VCENTER_PASSWORD)')
    .requiredOption('--username <user>', 'vCenter user, e.g. administrator@vsphere.local')
    .addOption(
      new Option('--thumbprint <sha256>', "pin the vCenter certificate's SHA-256 thumbprint").conflicts(
        'insecure',
      ),
    )
    .option('--insecure', 'do not verify the vCenter certificate (test labs only)');

const trustOf = (f: VcenterFlags): TlsTrust =>
  f.thumbprint
    ? { kind: 'thumbprint', thumbprint: f.thumbprint }
    : f.insecure
      ? { kind: 'insecure' }
      : { kind: 'system' };

export async function connect(f: VcenterFlags): Promise<VimClient> {
  const password = vcenterPassword(readEnv());
  if (f.thumbprint && sdkUrl(f.vcenter).protocol === 'http:') {
    throw new OdtError(
      'VALIDATION_FAILED',
      `--thumbprint pins a TLS certificate, and ${f.vcenter} is plain http: give its https:// URL, or drop --thumbprint.`,
    );
  }
  return VimClient.connect({ url: f.vcenter, username: f.username, password, trust: trustOf(f) });
}

/** A transfer id when none is given: date and randomness, valid as a folder and Slack value. */
export const newTransferId = (now = new Date()): string =>
  `tr-${now.toISOString().slice(0, 10).replaceAll('-', '')}-${randomBytes(3).toString('hex')}`;

const gib = (n: number) => `${(n / 2 ** 30).toFixed(n >= 2 ** 30 ? 1 : 3)} GiB`;

export function registerDataPath(program: Command, io: Io): void {
  const node = program.command('node').description('the ODT node (provider side)');
  registerNodeCheck(node, io);
  node
    .command('init')
    .description("create the node's age identity; prints the recipient export agents encrypt to")
    .requiredOption('--dir <dir>', 'state folder of the ODT node')
    .action(async (o: { dir: string }) => {
      const { recipient, path, created } = await initNodeIdentity(o.dir);
      io.out.write(
        `${created ? 'created' : 'kept existing'} identity ${path} (mode 0600; never copy it off this node)\n`,
      );
      io.out.write(`${recipient}\n`);
    });

  const agent = program.command('agent').description('the export agent (customer side)');
  agent
    .command('init')
    .description("create the agent's key and X.509 certificate")
    .requiredOption('--dir <dir>', 'state folder of the agent')
    .option('--name <name>', 'common name in the certificate', 'sneakernet-agent')
    .action(async (o: { dir: string; name: string }) => {
      const { identity, created } = await initAgentIdentity(o.dir, { commonName: o.name });
      io.out.write(`${created ? 'created' : 'kept existing'} agent identity in ${o.dir}\n`);
      io.out.write(`certificate SHA-256 ${identity.certSha256}\n`);
    });

  addVcenterOptions(program.command('inventory').description('list VMs, templates and vApps of a vCenter'))
    .option('--json', 'one JSON document instead of a table')
    .action(async (o: VcenterFlags & { json?: boolean }) => {
      const client = await connect(o);
      try {
        const items = await readInventory(client);
        // A running VM is exported live (issue #21): what that needs, and what this user lacks.
        const needs = livePrivileges();
        const running = items.filter((i) => i.kind === 'vm' && i.powerState !== 'poweredOff');
        const answers = await missingPrivilegesOn(
          client,
          running.map((i) => i.ref),
          needs,
        );
        const lacking = new Map(running.map((i) => [i.path, answers.get(i.ref.value)] as const));
        if (o.json) {
          io.out.write(
            `${JSON.stringify(
              items.map(({ ref, ...rest }) => ({
                ...rest,
                moref: ref.value,
                ...(lacking.has(rest.path)
                  ? { liveExport: { needs, missing: lacking.get(rest.path) ?? null } }
                  : {}),
              })),
              null,
              2,
            )}\n`,
          );
          return;
        }
        const rows = items.map((i) => [
          i.kind,
          i.path,
          i.powerState ?? '',
          String(i.disks.length),
          gib(i.sizeBytes),
          i.networks.join(','),
        ]);
        const head = ['KIND', 'PATH', 'POWER', 'DISKS', 'SIZE', 'NETWORKS'];
        const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
        for (const r of [head, ...rows])
          io.out.write(
            `${r
              .map((v, c) => v.padEnd(widths[c]!))
              .join('  ')
              .trimEnd()}\n`,
          );
        if (lacking.size > 0) {
          io.out.write(
            `\n${lacking.size} running VM(s) are exported live, from a snapshot through a linked clone; that needs on each: ${needs.join(', ')} (and VirtualMachine.Config.ChangeTracking with --enable-cbt)\n`,
          );
          for (const [path, missing] of lacking)
            io.out.write(
              missing === undefined
                ? `  ${path}: this vCenter cannot say whether the user has them\n`
                : missing.length === 0
                  ? `  ${path}: this user has them\n`
                  : `  ${path}: this user LACKS ${missing.join(', ')} (grant them, or power the VM off to export it cold)\n`,
            );
        }
      } finally {
        await client.logout();
      }
    });

  addVcenterOptions(
    program.command('export').description('export items into an encrypted, signed package on the NAS'),
  )
    .option(
      '--item <name>',
      'VM, template or vApp name or inventory path (repeatable; at least one)',
      collect,
      [],
    )
    .requiredOption('--nas <dir>', 'the NAS: its mount point, marked once with `odt nas init`')
    .option('--nas-plain-folder', nasPlainFolderHelp)
    .requiredOption('--recipient <age1…>', "the ODT node's age recipient")
    .requiredOption(
      '--site <name>',
      'the customer site exporting (the one its agent is enrolled for): signed into transfer.json',
    )
    .option('--transfer <id>', 'transfer id (generated and printed when absent)')
    .option('--agent-dir <dir>', "the agent's key and certificate", './.odt/agent')
    .option('--parallel <n>', 'files in flight at once', (v) => Number.parseInt(v, 10), 2)
    .option(
      '--cold-only',
      'refuse a VM that is not powered off (as before) instead of exporting it live from a snapshot',
    )
    .option(
      '--enable-cbt',
      "switch Changed Block Tracking on where it is off, so the package records each disk's changeId for a later delta sync (changes the customer's VM)",
    )
    .option(
      '--dry-run',
      'check everything that touches nothing (vCenter, items, power state, NAS, space) and print what the export would do',
    )
    .option('--json', 'one JSON line per progress event')
    .action(
      async (
        o: VcenterFlags & {
          item: string[];
          nas: string;
          nasPlainFolder?: boolean;
          recipient: string;
          site: string;
          transfer?: string;
          agentDir: string;
          parallel: number;
          coldOnly?: boolean;
          enableCbt?: boolean;
          dryRun?: boolean;
          json?: boolean;
        },
      ) => {
        if (o.item.length === 0) {
          throw new ValidationError('odt export', [
            { path: '--item', message: 'names no VM, template or vApp: give at least one (repeatable)' },
          ]);
        }
        parseRecipient(o.recipient);
        if (!Number.isInteger(o.parallel) || o.parallel < 1 || o.parallel > 32) {
          throw new ValidationError('--parallel', [
            { path: 'parallel', message: 'must be a whole number from 1 to 32' },
          ]);
        }
        const site = parseOrThrow(idSchema, o.site, '--site');
        const transferId = o.transfer ? parseOrThrow(idSchema, o.transfer, '--transfer') : newTransferId();
        // The exact command that resumes this transfer: printed before the first byte, so that
        // even a run killed with SIGKILL leaves it on the screen (docs/decisions.md, "Resume").
        const rerun = rerunCommand(argsOf(program), transferId);
        if (!o.transfer && !o.dryRun) {
          if (o.json) io.out.write(`${JSON.stringify({ event: 'transfer', transfer: transferId, rerun })}\n`);
          else io.out.write(`transfer ${transferId} (if it stops, resume it with: ${rerun})\n`);
        }
        const agentIdentity = await loadAgentIdentity(o.agentDir);
        const client = await connect(o);
        if (o.dryRun) {
          try {
            const plan = await planTransferExport({
              client,
              nas: o.nas,
              transferId,
              items: o.item,
              nasPlainFolder: o.nasPlainFolder ?? false,
              coldOnly: o.coldOnly === true,
            });
            writeExportPlan(io, plan, transferId, o.json === true);
            if (plan.items.some((i) => i.refusal)) process.exitCode = exitCodes.itemsFailed;
          } finally {
            await client.logout();
          }
          return;
        }
        const tty = !o.json && (io.out as NodeJS.WriteStream).isTTY === true;
        const sink: ProgressSink | undefined = o.json
          ? jsonProgress(io.out)
          : tty
            ? ttyProgress(io.out as NodeJS.WriteStream)
            : undefined;
        const interrupt = interruptOnSignals();
        try {
          const result = await exportTransfer({
            client,
            nas: o.nas,
            nasPlainFolder: o.nasPlainFolder ?? false,
            transferId,
            items: o.item,
            recipient: o.recipient,
            site,
            agent: agentIdentity,
            parallel: o.parallel,
            coldOnly: o.coldOnly === true,
            enableChangeTracking: o.enableCbt === true,
            signal: interrupt.signal,
            onWarning: (w) => {
              if (o.json) io.out.write(`${JSON.stringify({ event: 'warning', message: w })}\n`);
              else io.err.write(`odt: warning: ${w}\n`);
            },
            ...(sink ? { onProgress: (p) => sink.update(p), onPlan: (f) => sink.planFiles?.(f) } : {}),
            onItem: (itemId, outcome) => {
              if (o.json) {
                io.out.write(
                  `${JSON.stringify({ event: 'item', item: itemId, ok: outcome.ok, ...(outcome.ok ? {} : { error: outcome.error.message, code: codeOf(outcome.error) ?? null }) })}\n`,
                );
              }
            },
          }).catch((error: unknown) => {
            // Stopped by a signal: say how to resume before the interruption is reported.
            if (interrupt.signal.aborted) io.err.write(`odt: stopped; resume with: ${rerun}\n`);
            throw error;
          });
          sink?.end();
          // Stopped, not failed: the items it cut are not reported as failures.
          if (interrupt.signal.aborted) {
            io.err.write(`odt: stopped; resume with: ${rerun}\n`);
            interrupt.signal.throwIfAborted();
          }
          for (const f of result.failures)
            io.err.write(`odt: ${f.itemId} (${f.source}) failed: ${withHint(f.error)}\n`);
          if (result.failures.length > 0) {
            io.err.write(
              result.items.length > 0
                ? `odt: ${result.failures.length} of ${o.item.length} items failed; fix the cause and resume with this command (complete files are kept, only the rest is sent):\n  ${rerun}\n`
                : `odt: ${result.failures.length} of ${o.item.length} items failed and nothing was kept; fix the cause and run: ${rerun}\n`,
            );
            process.exitCode = exitCodes.itemsFailed;
            return;
          }
          writeCaptures(io, result.items, o.json === true);
          if (!o.json)
            io.out.write(
              `exported ${result.items.length} items to ${result.root} on ${describeNas(result.nas)}\n`,
            );
        } finally {
          interrupt.dispose();
          await client.logout();
        }
      },
    );

  program
    .command('verify')
    .description('check a transfer on the NAS: signature, sizes, digests (and plaintext with --identity)')
    .requiredOption('--nas <dir>', 'NAS mount point')
    .requiredOption('--transfer <id>', 'transfer id')
    .option('--identity <file>', "the ODT node's age identity file: also decrypt and check every file")
    .option('--agent-cert <file>', signerOptionHelp.agentCert)
    .option('--trust-nas-signer', signerOptionHelp.trustNasSigner)
    .option('--site <name>', 'the customer site the transfer is from: the signed manifest must name it')
    .option('--json', 'the report as JSON')
    .action(
      async (
        o: SignerFlags & { nas: string; transfer: string; identity?: string; site?: string; json?: boolean },
      ) => {
        if (!o.agentCert && !o.trustNasSigner) throw new SignerNotPinnedError('odt verify');
        const identities = o.identity
          ? parseIdentityFile(await readFlagFile('--identity', o.identity, identityFileHelp))
          : undefined;
        const root = join(o.nas, parseOrThrow(idSchema, o.transfer, '--transfer'));
        const site = o.site === undefined ? undefined : parseOrThrow(idSchema, o.site, '--site');
        // A wrong flag file is named before the NAS is looked at (the flags are all checked first).
        const pinned = o.agentCert ? await signerCertificate(o, root, io, 'odt verify') : undefined;
        // A transfer that is not on the NAS is a wrong --nas or --transfer (exit 2), as for
        // `odt import`; not a package that failed its check (4).
        const missing = await transferFolderProblem(root);
        if (missing) throw new OdtError('NOT_FOUND', `${missing} (--nas ${o.nas}, --transfer ${o.transfer})`);
        const signer = pinned ?? (await signerCertificate(o, root, io, 'odt verify'));
        // Which NAS this is: its marker (odt nas init) names it.
        const nas = await inspectNas(o.nas).catch(() => undefined);
        const report = await verifyTransfer({
          root,
          ...(identities ? { identities } : {}),
          agentCertPem: signer.certPem,
          ...(site ? { expected: { site } } : {}),
        });
        if (o.json) {
          io.out.write(
            `${JSON.stringify({ ok: report.ok, signerPinned: signer.pinned, nas: nas ? { path: nas.path, marker: nas.marker ?? null } : null, files: report.files, problems: report.problems }, null, 2)}\n`,
          );
        } else {
          if (nas) io.out.write(`on ${describeNas(nas)}\n`);
          for (const f of report.files) io.out.write(`${f.ok ? 'ok  ' : 'FAIL'} ${f.file}\n`);
          for (const p of report.problems) io.err.write(`odt: ${p.file}: ${p.message} [${p.code}]\n`);
          if (report.ok) {
            io.out.write(
              `transfer ${o.transfer} is intact (${report.files.length} files${identities ? ', decrypted and checked' : ''}${signer.pinned ? ', signer pinned' : '; signer taken from the NAS with --trust-nas-signer: NOT authenticated'})\n`,
            );
          }
        }
        if (!report.ok) process.exitCode = exitCodes.notTrusted;
      },
    );
}

export const nasPlainFolderHelp =
  'accept a --nas folder without the NAS marker of `odt nas init` (labs, tests): nothing then tells a NAS that failed to mount from the empty folder under it';

/**
 * The arguments the command line gave (`odt` excluded). Commander keeps them as `rawArgs` without
 * declaring it in its types; parseAsync(argv, { from: 'user' }) sets it to exactly those.
 */
const argsOf = (program: Command): readonly string[] =>
  (program as unknown as { rawArgs?: readonly string[] }).rawArgs ?? [];

/** A word as a POSIX shell reads it back: bare when safe, else in single quotes. */
export const shellWord = (w: string): string =>
  /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", "'\\''")}'`;

/**
 * The command that reruns this export as the same transfer: the arguments given, with
 * `--transfer <id>` added when absent and `--dry-run` dropped.
 */
export function rerunCommand(args: readonly string[], transferId: string): string {
  const kept = args.filter((a) => a !== '--dry-run');
  const hasTransfer = kept.some((a) => a === '--transfer' || a.startsWith('--transfer='));
  return ['odt', ...kept, ...(hasTransfer ? [] : ['--transfer', transferId])].map(shellWord).join(' ');
}

/** What `odt export --dry-run` found: the NAS, each item and its sizes, and the space. */
function writeExportPlan(io: Io, plan: ExportPlan, transferId: string, json: boolean): void {
  if (json) {
    io.out.write(
      `${JSON.stringify(
        {
          dryRun: true,
          transfer: transferId,
          root: plan.root,
          resuming: plan.resuming,
          nas: {
            path: plan.nas.path,
            marker: plan.nas.marker ?? null,
            mountPoint: plan.nas.mountPoint,
            fs: plan.nas.fs,
          },
          items: plan.items.map((i) => ({
            id: i.itemId,
            kind: i.item.kind,
            source: i.item.path,
            powerState: i.item.powerState ?? null,
            files: i.files,
            ...(i.refusal ? { refusal: i.refusal } : {}),
          })),
          space: plan.space,
        },
        null,
        2,
      )}\n`,
    );
    return;
  }
  io.out.write(`dry run: nothing was written or created, here or in the vCenter\n`);
  io.out.write(`${describeNas(plan.nas)}: ${nasFsLine(plan.nas)}\n`);
  io.out.write(
    `transfer ${transferId} -> ${plan.root} (${plan.resuming ? 'there already: its complete files would be kept' : 'new'})\n`,
  );
  for (const i of plan.items) {
    const prov = i.files.reduce((s, f) => s + f.provisionedBytes, 0);
    const est = i.files.reduce((s, f) => s + f.estimatedBytes, 0);
    io.out.write(
      `${i.itemId}  ${i.item.kind}  ${i.item.path}  ${i.item.powerState ?? ''}  ${i.files.length} disk(s), estimated ${formatBytes(est)}, provisioned ${formatBytes(prov)}: ${i.refusal ? `would be REFUSED: ${i.refusal.message}` : i.item.kind === 'vm' && i.item.powerState !== 'poweredOff' ? 'would be exported live, from a snapshot through a linked clone (it keeps running)' : 'would be exported'}\n`,
    );
  }
  const s = plan.space;
  io.out.write(
    `space: estimated ${formatBytes(s.estimatedBytes)}, provisioned ${formatBytes(s.provisionedBytes)}; needs about ${formatBytes(s.neededBytes)} of ${formatBytes(s.freeBytes)} free\n`,
  );
  for (const w of s.warnings) io.err.write(`odt: warning: ${w}\n`);
}

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Per item: how it was read (live from a snapshot, or cold) and whether a delta sync can start from it later. */
function writeCaptures(io: Io, items: readonly ManifestItem[], json: boolean): void {
  for (const i of items) {
    const sync = deltaSync(i.capture);
    if (json)
      io.out.write(
        `${JSON.stringify({ event: 'capture', item: i.id, source: i.source, capture: i.capture ?? null, read: captureText(i.capture), deltaSync: sync.ready })}\n`,
      );
    else io.out.write(`${i.id} ${i.source}: ${captureText(i.capture)}; delta sync later: ${sync.text}\n`);
  }
}
