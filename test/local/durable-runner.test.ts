import { describe, expect, it } from 'vitest';
import { TaskTokenError } from '../../core/index.ts';
import { DurableRunner } from '../../local/durable-runner.ts';
import { MemoryRunnerStore } from '../../local/runner-store.ts';
import { localArns, localDefinition } from '../../shared/workflow-definition.ts';

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The product's definition with handlers that record what the workflow asked for. */
function harness(
  store = new MemoryRunnerStore(),
  overrides: { timeout?: Record<string, number>; heartbeat?: Record<string, number> } = {},
) {
  const steps: string[] = [];
  const waits: { wait: string; token: string }[] = [];
  const agentTasks: { kind: string; token: string }[] = [];
  const ends: { id: string; status: string }[] = [];
  const runner = new DurableRunner({
    definition: localDefinition(),
    store,
    steps: {
      [localArns.StepFunctionArn]: async (p) => {
        steps.push(String(p.action));
        return p.action === 'export-outcome' ? { allOk: true } : {};
      },
    },
    callbacks: {
      [localArns.AwaitFunctionArn]: async (p) => {
        waits.push({ wait: String(p.wait), token: p.taskToken });
      },
      [localArns.AgentTaskFunctionArn]: async (p) => {
        agentTasks.push({ kind: String(p.kind), token: p.taskToken });
      },
    },
    timeoutOverridesMs: overrides.timeout ?? {},
    heartbeatOverridesMs: overrides.heartbeat ?? {},
    retryIntervalOverridesMs: { Export: 0, Import: 0 },
    onEnd: (id, status) => ends.push({ id, status }),
  });
  const until = async (f: () => boolean, what: string) => {
    for (let i = 0; i < 200; i++) {
      if (f()) return;
      await wait(10);
    }
    throw new Error(`timed out waiting for ${what}`);
  };
  return { runner, store, steps, waits, agentTasks, ends, until };
}

describe('the durable runner on the product definition', () => {
  it('runs to Rejected when the approval callback says so', async () => {
    const h = harness();
    await h.runner.start('t-1');
    await h.until(() => h.waits.length === 1, 'the approval wait');
    expect(h.steps).toEqual(['validate']);
    expect(h.waits[0]!.wait).toBe('approval');
    await h.runner.sendTaskSuccess(h.waits[0]!.token, { decision: 'rejected' });
    await h.until(() => h.ends.length === 1, 'the end');
    expect(h.ends[0]).toEqual({ id: 't-1', status: 'succeeded' });
    expect(h.store.getExecution('t-1')).toMatchObject({ status: 'succeeded', state: 'Rejected' });
  });

  it('turns a callback timeout into the Catch path (approval → Expire)', async () => {
    const h = harness(undefined, { timeout: { AwaitApproval: 30 } });
    await h.runner.start('t-2');
    await h.until(() => h.ends.length === 1, 'the end');
    expect(h.steps).toEqual(['validate', 'expire']);
    await expect(h.runner.sendTaskSuccess(h.waits[0]!.token, {})).rejects.toThrow(/no longer waiting/);
    // The same error class as the Step Functions engine's, so callers handle both alike.
    await expect(h.runner.sendTaskHeartbeat(h.waits[0]!.token)).rejects.toBeInstanceOf(TaskTokenError);
  });

  it('retries an agent task that misses its heartbeat with a new token, and a heartbeat keeps it alive', async () => {
    const h = harness(undefined, { heartbeat: { Export: 60 } });
    await h.runner.start('t-3');
    for (const w of ['approval', 'appliance-sent', 'appliance-connected']) {
      await h.until(() => h.waits.some((x) => x.wait === w), w);
      await h.runner.sendTaskSuccess(h.waits.find((x) => x.wait === w)!.token, { decision: 'approved' });
      if (w === 'approval') {
        // The ODT node's key for the transfer (#18), before anything else.
        await h.until(() => h.agentTasks.some((x) => x.kind === 'make-key'), 'the make-key task');
        await h.runner.sendTaskSuccess(h.agentTasks.find((x) => x.kind === 'make-key')!.token, {});
      }
    }
    const exports = () => h.agentTasks.filter((x) => x.kind === 'export');
    await h.until(() => exports().length === 2, 'a second export task after the missed heartbeat');
    expect(exports()[0]!.token).not.toBe(exports()[1]!.token);
    const token = exports()[1]!.token;
    for (let i = 0; i < 4; i++) {
      await wait(30);
      await h.runner.sendTaskHeartbeat(token);
    }
    expect(exports()).toHaveLength(2);
    await h.runner.sendTaskSuccess(token, { outcomes: [] });
    await h.until(() => h.waits.some((x) => x.wait === 'shipped'), 'the shipped wait');
    expect(h.steps).toContain('export-outcome');
    await h.runner.stop();
  });

  it('resumes after a restart at the same wait with the same token, even if the answer came in between', async () => {
    const store = new MemoryRunnerStore();
    const first = harness(store);
    await first.runner.start('t-4');
    await first.until(() => first.waits.length === 1, 'the approval wait');
    const token = first.waits[0]!.token;
    await first.runner.stop();
    // The answer arrives while no runner listens.
    await first.runner.sendTaskSuccess(token, { decision: 'approved' });
    const second = harness(store);
    expect(second.runner.resumeAll()).toBe(1);
    await second.until(() => second.agentTasks.some((w) => w.kind === 'make-key'), 'the next wait');
    expect(second.steps).toEqual([]);
    expect(store.getExecution('t-4')).toMatchObject({ state: 'MakeKey', status: 'running' });
    await second.runner.stop();
  });
});

// Issue 23, point 3: stop() ends every wait it holds. The interpreter races each Task against a
// timer of the state's TimeoutSeconds (21 days for most callbacks) that it clears only when the
// task settles: a callback left unsettled kept that timer, and so the process (bench/slack, odt
// serve after SIGTERM), alive.
describe('the durable runner, stopped', () => {
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

  it('leaves no timer alive while callback tasks wait, and a restart resumes them', async () => {
    const store = new MemoryRunnerStore();
    const h = harness(store);
    await wait(20);
    const before = timers();
    await h.runner.start('t-5');
    await h.runner.start('t-6');
    await h.until(() => h.waits.length === 2, 'both approval waits');
    expect(timers()).toBeGreaterThan(before);

    await h.runner.stop();

    expect(timers()).toBeLessThanOrEqual(before);
    // Stopped, not ended: both still wait for approval, with their tokens.
    expect(h.ends).toEqual([]);
    expect(store.getExecution('t-5')).toMatchObject({ state: 'AwaitApproval', status: 'running' });
    expect(store.tasks.size).toBe(2);
    const again = harness(store);
    expect(again.runner.resumeAll()).toBe(2);
    await again.until(() => again.waits.length === 2, 'the waits re-entered');
    expect(again.waits.map((w) => w.token).sort()).toEqual(h.waits.map((w) => w.token).sort());
    await again.runner.sendTaskSuccess(again.waits[0]!.token, { decision: 'rejected' });
    await again.until(() => again.ends.length === 1, 'the end');
    await again.runner.stop();
    expect(timers()).toBeLessThanOrEqual(before);
  });
});
