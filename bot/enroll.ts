/**
 * `/odt agent enroll <site> [export|import]`: an approver gets a one-time enrollment code for a
 * site's agent and the command line to start the agent with it. The answer is ephemeral (the
 * slash command's own response): the code is never posted to a channel.
 */
import { siteSchema } from '../core/index.ts';
import type { EnrollmentCode } from '../core/ports/agents.ts';
import type { Approvers } from '../core/ports/approvers.ts';
import { approverGate } from './agents.ts';
import { type Block, context, esc, section } from './blocks.ts';
import type { BotRegistry } from './request-modal.ts';

export interface EnrollDeps {
  readonly registry: BotRegistry | undefined;
  readonly approvers: Approvers;
  readonly ttlMs: number;
  /** The agent API URL agents reach; a placeholder in the command line when unknown. */
  readonly agentApiUrl: string | undefined;
  readonly now: () => Date;
}

export const enrollUsage = '`/odt agent enroll <site> [export|import]`';

const roles = ['export', 'import'] as const;
type Role = (typeof roles)[number];

/** The `odt agent run` line for the agent's first start (cli/commands/agent-run.ts). */
export function agentRunCommand(code: EnrollmentCode, role: Role, server: string | undefined): string {
  const common = [
    'odt agent run',
    `--role ${role}`,
    `--site ${code.site}`,
    `--code ${code.code}`,
    `--server ${server ?? '<agent API URL>'}`,
    '--dir /var/lib/odt-agent',
    '--vcenter https://<vcenter>',
    '--username <vcenter user>',
    '--nas <NAS mount point>',
  ];
  const own =
    role === 'export'
      ? // The node's certificate is pinned here, never fetched from the control plane (docs/security.md).
        ["--node-cert <the ODT node's agent.crt.pem, its SHA-256 checked with the provider>"]
      : ['--identity <identity.txt>', '--vcd https://<vcloud director>', '--vcd-username <user@System>'];
  return [...common, ...own].join(' \\\n  ');
}

const unix = (iso: string): number => Math.floor(new Date(iso).getTime() / 1000);

/** The ephemeral answer to `/odt agent enroll …`. */
export async function enrollReply(
  user: string,
  args: readonly string[],
  deps: EnrollDeps,
): Promise<{ text: string; blocks: Block[] }> {
  const say = (text: string) => ({ text, blocks: [section(text)] });
  const gate = await approverGate(user, deps, {
    refused: ':no_entry: Only approvers may enroll agents; ask an approver to run `/odt agent enroll`.',
    noRegistry:
      ':warning: This bot was started without the agent registry; use `odt agent enroll --site <site>` on the control plane instead.',
  });
  if ('refusal' in gate) return say(gate.refusal);
  const [site, roleArg = 'export', ...extra] = args;
  if (!site) return say(`Which site? ${enrollUsage}`);
  // The one site-name rule (core/model/transfer.ts), as the CLI and the APIs apply it.
  const parsed = siteSchema.safeParse(site);
  if (!parsed.success) {
    return say(
      `:warning: \`${esc(site)}\` is not a site name: ${parsed.error.issues[0]?.message ?? 'invalid'}. ${enrollUsage}`,
    );
  }
  const role = roleArg.toLowerCase() as Role;
  if (!roles.includes(role) || extra.length > 0) {
    return say(
      `:warning: The role is \`export\` (the customer's export agent, the default) or \`import\` (the ODT node). ${enrollUsage}`,
    );
  }
  const code = await gate.registry.issueCode(site, deps.ttlMs, deps.now());
  const minutes = Math.round(deps.ttlMs / 60_000);
  const text = `Enrollment code for a ${role} agent of ${site}: ${code.code} (valid once, until ${code.expiresAt})`;
  return {
    text,
    blocks: [
      section(
        `*Enrollment code for the ${role} agent of \`${site}\`*\n\`${code.code}\`\nValid once, until <!date^${unix(code.expiresAt)}^{date_short_pretty} {time}|${code.expiresAt}> (${minutes} min).`,
      ),
      section(
        `On the agent's machine, with \`ODT_VCENTER_PASSWORD\`${role === 'import' ? ' and `ODT_VCD_PASSWORD`' : ''} set in its environment, replace the \`<…>\` parts and run:\n\`\`\`${agentRunCommand(code, role, deps.agentApiUrl)}\`\`\``,
      ),
      context('Only you see this message. The code enrolls exactly one agent; later starts need no code.'),
    ],
  };
}
