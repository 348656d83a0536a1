/**
 * Issue 18: the agent API takes a key task's statement only when it verifies with the enrolled
 * certificate of the agent that hands it in (docs/decisions.md, "A key per transfer"), so a node
 * cannot record a recipient or a wipe statement signed by another key: the transfer keeps none.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentIdentity, initAgentIdentity } from '../../agent/identity/agent-identity.ts';
import { AgentApiClient, AgentApiError } from '../../agent/runtime/api-client.ts';
import { type ControlPlane, startControlPlane } from '../../local/control-plane.ts';
import { statementFor } from '../support/fake-node.ts';
import { until } from '../support/until.ts';

let plane: ControlPlane;
let dir: string;
let node: AgentIdentity;
let stranger: AgentIdentity;
let client: AgentApiClient;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'odt-key-statement-'));
  plane = await startControlPlane({ stateDir: dir, approvers: ['bob'] });
  const made = async (n: string) =>
    (await initAgentIdentity(join(dir, 'keys', n), { commonName: n })).identity;
  [node, stranger] = await Promise.all([made('node'), made('stranger')]);
  client = new AgentApiClient({ server: plane.agentApi.url, keyPem: node.keyPem });
  const code = await plane.registry.issueCode('cloud', 60_000, new Date());
  await client.enroll(code.code, node.certPem, 'odt-node');
}, 120_000);

afterAll(async () => {
  await plane?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("a key task's statement", () => {
  it("is refused when another key signed it, and the transfer keeps no key; the node's own is taken", async () => {
    const t = await plane.service.request({
      site: 'acme',
      providerSite: 'cloud',
      requester: 'alice',
      items: [{ kind: 'vm', source: 'web-01', target: { vdc: 'acme-vdc' } }],
    });
    await plane.service.approve(t.id, 'bob');
    const task = await until(
      async () => (await client.listTasks()).find((x) => x.kind === 'make-key' && x.transferId === t.id),
      'the make-key task',
      10_000,
    );
    await client.claim(task.id);
    const me = (await client.me()).id;
    const current = await plane.service.get(t.id);

    const refused = await client
      .complete(task.id, [], statementFor('make-key', current, me, stranger))
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AgentApiError);
    expect((refused as AgentApiError).status).toBe(400);
    expect((refused as AgentApiError).message).toContain(
      `does not verify with agent ${me}'s enrolled certificate`,
    );
    expect((await plane.service.get(t.id)).key).toBeUndefined();

    const own = statementFor('make-key', current, me, node);
    await client.complete(task.id, [], own);
    expect((await plane.service.get(t.id)).key).toEqual(own);
  });
});
