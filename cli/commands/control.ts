import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import {
  CodedError,
  errnoOf,
  shippingEvents,
  type TaskRecord,
  type Transfer,
  ValidationError,
} from '../../core/index.ts';
import type { LogLevel } from '../../core/ports/logger.ts';
import { adminToken, readAdminToken } from '../../local/admin-token.ts';
import { writeCustodyLog } from '../custody-log.ts';
import { readEnv } from '../env.ts';
import { parsePort } from '../flags.ts';
import type { Io } from '../io.ts';
import { commandLogger, logLevelOption } from '../logging.ts';

export const defaultStateDir = './.odt';
/** The admin API's port unless --port says otherwise (localhost only). */
export const defaultPort = 8787;
/** The agent API's port unless --agent-port says otherwise, or the last start's (serve.json). */
export const defaultAgentPort = 8788;

/**
 * No control plane where the CLI looked (`NO_CONTROL_PLANE`: a state folder without serve.json,
 * often a mistyped --state-dir), or it does not answer (`NOT_RUNNING`).
 */
export class ControlPlaneUnreachableError extends CodedError<'NO_CONTROL_PLANE' | 'NOT_RUNNING'> {
  constructor(code: 'NO_CONTROL_PLANE' | 'NOT_RUNNING', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ControlPlaneUnreachableError';
  }
}

/** A refusal of `odt serve`'s API, with the service's own code (the exit code follows it). */
export class ControlApiError extends CodedError<string> {
  constructor(
    readonly status: number,
    code: string,
    message: string,
  ) {
    super(code, message);
    this.name = 'ControlApiError';
  }
}

/** Where the CLI looks for the operator's token when neither --token-file nor the variable says. */
export const defaultTokenFile = join(homedir(), '.config', 'odt', 'operator-token');

/**
 * The token a command sends: the admin token for the commands that need it (`admin`), else the
 * operator's (--token-file, ODT_OPERATOR_TOKEN_FILE, or the default file when it exists), else the
 * admin token of the state folder. An operator token file must be private to its owner (0600).
 */
async function tokenFor(stateDir: string, auth: { admin?: boolean; tokenFile?: string }): Promise<string> {
  if (auth.admin) return readAdminToken(stateDir);
  const named = auth.tokenFile ?? process.env.ODT_OPERATOR_TOKEN_FILE;
  const file = named ?? (existsSync(defaultTokenFile) ? defaultTokenFile : undefined);
  if (!file) return readAdminToken(stateDir);
  let text: string;
  try {
    const mode = (await stat(file)).mode & 0o777;
    if ((mode & 0o077) !== 0)
      throw new ValidationError('The operator token file', [
        {
          path: file,
          message: `is readable by others (mode ${mode.toString(8)}); \`chmod 600 ${file}\``,
        },
      ]);
    text = (await readFile(file, 'utf8')).trim();
  } catch (error) {
    if (error instanceof ValidationError) throw error;
    throw new ValidationError('The operator token file', [
      { path: file, message: `cannot be read (${(error as Error).message})` },
    ]);
  }
  return text;
}

/** How a command authenticates: `admin` for the registry and operators; else the operator's token. */
export interface CallAuth {
  readonly admin?: boolean;
  readonly tokenFile?: string;
}

/**
 * The admin CLI talks to `odt serve` over its localhost API, with the operator's token or the
 * state folder's admin token. Nothing is created in `stateDir`: a folder without a control plane
 * is refused.
 */
export async function call(
  stateDir: string,
  method: string,
  path: string,
  body?: unknown,
  auth: CallAuth = {},
): Promise<unknown> {
  let serve: { url: string };
  try {
    serve = JSON.parse(await readFile(join(stateDir, 'serve.json'), 'utf8')) as { url: string };
  } catch (error) {
    throw new ControlPlaneUnreachableError(
      'NO_CONTROL_PLANE',
      `no control plane in ${stateDir}${errnoOf(error) === 'ENOENT' ? '' : ` (${(error as Error).message})`}: ` +
        `check --state-dir, or start \`odt serve --state-dir ${stateDir}\` first`,
      { cause: error },
    );
  }
  const token = await tokenFor(stateDir, auth);
  let res: Response;
  try {
    res = await fetch(`${serve.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (error) {
    throw new ControlPlaneUnreachableError(
      'NOT_RUNNING',
      `odt serve at ${serve.url} does not answer (${(error as Error).message}); is it running?`,
      { cause: error },
    );
  }
  const json = (await res.json().catch(() => ({}))) as { error?: string; code?: string };
  if (!res.ok)
    throw new ControlApiError(
      res.status,
      json.code ?? `HTTP_${res.status}`,
      json.error ?? `HTTP ${res.status}`,
    );
  return json;
}

/** The enrolled agents of `site` that are not revoked. */
async function activeAgents(stateDir: string, site: string, auth: CallAuth = {}): Promise<number> {
  const list = (await call(stateDir, 'GET', `/agents?site=${encodeURIComponent(site)}`, undefined, auth)) as {
    revoked: boolean;
  }[];
  return list.filter((a) => !a.revoked).length;
}

/** What one open task of a transfer waits for: an agent of a site where none is enrolled. */
interface AgentWait {
  readonly text: string;
  readonly itemIds: readonly string[];
}

/**
 * The transfer's open tasks that no agent can take, because none is enrolled for their site:
 * its items would say `exporting` while nothing exports (issue 22).
 */
async function agentWaits(stateDir: string, t: Transfer, auth: CallAuth = {}): Promise<AgentWait[]> {
  const waits: AgentWait[] = [];
  for (const site of new Set([t.site, t.providerSite])) {
    const open = (
      (await call(
        stateDir,
        'GET',
        `/tasks?site=${encodeURIComponent(site)}`,
        undefined,
        auth,
      )) as TaskRecord[]
    ).filter((task) => task.transferId === t.id);
    if (open.length === 0 || (await activeAgents(stateDir, site, auth)) > 0) continue;
    for (const task of open) {
      const role = task.kind === 'export' ? 'an export agent' : 'an import agent (ODT node)';
      waits.push({ text: `waiting for ${role} of site ${site} (none enrolled)`, itemIds: task.itemIds });
    }
  }
  return waits;
}

const summary = (t: Transfer, waits: readonly AgentWait[] = []): string => {
  const waitOf = (itemId: string) => waits.find((w) => w.itemIds.includes(itemId))?.text;
  return [
    `${t.id}  ${t.phase}  site ${t.site} → ${t.providerSite}  requested by ${t.requester}${t.approver ? `, decided by ${t.approver}` : ''}`,
    ...(t.shipping ? [`  shipped with ${t.shipping.carrier}, tracking ${t.shipping.tracking}`] : []),
    // A task about no item in particular (the node's key) is said on its own line.
    ...waits.filter((w) => !t.items.some((i) => w.itemIds.includes(i.id))).map((w) => `  ${w.text}`),
    ...t.items.map(
      (i) =>
        `  ${i.id}  ${i.kind.padEnd(8)} ${i.source.padEnd(28)} ${waitOf(i.id) ?? i.result.state}${i.result.reason ? ` — ${i.result.reason}` : ''}${i.result.capture ? ` — ${i.result.capture.read}; delta sync later: ${i.result.capture.deltaSync ? 'yes' : 'no'}` : ''}`,
    ),
  ].join('\n');
};

/** The agent API's port of the last start (serve.json), so that agents find it again. */
async function lastAgentPort(stateDir: string): Promise<number | undefined> {
  try {
    const { agentUrl } = JSON.parse(await readFile(join(stateDir, 'serve.json'), 'utf8')) as {
      agentUrl?: string;
    };
    const port = agentUrl ? Number(new URL(agentUrl).port) : Number.NaN;
    return Number.isInteger(port) && port > 0 ? port : undefined;
  } catch {
    return undefined;
  }
}

interface ServeFlags {
  stateDir: string;
  port: number;
  agentPort: number;
  agentHost: string;
  approvers?: string;
  slackPort: number;
  logLevel?: LogLevel;
}

export function registerControl(program: Command, io: Io): void {
  program
    .command('serve')
    .description('the embedded control plane: workflow, store and API on this machine')
    .option('--state-dir <dir>', 'state folder (SQLite, admin token, logs)', defaultStateDir)
    .option('--port <n>', 'localhost port of the admin API (0: any free port)', parsePort, defaultPort)
    .option(
      '--agent-port <n>',
      `port of the agent API that agents are given as --server (0: any free port; default: the last start's, else ${defaultAgentPort})`,
      parsePort,
    )
    .option(
      '--agent-host <address>',
      'address the agent API listens on (0.0.0.0: agents on other machines)',
      '127.0.0.1',
    )
    .option(
      '--approvers <ids>',
      'comma-separated approvers: Slack user ids, Slack user group ids (S…, needs Slack), or names (default: ODT_APPROVERS)',
    )
    .option(
      '--slack-port <n>',
      "port of Slack's HTTP requests, when SLACK_SIGNING_SECRET is set without SLACK_APP_TOKEN (0: any)",
      parsePort,
      3000,
    )
    .addOption(logLevelOption())
    .action(async (o: ServeFlags & { agentPort?: number }) => {
      // Read first, so that a bad ODT_LOG_LEVEL is refused before anything starts.
      const env = readEnv();
      const approvers = (o.approvers ?? process.env.ODT_APPROVERS ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      if (approvers.length === 0) {
        throw new ValidationError('odt serve', [
          { path: 'approvers', message: 'name at least one approver with --approvers or ODT_APPROVERS' },
        ]);
      }
      // Loaded here, not at start: the control plane and Slack are heavy for the other commands.
      const [{ approversFromEntries }, { serveSlack }, { startControlPlane, PortInUseError }] =
        await Promise.all([
          import('../../bot/approvers-group.ts'),
          import('../../bot/serve.ts'),
          import('../../local/control-plane.ts'),
        ]);
      // The secrets this process holds are masked in its log lines wherever they appear.
      const log = await commandLogger(io, o.logLevel, env, { process: 'serve' }, [
        adminToken(o.stateDir),
        process.env.SLACK_BOT_TOKEN,
        process.env.SLACK_APP_TOKEN,
        process.env.SLACK_SIGNING_SECRET,
      ]);
      const agentPort = o.agentPort ?? (await lastAgentPort(o.stateDir)) ?? defaultAgentPort;
      const slack = serveSlack(o.stateDir, approvers, process.env, o.slackPort, log);
      let plane: Awaited<ReturnType<typeof startControlPlane>>;
      try {
        plane = await startControlPlane({
          stateDir: o.stateDir,
          port: o.port,
          agentPort,
          agentHost: o.agentHost,
          logger: log,
          // With Slack, user groups among them are read from Slack; without, a group id is refused by name.
          approvers: slack?.approvers ?? approversFromEntries(approvers, undefined),
          ...(slack ? { chat: slack.chat } : {}),
        });
      } catch (error) {
        await slack?.stop();
        if (error instanceof PortInUseError) {
          const flag = error.api === 'admin' ? '--port' : '--agent-port';
          throw new CodedError(
            'PORT_IN_USE',
            `${flag} ${error.port}: ${error.message} (another odt serve?); stop what holds it or give another ${flag}`,
            { cause: error },
          );
        }
        throw error;
      }
      let slackLine = 'Slack off (set SLACK_BOT_TOKEN and SLACK_APP_TOKEN or SLACK_SIGNING_SECRET)';
      try {
        if (slack) slackLine = await slack.connect(plane);
      } catch (error) {
        await slack?.stop();
        await plane.close();
        const errno = errnoOf(error);
        if (errno === 'EADDRINUSE' || errno === 'EACCES')
          throw new CodedError(
            'PORT_IN_USE',
            `--slack-port ${o.slackPort}: the port of Slack's requests ${errno === 'EACCES' ? 'may not be used by this user' : 'is in use'}; stop what holds it or give another --slack-port`,
            { cause: error },
          );
        throw error;
      }
      io.out.write(
        `odt serve: API ${plane.api.url}, agent API ${plane.agentApi.url}, state ${o.stateDir}, resumed ${plane.resumed} open transfer(s)` +
          `, ${slackLine}\n`,
      );
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
      log.info('stopping');
      await slack?.stop();
      await plane.close();
      io.out.write('odt serve: stopped; open transfers resume at the next start\n');
    });

  const transfer = program
    .command('transfer')
    .description('admin commands over the same service layer as Slack');
  const withState = (c: Command) =>
    c
      .option('--state-dir <dir>', 'state folder of odt serve', defaultStateDir)
      .option(
        '--token-file <file>',
        `your operator token (odt operator add); default: ODT_OPERATOR_TOKEN_FILE, else ${defaultTokenFile.replace(homedir(), '~')} if it exists, else the admin token of --state-dir`,
      );
  const auth = (o: { tokenFile?: string }): CallAuth => (o.tokenFile ? { tokenFile: o.tokenFile } : {});
  const callAs = (
    o: { stateDir: string; tokenFile?: string },
    method: string,
    path: string,
    body?: unknown,
  ) => call(o.stateDir, method, path, body, auth(o));
  const asHelp =
    'who acts, checked by odt serve: with an operator token only your own name; with the admin token only while no operators exist (labs)';

  withState(
    transfer.command('request').description('request a transfer from a JSON file (docs/request-format.md)'),
  )
    .requiredOption('--file <request.json>', 'the request')
    .action(async (o: { file: string; stateDir: string; tokenFile?: string }) => {
      let request: unknown;
      try {
        request = JSON.parse(await readFile(o.file, 'utf8'));
      } catch (error) {
        throw new ValidationError(o.file, [
          { path: '', message: `not readable JSON: ${(error as Error).message}` },
        ]);
      }
      const t = (await callAs(o, 'POST', '/transfers', { request })) as Transfer;
      io.out.write(`${t.id}\n`);
      // Accepted either way (the agent may enroll later), but said now rather than found later.
      for (const [site, role] of [
        [t.site, 'export agent'],
        [t.providerSite, 'import agent (ODT node)'],
      ] as const) {
        if ((await activeAgents(o.stateDir, site, auth(o))) === 0)
          io.err.write(
            `odt: warning: no ${role} has enrolled for site ${site}; the transfer waits for one ` +
              `(\`odt agent enroll --site ${site}\`, then \`odt agent run --site ${site} --code <code>\`)\n`,
          );
      }
    });
  for (const verb of ['approve', 'retry'] as const) {
    withState(
      transfer
        .command(`${verb} <id>`)
        .description(verb === 'approve' ? 'approve a requested transfer' : 'retry the failed items'),
    )
      .option('--as <user>', asHelp)
      .action(async (id: string, o: { stateDir: string; as: string }) => {
        io.out.write(
          `${summary((await callAs(o, 'POST', `/transfers/${id}/${verb}`, { actor: o.as })) as Transfer)}\n`,
        );
      });
  }
  withState(transfer.command('reject <id>').description('reject a requested transfer'))
    .requiredOption('--reason <text>', 'why, in words the requester can act on')
    .option('--as <user>', asHelp)
    .action(async (id: string, o: { stateDir: string; as: string; reason: string }) => {
      io.out.write(
        `${summary((await callAs(o, 'POST', `/transfers/${id}/reject`, { actor: o.as, reason: o.reason })) as Transfer)}\n`,
      );
    });
  withState(transfer.command('cancel <id>').description('cancel a transfer at any wait'))
    .option('--reason <text>', 'why', 'cancelled')
    .option('--as <user>', asHelp)
    .action(async (id: string, o: { stateDir: string; as: string; reason: string }) => {
      io.out.write(
        `${summary((await callAs(o, 'POST', `/transfers/${id}/cancel`, { actor: o.as, reason: o.reason })) as Transfer)}\n`,
      );
    });
  withState(
    transfer
      .command('event <id> <event>')
      .description(`record a shipping step: ${shippingEvents.join(' | ')}`),
  )
    .option('--carrier <name>', 'carrier (shipped)')
    .option('--tracking <number>', 'tracking number (shipped)')
    .option('--as <user>', asHelp)
    .action(
      async (
        id: string,
        event: string,
        o: { stateDir: string; as: string; carrier?: string; tracking?: string },
      ) => {
        const t = (await callAs(o, 'POST', `/transfers/${id}/event`, {
          actor: o.as,
          event,
          ...(o.carrier ? { carrier: o.carrier } : {}),
          ...(o.tracking ? { tracking: o.tracking } : {}),
        })) as Transfer;
        io.out.write(`${summary(t)}\n`);
      },
    );
  withState(transfer.command('show <id>').description('one transfer with its items and custody log'))
    .option('--json', 'as JSON')
    .option(
      '--history',
      'the custody log with its hashes, checked: exit 4 (CUSTODY_BROKEN) naming an edited entry',
    )
    .option('--pinned <sha256>', 'with --history: the head hash a report quoted, which must be in the log')
    .action(
      async (
        id: string,
        o: { stateDir: string; tokenFile?: string; json?: boolean; history?: boolean; pinned?: string },
      ) => {
        const t = (await callAs(o, 'GET', `/transfers/${id}`)) as Transfer;
        if (o.history || o.pinned) writeCustodyLog(t, (text) => io.out.write(text), o.pinned);
        else if (o.json) io.out.write(`${JSON.stringify(t, null, 2)}\n`);
        else
          io.out.write(
            `${summary(t, await agentWaits(o.stateDir, t, auth(o)))}\n${t.history.map((h) => `  ${h.at}  ${h.phase.padEnd(22)} ${h.actor}${h.note ? `  ${h.note}` : ''}`).join('\n')}\n`,
          );
      },
    );
  withState(transfer.command('list').description('all transfers'))
    .option('--json', 'as JSON')
    .action(async (o: { stateDir: string; json?: boolean }) => {
      const list = (await callAs(o, 'GET', '/transfers')) as Transfer[];
      if (o.json) io.out.write(`${JSON.stringify(list, null, 2)}\n`);
      else
        for (const t of list)
          io.out.write(
            `${t.id}  ${t.phase.padEnd(22)} ${t.site} → ${t.providerSite}  ${t.items.length} item(s)  ${t.requester}\n`,
          );
    });
}
