import { agentsUsage, listAgentsReply, revokeAgentReply } from '../agents.ts';
import { section } from '../blocks.ts';
import { enrollReply } from '../enroll.ts';
import type { Subcommand } from './subcommand.ts';

/**
 * `/odt agent enroll|list|revoke …` (approvers only; bot/enroll.ts, bot/agents.ts). A revocation
 * is also announced in the approvers' channel.
 */
export const agentSubcommand: Subcommand = async ({ user, args, reply, client }, ctx) => {
  const verb = (args[0] ?? '').toLowerCase();
  if (verb === 'list' || verb === 'revoke') {
    const deps = { registry: ctx.registry, approvers: ctx.approvers, now: ctx.now };
    const answer =
      verb === 'list'
        ? await listAgentsReply(user, args.slice(1), deps)
        : await revokeAgentReply(user, args.slice(1), deps);
    await reply(answer.text, answer.blocks);
    if (answer.announce)
      await client.chat.postMessage({
        channel: ctx.approversChannel,
        text: answer.announce,
        blocks: [section(answer.announce)],
      });
    return;
  }
  if (verb !== 'enroll') {
    await reply(`Agents (approvers only): ${agentsUsage}.`);
    return;
  }
  const answer = await enrollReply(user, args.slice(1), {
    registry: ctx.registry,
    approvers: ctx.approvers,
    ttlMs: ctx.enrollmentTtlMs,
    agentApiUrl: ctx.agentApiUrl,
    now: ctx.now,
  });
  await reply(answer.text, answer.blocks);
};
