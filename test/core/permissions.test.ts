/**
 * Issue 23, point 1: who may do what lives in core. Every person's action on a transfer is decided
 * by TransferService, with one rule table (core/model/permissions.ts): a stranger is refused with
 * NOT_ALLOWED and nothing changes, the requester may cancel, retry and report the customer's
 * shipping steps but never decide, an approver may do everything but approve or reject their own
 * request (OWN_REQUEST).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type Approvers,
  ApproversUnavailableError,
  NotAllowedError,
  OwnRequestError,
  PermissionError,
  type PersonAction,
  permissions,
  refusal,
  type TransferService,
} from '../../core/index.ts';
import { SqliteStore } from '../../local/store/sqlite-store.ts';
import {
  expectTakenBy,
  idleWorkflow,
  isShippingEvent,
  PEOPLE,
  type PermissionCase,
  permissionCases,
  permissionService,
  seedTransfer,
} from '../support/permission-cases.ts';

let dir: string;
let stores: SqliteStore;
let workflowCalls: string[];

/** The service over this test's stores; its workflow notes each call in `workflowCalls`. */
function service(approvers?: Approvers): TransferService {
  return permissionService(stores, { workflow: idleWorkflow(workflowCalls), approvers });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'odt-permissions-'));
  stores = SqliteStore.open(dir);
  workflowCalls = [];
});
afterEach(() => {
  stores.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Takes `action` on transfer `id` as `actor` through the service, as the entry points do. */
function act(svc: TransferService, action: PermissionCase['action'], id: string, actor: string) {
  switch (action) {
    case 'approve':
      return svc.approve(id, actor);
    case 'reject':
      return svc.reject(id, actor, 'no NAS free until May');
    case 'cancel':
      return svc.cancel(id, actor, 'moving by network after all');
    case 'retry':
      return svc.retry(id, actor);
    case 'shipped':
      return svc.event(id, 'shipped', actor, { carrier: 'DHL', tracking: 'JD0002' });
    default:
      if (!isShippingEvent(action)) throw new Error(`no call for ${action}`);
      return svc.event(id, action, actor);
  }
}

describe('issue 23: the rule table', () => {
  it('names who may take each action of a person on a transfer', () => {
    expect(permissions).toEqual({
      view: 'requester-or-approvers',
      approve: 'other-approvers',
      reject: 'other-approvers',
      cancel: 'requester-or-approvers',
      retry: 'requester-or-approvers',
      'appliance-sent': 'approvers',
      'appliance-connected': 'requester-or-approvers',
      shipped: 'requester-or-approvers',
      received: 'approvers',
      wiped: 'approvers',
    } satisfies Record<PersonAction, string>);
  });

  it('refusal() is undefined when allowed, else the coded refusal saying who may', () => {
    const t = { id: 'tr-1', requester: 'alice' };
    expect(refusal('cancel', t, { id: 'alice', isApprover: false })).toBeUndefined();
    expect(refusal('cancel', t, { id: 'bob', isApprover: true })).toBeUndefined();
    const stranger = refusal('cancel', t, { id: 'eve', isApprover: false });
    expect(stranger).toBeInstanceOf(NotAllowedError);
    expect(stranger).toMatchObject({
      code: 'NOT_ALLOWED',
      action: 'cancel',
      actor: 'eve',
      requester: 'alice',
    });
    expect(stranger?.message).toBe(
      'Only its requester (alice) or an approver may cancel transfer tr-1, and eve is neither; nothing changed.',
    );
    const own = refusal('approve', t, { id: 'alice', isApprover: true });
    expect(own).toBeInstanceOf(OwnRequestError);
    expect(own).toMatchObject({ code: 'OWN_REQUEST', allowed: 'other-approvers' });
    expect(own?.message).toBe(
      'alice requested transfer tr-1 and cannot also approve it (four eyes); ask another approver. Nothing changed.',
    );
    expect(refusal('received', t, { id: 'alice', isApprover: false })?.message).toBe(
      'Only an approver may report that the NAS of transfer tr-1 was received and mounted, and alice is not an approver; nothing changed. Ask a member of the approvers group.',
    );
  });
});

describe.each(permissionCases)('issue 23: $action through TransferService', (c) => {
  it('a stranger is refused with NOT_ALLOWED, and nothing changes', async () => {
    const svc = service();
    const t = await seedTransfer(stores.transfers, c.phase);
    const error = await act(svc, c.action, t.id, PEOPLE.stranger).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotAllowedError);
    expect(error).toMatchObject({
      code: 'NOT_ALLOWED',
      action: c.action,
      actor: PEOPLE.stranger,
      transferId: t.id,
    });
    // The message says who may.
    expect((error as Error).message).toContain(
      c.requesterMay ? `its requester (${PEOPLE.requester}) or an approver` : 'Only an approver',
    );
    expect(await svc.get(t.id)).toEqual(t);
    expect(workflowCalls).toEqual([]);
  });

  it(`the requester ${c.requesterMay ? 'may' : 'is refused with NOT_ALLOWED'}`, async () => {
    const svc = service();
    const t = await seedTransfer(stores.transfers, c.phase);
    if (c.requesterMay) {
      await act(svc, c.action, t.id, PEOPLE.requester);
      expectTakenBy(c, await svc.get(t.id), PEOPLE.requester);
    } else {
      await expect(act(svc, c.action, t.id, PEOPLE.requester)).rejects.toMatchObject({
        code: 'NOT_ALLOWED',
        message: expect.stringContaining(`${PEOPLE.requester} is not an approver`),
      });
      expect(await svc.get(t.id)).toEqual(t);
    }
  });

  it('an approver may', async () => {
    const svc = service();
    const t = await seedTransfer(stores.transfers, c.phase);
    await act(svc, c.action, t.id, PEOPLE.approver);
    expectTakenBy(c, await svc.get(t.id), PEOPLE.approver);
  });
});

describe('issue 23: four eyes through TransferService', () => {
  it.each(['approve', 'reject'] as const)(
    'an approver who asked for the transfer may not %s it (OWN_REQUEST), and nothing changes',
    async (action) => {
      const svc = service();
      const t = await seedTransfer(stores.transfers, 'requested', PEOPLE.approverRequester);
      const error = await act(svc, action, t.id, PEOPLE.approverRequester).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OwnRequestError);
      expect(error).toBeInstanceOf(PermissionError);
      expect(error).toMatchObject({ code: 'OWN_REQUEST', action, actor: PEOPLE.approverRequester });
      expect((error as Error).message).toContain('four eyes');
      expect(await svc.get(t.id)).toEqual(t);
    },
  );

  it('the same approver may cancel their own request (as its requester)', async () => {
    const svc = service();
    const t = await seedTransfer(stores.transfers, 'requested', PEOPLE.approverRequester);
    expect((await svc.cancel(t.id, PEOPLE.approverRequester)).phase).toBe('cancelled');
  });
});

describe('issue 23: who sees a transfer, through TransferService', () => {
  it('authorize(view): its requester and the approvers; a stranger is refused with NOT_ALLOWED', async () => {
    const svc = service();
    const t = await seedTransfer(stores.transfers, 'approved');
    await expect(svc.authorize(t.id, 'view', PEOPLE.stranger)).rejects.toMatchObject({
      code: 'NOT_ALLOWED',
      action: 'view',
    });
    expect((await svc.authorize(t.id, 'view', PEOPLE.requester)).id).toBe(t.id);
    expect((await svc.authorize(t.id, 'view', PEOPLE.approver)).id).toBe(t.id);
  });

  it('listFor: an approver every transfer, anyone else their own', async () => {
    const svc = service();
    const mine = await seedTransfer(stores.transfers, 'requested');
    const theirs = await seedTransfer(stores.transfers, 'approved', PEOPLE.approverRequester);
    const ids = async (who: string) => {
      const seen = await svc.listFor(who);
      return { all: seen.all, ids: seen.transfers.map((t) => t.id) };
    };
    expect(await ids(PEOPLE.approver)).toEqual({ all: true, ids: [mine.id, theirs.id] });
    expect(await ids(PEOPLE.requester)).toEqual({ all: false, ids: [mine.id] });
    expect(await ids(PEOPLE.stranger)).toEqual({ all: false, ids: [] });
  });
});

describe('issue 23: an approvers list that cannot be read', () => {
  const unreadable: Approvers = {
    has: async () => {
      throw new ApproversUnavailableError('S0GROUP1', 'The approvers group S0GROUP1 cannot be read; fix it.');
    },
  };

  it('does not stop the requester from cancelling (no look-up is needed for them)', async () => {
    const svc = service(unreadable);
    const t = await seedTransfer(stores.transfers, 'approved');
    expect((await svc.cancel(t.id, PEOPLE.requester)).phase).toBe('cancelled');
  });

  it('refuses anyone else with its own reason, and changes nothing', async () => {
    const svc = service(unreadable);
    const t = await seedTransfer(stores.transfers, 'approved');
    await expect(svc.cancel(t.id, PEOPLE.approver)).rejects.toThrow('S0GROUP1 cannot be read');
    expect(await svc.get(t.id)).toEqual(t);
  });

  it('listFor shows one their own transfers, with the reason', async () => {
    const svc = service(unreadable);
    const t = await seedTransfer(stores.transfers, 'approved');
    const seen = await svc.listFor(PEOPLE.requester);
    expect(seen).toMatchObject({ all: false, approversUnreadable: expect.stringContaining('S0GROUP1') });
    expect(seen.transfers.map((x) => x.id)).toEqual([t.id]);
  });
});
