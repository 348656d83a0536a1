import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Command, Option } from 'commander';
import type { Endpoint } from '../../agent/runtime/roles.ts';
import type { AgentRole } from '../../agent/runtime/run-agent.ts';
import type { TlsTrust } from '../../agent/vsphere/wire/tls.ts';
import { ValidationError } from '../../core/errors.ts';
import type { AgentRecord, EnrollmentCode, SiteInventory } from '../../core/ports/agents.ts';
import type { LogLevel } from '../../core/ports/logger.ts';
import { readEnv, vcenterPassword } from '../env.ts';
import { formatMs, parseCount, parseDurationFlag, parseSiteFlag } from '../flags.ts';
import type { Io } from '../io.ts';
import { commandLogger, logLevelOption } from '../logging.ts';
import { call, defaultStateDir } from './control.ts';
import { nasPlainFolderHelp } from './data-path.ts';

/** A duration flag whose default `--help` shows as a duration (`15m`), not in ms. */
const durationOption = (flags: string, description: string, defaultMs: number) =>
  new Option(flags, description).argParser(parseDurationFlag).default(defaultMs, formatMs(defaultMs));

interface RunFlags {
  server?: string;
  stateDir?: string;
  role: 'export' | 'import';
  dir: string;
  code?: string;
  site?: string;
  name?: string;
  vcenter: string;
  username: string;
  thumbprint?: string;
  insecure?: boolean;
  nas: string;
  nasPlainFolder?: boolean;
  recipient?: string;
  nodeCert?: string;
  identity?: string;
  nodeDir?: string;
  datacenter?: string;
  datastore?: string;
  pool?: string;
  folder?: string;
  network: string;
  vcd?: string;
  vcdUsername?: string;
  vcdThumbprint?: string;
  vdcNetwork?: string;
  parallel?: number;
  coldOnly?: boolean;
  enableCbt?: boolean;
  pollMax: number;
  inventoryEvery: number;
  once?: boolean;
  logLevel?: LogLevel;
}

const trust = (thumbprint: string | undefined, insecure: boolean | undefined): TlsTrust =>
  thumbprint ? { kind: 'thumbprint', thumbprint } : insecure ? { kind: 'insecure' } : { kind: 'system' };

export function registerAgentRun(program: Command, io: Io): void {
  const agent =
    program.commands.find((c) => c.name() === 'agent') ??
    program.command('agent').description('on-prem agents (export agent, ODT node)');

  agent
    .command('enroll')
    .description('issue a one-time enrollment code for an agent of a site (control plane)')
    .requiredOption('--site <name>', 'the site the agent will serve', parseSiteFlag)
    .addOption(durationOption('--ttl <duration>', 'how long the code is valid', 15 * 60_000))
    .option('--state-dir <dir>', 'state folder of odt serve (which issues the code)', defaultStateDir)
    .action(async (o: { site: string; ttl: number; stateDir: string }) => {
      const code = (await call(
        o.stateDir,
        'POST',
        '/agents/enrollments',
        { site: o.site, ttlMs: o.ttl },
        { admin: true },
      )) as EnrollmentCode;
      io.out.write(`${code.code}\n`);
      io.err.write(
        `odt: enrollment code for site ${code.site}, valid once for ${formatMs(o.ttl)}, until ${code.expiresAt}; start the agent with --code\n`,
      );
    });

  agent
    .command('revoke <id>')
    .description('revoke an enrolled agent: its next call is refused')
    .option('--state-dir <dir>', 'state folder of odt serve', defaultStateDir)
    .action(async (id: string, o: { stateDir: string }) => {
      await call(o.stateDir, 'POST', `/agents/${encodeURIComponent(id)}/revoke`, {}, { admin: true });
      io.out.write(`agent ${id} revoked\n`);
    });

  agent
    .command('list')
    .description('enrolled agents')
    .option('--site <name>', 'only this site', parseSiteFlag)
    .option('--state-dir <dir>', 'state folder of odt serve', defaultStateDir)
    .option('--json', 'as JSON')
    .action(async (o: { site?: string; stateDir: string; json?: boolean }) => {
      const list = (await call(
        o.stateDir,
        'GET',
        `/agents${o.site ? `?site=${encodeURIComponent(o.site)}` : ''}`,
        undefined,
        { admin: true },
      )) as Omit<AgentRecord, 'certPem'>[];
      if (o.json) io.out.write(`${JSON.stringify(list, null, 2)}\n`);
      else
        for (const a of list)
          io.out.write(
            `${a.id}  ${a.site.padEnd(16)} ${a.revoked ? 'REVOKED ' : 'active  '} ${a.name}  ${a.certSha256.slice(0, 16)}…  ${a.enrolledAt}\n`,
          );
    });

  agent
    .command('inventory')
    .description("a site's inventory as its export agent last reported it")
    .requiredOption('--site <name>', 'the site', parseSiteFlag)
    .option('--state-dir <dir>', 'state folder of odt serve', defaultStateDir)
    .action(async (o: { site: string; stateDir: string }) => {
      const inv = (await call(
        o.stateDir,
        'GET',
        `/sites/${encodeURIComponent(o.site)}/inventory`,
        undefined,
        { admin: true },
      )) as SiteInventory;
      io.out.write(`${JSON.stringify(inv, null, 2)}\n`);
    });

  agent
    .command('run')
    .description('run an agent: enroll once, then poll for its site’s tasks and do them')
    .option('--server <url>', 'agent API URL (default: agentUrl of serve.json in --state-dir)')
    .option('--state-dir <dir>', 'state folder of a local odt serve, to find the agent API')
    .addOption(
      new Option('--role <role>', 'export (customer site) or import (ODT node)')
        .choices(['export', 'import'])
        .makeOptionMandatory(),
    )
    .requiredOption('--dir <dir>', "the agent's folder: key, certificate, enrollment, current task")
    .option('--code <code>', 'one-time enrollment code (first start only)')
    .option('--site <name>', 'expected site (refuses to run for another)', parseSiteFlag)
    .option('--name <name>', 'name of this agent (certificate common name)')
    .requiredOption('--vcenter <url>', 'vCenter URL (password from ODT_VCENTER_PASSWORD)')
    .requiredOption('--username <user>', 'vCenter user')
    .addOption(
      new Option('--thumbprint <sha256>', "pin the vCenter certificate's SHA-256").conflicts('insecure'),
    )
    .option('--insecure', 'do not verify TLS certificates (test labs only)')
    .requiredOption('--nas <dir>', 'NAS mount point (export: marked once with `odt nas init`)')
    .option('--nas-plain-folder', `export: ${nasPlainFolderHelp}`)
    .option(
      '--node-cert <file>',
      "export: the ODT node's certificate (its agent.crt.pem; required with --role export): each transfer's key must be signed by it",
    )
    // Gone with the key per transfer (issue #18); kept to say so instead of "unknown option".
    .addOption(new Option('--recipient <age1…>').hideHelp())
    .option('--identity <file>', "import: the ODT node's age identity file (required with --role import)")
    .option('--node-dir <dir>', 'import: the ODT node state folder (import journal)', './.odt/node')
    .option('--datacenter <name>', 'import: target datacenter')
    .option('--datastore <name>', 'import: target datastore')
    .option('--pool <path>', 'import: resource pool')
    .option('--folder <path>', 'import: VM folder')
    .option('--network <name>', 'import: port group for every NIC', 'VM Network')
    .option('--vcd <url>', 'import: vCloud Director URL (password from ODT_VCD_PASSWORD)')
    .option('--vcd-username <user@System>', 'import: vCloud Director provider user')
    .option('--vcd-thumbprint <sha256>', "import: pin vCloud Director's certificate SHA-256")
    .option('--vdc-network <name>', 'import: org VDC network for items whose target names none')
    .option('--parallel <n>', 'files in flight at once', parseCount)
    .option('--cold-only', 'export: refuse a running VM instead of exporting it live from a snapshot')
    .option(
      '--enable-cbt',
      "export: switch Changed Block Tracking on where it is off, so the package records each disk's changeId (changes the customer's VM)",
    )
    .addOption(durationOption('--poll-max <duration>', 'longest wait between polls', 60_000))
    .addOption(
      durationOption(
        '--inventory-every <duration>',
        'export: report the inventory this often (0: at start only)',
        15 * 60_000,
      ),
    )
    .option('--once', 'exit after one task (tests, cron)')
    .addOption(logLevelOption())
    .action(async (o: RunFlags) => {
      const env = readEnv();
      // The passwords and the enrollment code are masked in its log lines wherever they appear.
      const log = await commandLogger(io, o.logLevel, env, { process: 'agent', role: o.role }, [
        env.ODT_VCENTER_PASSWORD,
        env.ODT_VCD_PASSWORD,
        o.code,
      ]);
      let server = o.server;
      if (!server && o.stateDir) {
        const serve = JSON.parse(await readFile(join(o.stateDir, 'serve.json'), 'utf8')) as {
          agentUrl?: string;
        };
        server = serve.agentUrl;
      }
      if (!server) {
        throw new ValidationError('odt agent run', [
          { path: 'server', message: 'give --server <agent API URL>' },
        ]);
      }
      const vcenter: Endpoint = {
        url: o.vcenter,
        username: o.username,
        password: vcenterPassword(env),
        trust: trust(o.thumbprint, o.insecure),
      };
      // The agent's code is loaded when an agent runs, not for every command.
      const [{ exportRole, importRole }, { runAgent }] = await Promise.all([
        import('../../agent/runtime/roles.ts'),
        import('../../agent/runtime/run-agent.ts'),
      ]);
      let role: AgentRole;
      if (o.role === 'export') {
        if (o.recipient) {
          throw new ValidationError('--role export', [
            {
              path: 'recipient',
              message:
                "is no longer taken: the ODT node makes a key for each transfer and signs it; give --node-cert with the node's certificate instead",
            },
          ]);
        }
        if (!o.nodeCert) {
          throw new ValidationError('--role export', [
            {
              path: 'node-cert',
              message:
                "is required: the ODT node's certificate (agent.crt.pem of its --dir; check its SHA-256 with `odt agent list`), which must sign each transfer's recipient",
            },
          ]);
        }
        const { readNodeCertificate } = await import('../../agent/identity/transfer-key.ts');
        role = exportRole({
          vcenter,
          nas: o.nas,
          nodeCertPem: await readNodeCertificate(o.nodeCert),
          dir: o.dir,
          ...(o.parallel ? { parallel: o.parallel } : {}),
          ...(o.nasPlainFolder ? { nasPlainFolder: true } : {}),
          ...(o.coldOnly ? { coldOnly: true } : {}),
          ...(o.enableCbt ? { enableChangeTracking: true } : {}),
        });
      } else {
        if (!o.identity)
          throw new ValidationError('--role import', [{ path: 'identity', message: 'is required' }]);
        if (o.vcd && (!o.vcdUsername || !env.ODT_VCD_PASSWORD)) {
          throw new ValidationError('The vCloud Director options', [
            { path: 'vcd-username / ODT_VCD_PASSWORD', message: 'are required with --vcd' },
          ]);
        }
        role = importRole({
          vcenter,
          nas: o.nas,
          identityFile: o.identity,
          stateDir: o.nodeDir ?? './.odt/node',
          dir: o.dir,
          placement: {
            ...(o.datacenter ? { datacenter: o.datacenter } : {}),
            ...(o.datastore ? { datastore: o.datastore } : {}),
            ...(o.pool ? { pool: o.pool } : {}),
            ...(o.folder ? { folder: o.folder } : {}),
            network: o.network,
          },
          ...(o.vcd
            ? {
                vcd: {
                  url: o.vcd,
                  username: o.vcdUsername!,
                  password: env.ODT_VCD_PASSWORD!,
                  trust: trust(o.vcdThumbprint, o.insecure),
                  ...(o.vdcNetwork ? { defaultNetwork: o.vdcNetwork } : {}),
                },
              }
            : {}),
          ...(o.parallel ? { parallel: o.parallel } : {}),
        });
        // Said at start as well as at each claim (#19): every request names a VDC.
        if (!o.vcd)
          log.warn(
            'started without vCloud Director settings (--vcd): imported items stay in vCenter and end failed (VCD_NOT_CONFIGURED) until the node runs with them and the failed items are retried',
          );
      }
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      try {
        const r = await runAgent({
          server,
          dir: o.dir,
          role,
          signal: controller.signal,
          log,
          pollMaxMs: o.pollMax,
          pollMinMs: Math.min(1000, o.pollMax),
          inventoryEveryMs: o.inventoryEvery,
          ...(o.code ? { code: o.code } : {}),
          ...(o.site ? { site: o.site } : {}),
          ...(o.name ? { name: o.name } : {}),
          ...(o.once ? { maxTasks: 1 } : {}),
        });
        log.info({ tasks: r.tasks }, 'stopped');
      } finally {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
      }
    });
}
