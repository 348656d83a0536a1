/**
 * `/odt agent list [site]` and `/odt agent revoke <agent id>`: approvers see the enrolled agents
 * and revoke one; a revoked agent's next call to the agent API is refused (401), so it stops
 * there. Answers are ephemeral; a revocation is also told to the approvers' channel, naming who.
 */
import type { AgentRecord } from '../core/ports/agents.ts';
import type { Approvers } from '../core/ports/approvers.ts';
import { type Block, clip, context, esc, mention, section, utcMinute } from './blocks.ts';
import type { BotRegistry } from './request-modal.ts';

export const agentsUsage =
  '`/odt agent enroll <site> [export|import]`, `/odt agent list [site]`, `/odt agent revoke <agent id>`';

export interface AgentsDeps {
  readonly registry: BotRegistry | undefined;
  readonly approvers: Approvers;
  readonly now: () => Date;
}

export interface AgentsReply {
  readonly text: string;
  readonly blocks: Block[];
  /** For the approvers' channel (a revocation), besides the ephemeral answer. */
  readonly announce?: string;
}

const say = (text: string): AgentsReply => ({ text, blocks: [section(text)] });

type AgentsCommand = (user: string, args: readonly string[], deps: AgentsDeps) => Promise<AgentsReply>;

/**
 * The registry for an approver's agent command, or why `user` may not run it: `refused` for a
 * person who is not an approver, the reason of an approvers lookup that fails, `noRegistry` for
 * a bot without the registry.
 */
export async function approverGate(
  user: string,
  deps: Pick<AgentsDeps, 'registry' | 'approvers'>,
  texts: { readonly refused: string; readonly noRegistry: string },
): Promise<{ registry: BotRegistry } | { refusal: string }> {
  try {
    if (!(await deps.approvers.has(user))) return { refusal: texts.refused };
  } catch (error) {
    return { refusal: `:warning: ${(error as Error).message}` };
  }
  return deps.registry ? { registry: deps.registry } : { refusal: texts.noRegistry };
}

/** An agent command for approvers only, run with the registry (approverGate). */
const forApprovers =
  (
    run: (
      user: string,
      args: readonly string[],
      registry: BotRegistry,
      deps: AgentsDeps,
    ) => Promise<AgentsReply>,
  ): AgentsCommand =>
  async (user, args, deps) => {
    const gate = await approverGate(user, deps, {
      refused: ':no_entry: Only approvers may list or revoke agents.',
      noRegistry:
        ':warning: This bot was started without the agent registry; use `odt agent list` on the control plane.',
    });
    return 'refusal' in gate ? say(gate.refusal) : run(user, args, gate.registry, deps);
  };

const line = (a: AgentRecord): string =>
  `\`${a.id}\` *${esc(a.name)}* — site \`${esc(a.site)}\`, enrolled ${utcMinute(a.enrolledAt)} UTC` +
  (a.revoked ? `, :no_entry: revoked ${a.revokedAt ? utcMinute(a.revokedAt) : ''} UTC` : '');

/** The ephemeral answer to `/odt agent list [site]`: one line per agent, newest last. */
export const listAgentsReply: AgentsCommand = forApprovers(async (_user, args, registry) => {
  const site = args[0];
  const agents = await registry.list(site);
  if (agents.length === 0)
    return say(
      site
        ? `No agent of site \`${esc(site)}\` is enrolled. \`/odt agent enroll ${esc(site)}\` makes a code.`
        : 'No agent is enrolled yet. `/odt agent enroll <site>` makes a code.',
    );
  const active = agents.filter((a) => !a.revoked).length;
  const head = `*Agents${site ? ` of \`${esc(site)}\`` : ''}*: ${active} active, ${agents.length - active} revoked`;
  // One section holds up to 3,000 characters: pack the lines, at most 45 sections.
  const sections: string[] = [];
  let current = '';
  for (const l of agents.map(line)) {
    if (current.length + l.length + 1 > 2900) {
      sections.push(current);
      current = '';
    }
    current += `${current ? '\n' : ''}${l}`;
  }
  if (current) sections.push(current);
  const shown = sections.slice(0, 45);
  const blocks: Block[] = [section(head), ...shown.map((s) => section(clip(s)))];
  if (sections.length > shown.length)
    blocks.push(context(`…and more; narrow it with \`/odt agent list <site>\`.`));
  blocks.push(context('`/odt agent revoke <agent id>` stops an agent at its next call.'));
  return { text: head, blocks };
});

/** The ephemeral answer to `/odt agent revoke <agent id>`, and the channel note when it revoked. */
export const revokeAgentReply: AgentsCommand = forApprovers(async (user, args, registry, deps) => {
  const [id, ...extra] = args;
  if (!id || extra.length > 0)
    return say('Which agent? `/odt agent revoke <agent id>` (`/odt agent list` shows the ids).');
  if (!registry.revoke || !registry.get) return say(':warning: This registry cannot revoke agents.');
  const before = await registry.get(id);
  if (!before)
    return say(`:warning: No agent \`${esc(id)}\` is enrolled; \`/odt agent list\` shows the ids.`);
  if (before.revoked)
    return say(
      `Agent \`${esc(id)}\` (${esc(before.name)}, site \`${esc(before.site)}\`) was already revoked; nothing changed.`,
    );
  await registry.revoke(id, deps.now());
  const text = `Agent \`${esc(id)}\` (${esc(before.name)}, site \`${esc(before.site)}\`) is revoked: its next call is refused and it stops. Enroll a new one with \`/odt agent enroll ${esc(before.site)}\`.`;
  return {
    text,
    blocks: [section(`:no_entry: ${text}`)],
    announce: `:no_entry: ${mention(user)} revoked agent \`${esc(id)}\` (${esc(before.name)}) of site \`${esc(before.site)}\`.`,
  };
});
