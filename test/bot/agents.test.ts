/**
 * `/odt agent list` and `/odt agent revoke` in Slack (DESIGN.md: "Revoking an agent in Slack stops
 * it at the next call"), through Bolt's HTTP receiver, with an agent enrolled over the signed
 * agent API that reported its site's inventory.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { APPROVERS, CHANNEL, type Harness, REQUESTER, SITE, startHarness, visible } from './harness.ts';
import { defaultInventory, enrollExportAgent } from './inventory.ts';

let h: Harness;
beforeEach(async () => {
  h = await startHarness({ inventory: false });
});
afterEach(async () => {
  await h?.close();
});

const [APPROVER] = APPROVERS as [string];
const answer = async (text: string, user = APPROVER) =>
  (await (await h.command(text, user)).json()) as { response_type: string; text: string; blocks: unknown[] };

describe('/odt agent list and revoke', () => {
  it('an approver lists the agents, revokes one, and its next call is refused', async () => {
    const agent = await enrollExportAgent(h.plane, SITE, defaultInventory);
    const [record] = await h.plane.registry.list(SITE);
    const listed = await answer(`agent list ${SITE}`);
    expect(listed.response_type).toBe('ephemeral');
    expect(visible(listed.blocks)).toContain(record!.id);
    expect(visible(listed.blocks)).toContain('1 active, 0 revoked');

    const revoked = await answer(`agent revoke ${record!.id}`);
    expect(revoked.response_type).toBe('ephemeral');
    expect(revoked.text).toContain('is revoked');
    const note = h.slack.ok('chat.postMessage').find((c) => c.args.channel === CHANNEL);
    expect(String(note?.args.text)).toContain(`<@${APPROVER}> revoked agent \`${record!.id}\``);
    expect((await h.plane.registry.get(record!.id))?.revoked).toBe(true);
    // The agent's next call to the agent API: refused, it stops there.
    await expect(agent.reportInventory(defaultInventory)).rejects.toThrow(/revoked|401/i);

    const again = await answer(`agent revoke ${record!.id}`);
    expect(again.text).toContain('was already revoked; nothing changed');
    expect(visible((await answer(`agent list ${SITE}`)).blocks)).toContain('0 active, 1 revoked');
  });

  it('refuses non-approvers and unknown agents, and says how to use it', async () => {
    await enrollExportAgent(h.plane, SITE, undefined);
    const [record] = await h.plane.registry.list(SITE);
    expect((await answer(`agent revoke ${record!.id}`, REQUESTER)).text).toContain('Only approvers');
    expect((await answer('agent list', REQUESTER)).text).toContain('Only approvers');
    expect((await h.plane.registry.get(record!.id))?.revoked).toBe(false);
    expect((await answer('agent revoke agt-nope')).text).toContain('No agent `agt-nope` is enrolled');
    expect((await answer('agent revoke')).text).toContain('Which agent?');
    expect((await answer('agent frobnicate')).text).toContain('/odt agent revoke <agent id>');
    expect((await answer('agent list nowhere')).text).toContain('No agent of site `nowhere`');
    expect(h.slack.ok('chat.postMessage')).toHaveLength(0);
  });
});
