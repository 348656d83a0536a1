/**
 * The service asks its Approvers port at each decision (issue #7: "only members of the configured
 * approvers group may approve"): a membership that changes between two clicks is honoured, and an
 * approvers list that cannot be read refuses without changing the transfer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { NotAllowedError } from '../../core/errors.ts';
import { type Approvers, ApproversUnavailableError, fixedApprovers } from '../../core/ports/approvers.ts';
import type { WorkflowEngine } from '../../core/ports/workflow.ts';
import { TransferService } from '../../core/service/transfer-service.ts';
import { SqliteStore } from '../../local/store/sqlite-store.ts';

const noChat = { transferChanged: async () => {}, progress: async () => {}, report: async () => {} };

let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.reverse()) c();
  cleanup = [];
});

function service(approvers: Approvers): { service: TransferService; successes: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'odt-approvers-port-'));
  const stores = SqliteStore.open(dir);
  cleanup.push(() => {
    stores.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const successes: string[] = [];
  const workflow: WorkflowEngine = {
    start: async () => {},
    sendTaskSuccess: async (token) => void successes.push(token),
    sendTaskFailure: async () => {},
    sendTaskHeartbeat: async () => {},
  };
  let n = 0;
  const svc = new TransferService({
    transfers: stores.transfers,
    tokens: stores.tokens,
    tasks: stores.tasks,
    workflow,
    chat: noChat,
    clock: { now: () => new Date('2026-11-26T10:00:00Z') },
    approvers,
    newId: () => `tr-port-${++n}`,
  });
  return { service: svc, successes };
}

const request = {
  site: 'acme',
  requester: 'alice',
  items: [{ kind: 'vm' as const, source: 'web-01', target: { vdc: 'vdc' } }],
};

describe('the Approvers port', () => {
  it('asks at each decision: a member approves, and once removed may no longer decide', async () => {
    const members = new Set(['bob', 'carol']);
    const asked: string[] = [];
    const { service: svc } = service({
      has: async (id) => {
        asked.push(id);
        return members.has(id);
      },
    });
    const first = await svc.request(request);
    const second = await svc.request(request);
    expect((await svc.approve(first.id, 'bob')).phase).toBe('approved');
    members.delete('carol');
    await expect(svc.approve(second.id, 'carol')).rejects.toThrow('carol is not an approver');
    await expect(svc.reject(second.id, 'carol', 'no room')).rejects.toThrow(NotAllowedError);
    expect((await svc.get(second.id)).phase).toBe('requested');
    expect(asked).toEqual(['bob', 'carol', 'carol']);
    expect(await svc.isApprover('bob')).toBe(true);
    expect(await svc.isApprover('carol')).toBe(false);
  });

  it('still refuses self-approval by a member (four eyes)', async () => {
    const { service: svc } = service(fixedApprovers(['alice', 'bob']));
    const t = await svc.request(request);
    await expect(svc.approve(t.id, 'alice')).rejects.toThrow('four eyes');
  });

  it('an approvers list that cannot be read refuses with its message and changes nothing', async () => {
    const { service: svc, successes } = service({
      has: async () => {
        throw new ApproversUnavailableError(
          'S0GROUP1',
          'The approvers group S0GROUP1 cannot be read; fix it.',
        );
      },
    });
    const t = await svc.request(request);
    await svc.onWait(t.id, 'approval', 'token-1');
    const refusal = await svc.approve(t.id, 'bob').catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(ApproversUnavailableError);
    expect(refusal).toMatchObject({ code: 'FORBIDDEN', entry: 'S0GROUP1' });
    await expect(svc.reject(t.id, 'bob', 'no')).rejects.toThrow('S0GROUP1 cannot be read');
    expect((await svc.get(t.id)).phase).toBe('requested');
    expect(successes).toEqual([]);
  });
});
