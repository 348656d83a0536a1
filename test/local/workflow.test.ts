import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ItemOutcome } from '../../core/index.ts';
import { type ControlPlane, type ControlPlaneOptions, startControlPlane } from '../../local/control-plane.ts';
import { answerKeyTask, fakeNode, nodeMakesKey, statementFor } from '../support/fake-node.ts';
import { happyPath } from '../support/happy-path.ts';
import { until as untilTruthy } from '../support/until.ts';
import { vmAndTemplateRequest as request } from '../support/vm-and-template-request.ts';

// Issue 5: every path of the workflow on the embedded engine, driven through the service layer
// (what the admin CLI and Slack call) with fake agents that claim, heartbeat and complete tasks.

let plane: ControlPlane | undefined;
let dir: string | undefined;
let node: { stop(): Promise<void> } | undefined;
afterEach(async () => {
  await node?.stop();
  node = undefined;
  await plane?.close();
  plane = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The control plane, with a fake ODT node of site `cloud` answering the key tasks unless `keys` is false. */
async function start(overrides: Partial<ControlPlaneOptions> = {}, keys = true): Promise<ControlPlane> {
  dir = await mkdtemp(join(tmpdir(), 'odt-wf-'));
  plane = await startControlPlane({
    stateDir: dir,
    approvers: ['bob', 'carol'],
    retryIntervalOverridesMs: { Export: 0, Import: 0 },
    ...overrides,
  });
  if (keys) node = fakeNode(plane.service, 'cloud');
  return plane;
}

/** In-process waits: 5 s by default, every 10 ms. */
const until = <T>(f: () => Promise<T | undefined | false>, what: string, ms = 5000) =>
  untilTruthy(f, what, ms, 10);

const phaseIs = (p: ControlPlane, id: string, phase: string) =>
  until(async () => (await p.service.get(id)).phase === phase, `phase ${phase}`);

/** A fake agent: waits for its site's task, claims it, reports outcomes. */
async function agentDoes(
  p: ControlPlane,
  site: string,
  agent: string,
  outcomes: (itemIds: readonly string[]) => ItemOutcome[],
) {
  const task = await until(async () => (await p.service.openTasks(site))[0], `a task for ${site}`);
  await p.service.claimTask(task.id, site, agent);
  await p.service.taskHeartbeat(task.id, agent, [
    { itemId: task.itemIds[0]!, bytesDone: 10, bytesTotal: 20 },
  ]);
  await p.service.taskComplete(task.id, agent, outcomes(task.itemIds));
  return task;
}
const allOk = (state?: ItemOutcome['state']) => (ids: readonly string[]) =>
  ids.map((itemId) => ({ itemId, ok: true, bytes: 100, ...(state ? { state } : {}) }));
/** Every item done as the request asks: item-1 (web-01) powered on, item-2 (the template) in its catalog. */
const asAsked = (ids: readonly string[]): ItemOutcome[] =>
  ids.map((itemId) => ({
    itemId,
    ok: true,
    bytes: 100,
    state: itemId === 'item-1' ? 'powered-on' : 'onboarded',
  }));

/** Bob approves transfer `id` and sends the NAS; alice connects it: the export task is queued. */
async function connect(p: ControlPlane, id: string): Promise<void> {
  await p.service.approve(id, 'bob');
  await p.service.event(id, 'appliance-sent', 'bob');
  await p.service.event(id, 'appliance-connected', 'alice');
}

/** Connected, and the export agent exported every item. */
async function exportAll(p: ControlPlane, id: string): Promise<void> {
  await connect(p, id);
  await agentDoes(p, 'acme', 'a', allOk());
  await phaseIs(p, id, 'exported');
}

async function toExport(p: ControlPlane): Promise<string> {
  const t = await p.service.request(request());
  await connect(p, t.id);
  return t.id;
}

async function toImport(p: ControlPlane): Promise<string> {
  const id = await toExport(p);
  await agentDoes(p, 'acme', 'agent-a', allOk());
  await phaseIs(p, id, 'exported');
  await p.service.event(id, 'shipped', 'alice', { carrier: 'DHL', tracking: 'JD0001' });
  await p.service.event(id, 'received', 'bob');
  return id;
}

describe('the workflow on the embedded engine', () => {
  it('approve → shipping steps → export → import → report → wipe', async () => {
    const p = await start();
    const id = await toImport(p);
    const importTask = await agentDoes(p, 'cloud', 'node-1', (ids) =>
      ids.map((itemId) => ({
        itemId,
        ok: true,
        bytes: 100,
        state: itemId === 'item-1' ? 'powered-on' : 'onboarded',
        ...(itemId === 'item-1' ? { names: { vcenter: [`web-01 (${id})`], vcd: 'web-01' } } : {}),
      })),
    );
    expect(importTask.kind).toBe('import');
    await phaseIs(p, id, 'completed');
    const t = await p.service.get(id);
    expect(t.items.map((i) => i.result.state)).toEqual(['powered-on', 'onboarded']);
    expect(t.shipping).toEqual({ carrier: 'DHL', tracking: 'JD0001' });
    const log = await readFile(join(dir!, 'events.log'), 'utf8');
    expect(log).toContain('"event":"report"');
    // The report names what item-1's VM is called in vCenter and vCloud Director (#17).
    expect(log).toContain(`"names":{"vcenter":["web-01 (${id})"],"vcd":"web-01"}`);
    await p.service.event(id, 'wiped', 'bob');
    await until(async () => p.runner && (await p.service.get(id)).phase === 'wiped', 'wiped');
    await p.runner.settled(id);
    expect(t.history.map((h) => h.phase)).toEqual(happyPath);
    // The custody log names who acted: each person, the export agent that wrote the NAS and the
    // ODT node that verified and imported it (#18).
    expect(t.history.map((h) => `${h.phase} ${h.actor}`)).toEqual([
      `requested ${t.requester}`,
      'approved bob',
      'appliance-sent bob',
      'appliance-connected alice',
      'exporting workflow',
      'exported agent-a',
      'shipped alice',
      'received bob',
      'importing workflow',
      'onboarding node-1',
      'completed workflow',
    ]);
  });

  it('reject ends the workflow; self-approval and a second decision are refused', async () => {
    const p = await start({ approvers: ['alice', 'bob', 'carol'] });
    const t = await p.service.request(request());
    await expect(p.service.approve(t.id, 'alice')).rejects.toThrow('four eyes');
    await p.service.reject(t.id, 'carol', 'no capacity in December');
    await expect(p.service.approve(t.id, 'bob')).rejects.toThrow('already rejected by carol');
    await p.runner.settled(t.id);
    expect((await p.service.get(t.id)).phase).toBe('rejected');
  });

  it('approval timeout expires the transfer', async () => {
    const p = await start({ timeoutOverridesMs: { AwaitApproval: 50 } });
    const t = await p.service.request(request());
    await phaseIs(p, t.id, 'expired');
  });

  it('export failure of one item, then "retry failed items" exports only that item', async () => {
    const p = await start();
    const id = await toExport(p);
    await agentDoes(p, 'acme', 'agent-a', (ids) =>
      ids.map((itemId) =>
        itemId === 'item-2'
          ? { itemId, ok: false, reason: 'VM is powered on; power it off', code: 'POWERED_ON' }
          : { itemId, ok: true, bytes: 100 },
      ),
    );
    await phaseIs(p, id, 'exported');
    expect((await p.service.get(id)).items[1]!.result).toMatchObject({
      state: 'failed',
      reason: 'VM is powered on; power it off',
    });
    // Two retries at once (two Slack clicks in two processes): one round, the other is refused.
    const both = await Promise.allSettled([p.service.retry(id, 'alice'), p.service.retry(id, 'bob')]);
    expect(both.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const refused = both.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(String(refused.reason)).toMatch(/already asked for by (alice|bob)/);
    expect((await p.service.get(id)).history.filter((h) => h.note?.startsWith('retry '))).toHaveLength(1);
    const second = await agentDoes(p, 'acme', 'agent-a', allOk());
    expect(second.itemIds).toEqual(['item-2']);
    await until(
      async () => (await p.service.get(id)).items.every((i) => i.result.state === 'exported'),
      'both exported',
    );
    await p.service.event(id, 'shipped', 'alice', { carrier: 'UPS', tracking: '1Z' });
    await phaseIs(p, id, 'shipped');
  });

  it('partial success at import ends completed-with-errors; retry imports only the failed item', async () => {
    const p = await start();
    const id = await toImport(p);
    await agentDoes(p, 'cloud', 'node-1', (ids) =>
      ids.map((itemId) =>
        itemId === 'item-2'
          ? { itemId, ok: false, reason: 'catalog full' }
          : { itemId, ok: true, state: 'powered-on' as const },
      ),
    );
    await phaseIs(p, id, 'completed-with-errors');
    await p.service.retry(id, 'alice');
    const again = await agentDoes(p, 'cloud', 'node-1', allOk('onboarded'));
    expect(again.itemIds).toEqual(['item-2']);
    await phaseIs(p, id, 'completed');
  });

  it('an item the node reports short of what it asked (no VDC, no power-on) is failed, not ok; retry finishes it (#19)', async () => {
    const p = await start();
    const id = await toImport(p);
    // A node without vCloud Director (or an older one) says "ok" for what only reached vCenter.
    await agentDoes(p, 'cloud', 'node-1', (ids) =>
      ids.map((itemId) => ({
        itemId,
        ok: true,
        bytes: 100,
        state: itemId === 'item-1' ? 'onboarded' : 'imported',
      })),
    );
    await phaseIs(p, id, 'failed');
    const t = await p.service.get(id);
    expect(t.items.map((i) => [i.result.state, i.result.code])).toEqual([
      ['failed', 'NOT_ONBOARDED'],
      ['failed', 'NOT_ONBOARDED'],
    ]);
    expect(t.items[0]!.result.reason).toContain('was not powered on (asked: org VDC acme-vdc, power-on)');
    expect(t.items[1]!.result.reason).toContain(
      'was not placed in vCloud Director (asked: org VDC acme-vdc, catalog c)',
    );
    await p.service.retry(id, 'alice');
    const again = await agentDoes(p, 'cloud', 'node-1', asAsked);
    expect(again.itemIds).toEqual(['item-1', 'item-2']);
    await phaseIs(p, id, 'completed');
  });

  it('an import task that fails as a whole fails every item with its reason; retry finishes the transfer (#18)', async () => {
    const p = await start();
    const id = await toImport(p);
    // The ODT node refuses the NAS (say, a forged signer): the task fails, no item has an outcome.
    const task = await until(async () => (await p.service.openTasks('cloud'))[0], 'the import task');
    await p.service.claimTask(task.id, 'cloud', 'node-1');
    await p.service.taskFail(
      task.id,
      'node-1',
      'TRANSFER_NOT_TRUSTED',
      'The transfer on the NAS did not verify; nothing was imported. [UNTRUSTED_SIGNER]',
    );
    await phaseIs(p, id, 'failed');
    const failed = await p.service.get(id);
    for (const item of failed.items) {
      expect(item.result).toMatchObject({
        state: 'failed',
        code: 'TRANSFER_NOT_TRUSTED',
        reason: expect.stringContaining('[UNTRUSTED_SIGNER]'),
      });
    }
    // The genuine NAS is back: "retry the failed items" imports every item and completes.
    await p.service.retry(id, 'alice');
    const again = await agentDoes(p, 'cloud', 'node-1', asAsked);
    expect(again.id).not.toBe(task.id);
    expect(again.itemIds).toEqual(['item-1', 'item-2']);
    await phaseIs(p, id, 'completed');
  });

  it('an import task that times out fails every item; its stale task is cancelled and retry finishes (#18)', async () => {
    const p = await start({ timeoutOverridesMs: { Import: 1500 } });
    const id = await toImport(p);
    const task = await until(async () => (await p.service.openTasks('cloud'))[0], 'the import task');
    await p.service.claimTask(task.id, 'cloud', 'node-dead');
    await phaseIs(p, id, 'failed');
    const failed = await p.service.get(id);
    expect(failed.items.map((i) => [i.result.state, i.result.code])).toEqual([
      ['failed', 'TIMED_OUT'],
      ['failed', 'TIMED_OUT'],
    ]);
    // The silent node cannot finish the old task beside the retry.
    await expect(p.service.taskComplete(task.id, 'node-dead', allOk()(task.itemIds))).rejects.toThrow();
    await p.service.retry(id, 'alice');
    await agentDoes(p, 'cloud', 'node-1', asAsked);
    await phaseIs(p, id, 'completed');
  });

  it.each([
    ['approval', async (_p: ControlPlane, _id: string) => {}],
    [
      'appliance sent',
      async (p: ControlPlane, id: string) => {
        await p.service.approve(id, 'bob');
      },
    ],
    [
      'appliance connected',
      async (p: ControlPlane, id: string) => {
        await p.service.approve(id, 'bob');
        await p.service.event(id, 'appliance-sent', 'bob');
      },
    ],
    [
      'export',
      async (p: ControlPlane, id: string) => {
        await connect(p, id);
        await until(async () => (await p.service.openTasks('acme'))[0], 'export task');
      },
    ],
    [
      'shipping',
      async (p: ControlPlane, id: string) => {
        await exportAll(p, id);
      },
    ],
    [
      'the export decision (an item failed)',
      async (p: ControlPlane, id: string) => {
        await connect(p, id);
        await agentDoes(p, 'acme', 'a', (ids) =>
          ids.map((itemId) => ({
            itemId,
            ok: itemId === 'item-1',
            ...(itemId === 'item-1' ? { bytes: 1 } : { reason: 'x' }),
          })),
        );
        await phaseIs(p, id, 'exported');
      },
    ],
    [
      'the NAS to be received',
      async (p: ControlPlane, id: string) => {
        await exportAll(p, id);
        await p.service.event(id, 'shipped', 'alice', { carrier: 'DHL', tracking: '1' });
      },
    ],
  ])('cancel while waiting for %s ends the workflow cancelled', async (_name, reach) => {
    const p = await start();
    const t = await p.service.request(request());
    await reach(p, t.id);
    await p.service.cancel(t.id, 'alice', 'moving by network after all');
    await p.runner.settled(t.id);
    const after = await p.service.get(t.id);
    expect(after.phase).toBe('cancelled');
    expect(after.history.find((h) => h.phase === 'cancelled')).toMatchObject({ actor: 'alice' });
    // Cancelled once the node had made the transfer's key: it destroyed it and signed that (#18).
    if (after.key) {
      expect(after.history.at(-1)).toMatchObject({ phase: 'cancelled', actor: 'fake-node' });
      expect(after.history.at(-1)!.note).toMatch(
        /^key destroyed: [0-9a-f]{64} .*NAS erase confirmed by nobody/,
      );
    } else expect(after.history.at(-1)).toMatchObject({ phase: 'cancelled', actor: 'alice' });
  });

  it("the ODT node's key (#18): made before the export is queued, destroyed after the wipe with a signed statement", async () => {
    const p = await start({}, false);
    const t = await p.service.request(request());
    await p.service.approve(t.id, 'bob');
    await p.service.event(t.id, 'appliance-sent', 'bob');
    await p.service.event(t.id, 'appliance-connected', 'alice');
    const keyTask = await until(async () => (await p.service.openTasks('cloud'))[0], 'the make-key task');
    expect(keyTask).toMatchObject({ kind: 'make-key', site: 'cloud', itemIds: [] });
    // No export before the node signed a key for this transfer.
    await new Promise((r) => setTimeout(r, 100));
    expect(await p.service.openTasks('acme')).toEqual([]);
    await p.service.claimTask(keyTask.id, 'cloud', 'node-1');
    await expect(p.service.taskComplete(keyTask.id, 'node-1', [])).rejects.toThrow(/signed statement/);
    await p.service.taskComplete(keyTask.id, 'node-1', [], statementFor('make-key', t, 'node-1'));
    expect((await p.service.get(t.id)).key).toBeDefined();
    await agentDoes(p, 'acme', 'a', allOk());
    await phaseIs(p, t.id, 'exported');
    await p.service.event(t.id, 'shipped', 'alice', { carrier: 'DHL', tracking: '1' });
    await p.service.event(t.id, 'received', 'bob');
    await agentDoes(p, 'cloud', 'node-1', (ids) =>
      ids.map((itemId) => ({
        itemId,
        ok: true,
        bytes: 100,
        state: itemId === 'item-1' ? 'powered-on' : 'onboarded',
      })),
    );
    await phaseIs(p, t.id, 'completed');
    await p.service.event(t.id, 'wiped', 'bob');
    const destroy = await until(async () => (await p.service.openTasks('cloud'))[0], 'the destroy-key task');
    expect(destroy).toMatchObject({ kind: 'destroy-key', site: 'cloud' });
    await answerKeyTask(p.service, 'cloud', 'node-1');
    await p.runner.settled(t.id);
    const after = await p.service.get(t.id);
    const entry = after.history.at(-1)!;
    expect(entry).toMatchObject({ phase: 'wiped', actor: 'node-1' });
    expect(entry.note).toMatch(
      /^key destroyed: [0-9a-f]{64} at .* by node node-1; NAS erase confirmed by bob; signed statement \S+\.\S+$/,
    );
  });

  it('a key the node makes as the transfer is cancelled is destroyed all the same (#18)', async () => {
    const p = await start({}, false);
    const t = await p.service.request(request());
    await p.service.approve(t.id, 'bob');
    const task = await until(async () => (await p.service.openTasks('cloud'))[0], 'the make-key task');
    await p.service.claimTask(task.id, 'cloud', 'node-1');
    // Cancelled while the node makes the key: the workflow finds no key to destroy and ends.
    await p.service.cancel(t.id, 'alice', 'not now');
    await p.runner.settled(t.id);
    await p.service.taskComplete(
      task.id,
      'node-1',
      [],
      statementFor('make-key', await p.service.get(t.id), 'node-1'),
    );
    await until(() => answerKeyTask(p.service, 'cloud', 'node-1'), 'the destroy-key task of the late key');
    const after = await p.service.get(t.id);
    expect(after.phase).toBe('cancelled');
    expect(after.history.at(-1)!.note).toMatch(/^key destroyed: /);
  });

  it('no ODT node makes the key in time: the transfer is cancelled with the reason, nothing exported (#18)', async () => {
    const p = await start({ timeoutOverridesMs: { MakeKey: 200 } }, false);
    const t = await p.service.request(request());
    await p.service.approve(t.id, 'bob');
    await phaseIs(p, t.id, 'cancelled');
    await p.runner.settled(t.id);
    const after = await p.service.get(t.id);
    expect(after.history.at(-1)!.note).toContain(
      "no key for this transfer: no ODT node of site 'cloud' answered the make-key task in time",
    );
    expect(await p.service.openTasks('cloud')).toEqual([]);
    expect(await p.service.openTasks('acme')).toEqual([]);
  });

  it("a node that does not confirm the key's destruction is in the history (#18)", async () => {
    const p = await start({ timeoutOverridesMs: { DestroyKey: 200 } }, false);
    const t = await p.service.request(request());
    await p.service.approve(t.id, 'bob');
    await nodeMakesKey(p.service, t.id);
    await p.service.cancel(t.id, 'alice', 'not now');
    await p.runner.settled(t.id);
    expect((await p.service.get(t.id)).history.at(-1)!.note).toContain(
      "the ODT node did not confirm that it destroyed the transfer's key",
    );
  });

  it('a dead agent: the heartbeat timeout puts the task back, a second claim completes it', async () => {
    const p = await start({ heartbeatSeconds: 1, heartbeatOverridesMs: { Export: 1000 } });
    const id = await toExport(p);
    const task = await until(async () => (await p.service.openTasks('acme'))[0], 'export task');
    await p.service.claimTask(task.id, 'acme', 'agent-dead');
    expect(await p.service.openTasks('acme')).toEqual([]);
    // agent-dead never heartbeats: after its heartbeat timeout the task is open again.
    const reopened = await until(
      async () => (await p.service.openTasks('acme'))[0],
      'the task back in the queue',
      5000,
    );
    expect(reopened.id).toBe(task.id);
    await p.service.claimTask(task.id, 'acme', 'agent-b');
    await expect(p.service.taskComplete(task.id, 'agent-dead', allOk()(task.itemIds))).rejects.toThrow();
    await p.service.taskComplete(task.id, 'agent-b', allOk()(task.itemIds));
    await phaseIs(p, id, 'exported');
  });
});
