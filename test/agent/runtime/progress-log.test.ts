import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runAgent } from '../../../agent/runtime/run-agent.ts';
import { type ControlPlane, startControlPlane } from '../../../local/control-plane.ts';
import { nodeMakesKey } from '../../support/fake-node.ts';
import { captureLogs } from '../../support/logs.ts';
import { vmAndTemplateRequest } from '../../support/vm-and-template-request.ts';

// Issue #19: an agent's log says how far the whole task is at a steady interval (bytes of the
// total, rate, ETA), not only per item in its heartbeats.
let plane: ControlPlane | undefined;
let dir: string | undefined;
afterEach(async () => {
  await plane?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('odt agent run: the overall progress in the log', () => {
  it('logs `task progress` with bytes done of the total, rate and ETA at the interval, and once at the end', async () => {
    dir = await mkdtemp(join(tmpdir(), 'odt-progress-log-'));
    plane = await startControlPlane({ stateDir: join(dir, 'serve'), approvers: ['bob'] });
    const t = await plane.service.request(vmAndTemplateRequest());
    await plane.service.approve(t.id, 'bob');
    // The ODT node's key for the transfer (#18), from a fake node: the export waits for it.
    await nodeMakesKey(plane.service, t.id);
    await plane.service.event(t.id, 'appliance-sent', 'bob');
    await plane.service.event(t.id, 'appliance-connected', 'alice');
    const code = await plane.registry.issueCode('acme', 60_000, new Date());
    const logs = captureLogs('info');
    const stop = new AbortController();
    await runAgent({
      server: plane.agentApi.url,
      dir: join(dir, 'agent'),
      code: code.code,
      site: 'acme',
      signal: stop.signal,
      pollMinMs: 50,
      pollMaxMs: 100,
      inventoryEveryMs: 0,
      maxTasks: 1,
      progressLogEveryMs: 40,
      log: logs.logger,
      role: {
        name: 'export',
        async run({ task, onProgress }) {
          // Two files of 1 MB each, 100 kB every 20 ms.
          for (let i = 0; i <= 10; i++) {
            for (const file of ['a.vmdk', 'b.vmdk'])
              onProgress({ item: task.itemIds[0]!, file, bytes: i * 100_000, total: 1_000_000 });
            await new Promise((r) => setTimeout(r, 20));
          }
          return task.itemIds.map((itemId) => ({ itemId, ok: true, bytes: 2_000_000 }));
        },
      },
    });
    const lines = logs.lines().filter((l) => l.msg === 'task progress');
    // ~220 ms of work at 40 ms, and the last one at the end.
    expect(lines.length).toBeGreaterThanOrEqual(3);
    for (const l of lines) expect(l).toMatchObject({ transferId: t.id, taskId: expect.any(String) });
    const middle = lines.find((l) => {
      const p = l.progress as { bytesDone: number };
      return p.bytesDone > 0 && p.bytesDone < 2_000_000;
    });
    expect(middle?.progress).toMatchObject({
      bytesTotal: 2_000_000,
      bytesPerSecond: expect.any(Number),
      etaSeconds: expect.any(Number),
      files: 2,
    });
    expect(lines.at(-1)!.progress).toMatchObject({
      bytesDone: 2_000_000,
      bytesTotal: 2_000_000,
      etaSeconds: 0,
    });
  });

  it('with the files planned before the first byte, the total is the whole task from the start', async () => {
    dir = await mkdtemp(join(tmpdir(), 'odt-progress-log-'));
    plane = await startControlPlane({ stateDir: join(dir, 'serve'), approvers: ['bob'] });
    const t = await plane.service.request(vmAndTemplateRequest());
    await plane.service.approve(t.id, 'bob');
    await nodeMakesKey(plane.service, t.id);
    await plane.service.event(t.id, 'appliance-sent', 'bob');
    await plane.service.event(t.id, 'appliance-connected', 'alice');
    const code = await plane.registry.issueCode('acme', 60_000, new Date());
    const logs = captureLogs('info');
    await runAgent({
      server: plane.agentApi.url,
      dir: join(dir, 'agent'),
      code: code.code,
      site: 'acme',
      signal: new AbortController().signal,
      pollMinMs: 50,
      pollMaxMs: 100,
      inventoryEveryMs: 0,
      maxTasks: 1,
      progressLogEveryMs: 40,
      log: logs.logger,
      role: {
        name: 'export',
        async run({ task, onProgress, onPlan }) {
          const item = task.itemIds[0]!;
          // An import's check of the NAS comes first; once the data's plan is known (the verified
          // manifest, or an export's checked plan), the line is of the data only.
          onProgress({ item, file: 'item-1/a.vmdk.age', bytes: 10, total: 10, stage: 'verifying' });
          onPlan?.([
            { key: `${item}/a.vmdk`, bytes: 1_000_000 },
            { key: `${item}/b.vmdk`, bytes: 3_000_000 },
          ]);
          // A deferred disk's check (one pass) is not the data either.
          onProgress({ item, file: 'item-1/b.vmdk.age', bytes: 0, total: 3_000_100, stage: 'verifying' });
          for (let i = 0; i <= 5; i++) {
            onProgress({ item, file: 'a.vmdk', bytes: i * 100_000, total: 500_000 });
            await new Promise((r) => setTimeout(r, 20));
          }
          return task.itemIds.map((itemId) => ({ itemId, ok: true, bytes: 500_000 }));
        },
      },
    });
    const lines = logs.lines().filter((l) => l.msg === 'task progress');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    // While a.vmdk moves, b.vmdk (not started) counts at its estimate: 500 kB + 3 MB; the check is not counted.
    const middle = lines.find((l) => {
      const p = l.progress as { bytesDone: number };
      return p.bytesDone > 0 && p.bytesDone < 500_000;
    });
    expect(middle?.progress).toMatchObject({
      bytesTotal: 3_500_000,
      planned: true,
      estimated: true,
      files: 2,
    });
    expect(lines.at(-1)!.progress).toMatchObject({
      bytesDone: 500_000,
      bytesTotal: 3_500_000,
      planned: true,
    });
  });
});
