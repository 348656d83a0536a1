import { describe, expect, it } from 'vitest';
import {
  approve,
  createTransfer,
  IllegalTransitionError,
  NotFoundError,
  OwnRequestError,
  outcome,
  reject,
  type TransferRequest,
  transferSchema,
  transition,
  updateItem,
  ValidationError,
} from '../../core/index.ts';

const at = new Date('2026-11-26T10:00:00Z');
const approvers = new Set(['U-APPROVER', 'U-OTHER', 'U-REQ']);

const request = (): TransferRequest => ({
  site: 'acme-hq',
  requester: 'U-REQ',
  items: [
    { kind: 'vm', source: 'DC0_H0_VM0', target: { vdc: 'acme-vdc', network: 'acme-net', powerOn: true } },
    {
      kind: 'template',
      source: 'tmpl-web',
      target: { vdc: 'acme-vdc', placement: 'catalog', catalog: 'acme' },
    },
  ],
});

describe('createTransfer', () => {
  it('builds a valid transfer in phase requested with pending items and a custody entry', () => {
    const t = createTransfer(request(), 'tr-0001', at);
    expect(transferSchema.parse(t)).toEqual(t);
    expect(t.phase).toBe('requested');
    expect(t.providerSite).toBe('provider');
    expect(t.items.map((i) => [i.id, i.result.state])).toEqual([
      ['item-1', 'pending'],
      ['item-2', 'pending'],
    ]);
    expect(t.items[0]!.target).toMatchObject({ placement: 'vapp', deploy: true, powerOn: true });
    expect(t.history).toEqual([
      {
        at: at.toISOString(),
        actor: 'U-REQ',
        phase: 'requested',
        prev: '0'.repeat(64),
        hash: expect.stringMatching(/^[0-9a-f]{64}$/),
      },
    ]);
  });

  it('names every offending field of a bad request', () => {
    const bad = {
      site: 'Acme HQ',
      requester: 'U-REQ',
      items: [
        { kind: 'disk', source: 'x', target: { vdc: 'v' } },
        {
          kind: 'template',
          source: 'y',
          target: { vdc: 'v', placement: 'catalog', powerOn: true, deploy: false },
        },
      ],
    };
    let err: unknown;
    try {
      createTransfer(bad as never, 'tr-0002', at);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    const v = err as ValidationError;
    expect(v.code).toBe('VALIDATION_FAILED');
    const paths = v.issues.map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining(['site', 'items.0.kind', 'items.1.target.catalog', 'items.1.target.powerOn']),
    );
    expect(v.message).toContain('items.1.target.catalog: placement "catalog" needs a catalog name');
  });

  it('leaves a catalog template in its catalog unless deploy or powerOn asks for a vApp from it', () => {
    const t = createTransfer(
      {
        ...request(),
        items: [
          { kind: 'template', source: 'a', target: { vdc: 'v', placement: 'catalog', catalog: 'c' } },
          {
            kind: 'template',
            source: 'b',
            target: { vdc: 'v', placement: 'catalog', catalog: 'c', network: 'n', powerOn: true },
          },
          {
            kind: 'template',
            source: 'c',
            target: { vdc: 'v', placement: 'catalog', catalog: 'c', deploy: true },
          },
          { kind: 'vm', source: 'd', target: { vdc: 'v' } },
        ],
      },
      'tr-0004',
      at,
    );
    expect(t.items.map((i) => [i.target.deploy, i.target.powerOn])).toEqual([
      [false, false],
      [true, true],
      [true, false],
      [true, false],
    ]);
    // The stored transfer parses back to itself: the filled-in default is stable.
    expect(transferSchema.parse(t)).toEqual(t);
  });

  it('refuses an empty item list', () => {
    expect(() => createTransfer({ ...request(), items: [] }, 'tr-0003', at)).toThrow(
      'a transfer needs at least one item',
    );
  });
});

describe('approval (four eyes)', () => {
  it('lets an approver who is not the requester approve', () => {
    const t = approve(createTransfer(request(), 'tr-0001', at), 'U-APPROVER', approvers, at);
    expect(t.phase).toBe('approved');
    expect(t.approver).toBe('U-APPROVER');
    expect(t.history.at(-1)).toMatchObject({ actor: 'U-APPROVER', phase: 'approved' });
  });

  it('refuses self-approval even by a member of the approvers group', () => {
    const t = createTransfer(request(), 'tr-0001', at);
    expect(() => approve(t, 'U-REQ', approvers, at)).toThrow(OwnRequestError);
    expect(() => approve(t, 'U-REQ', approvers, at)).toThrow('four eyes');
  });

  it('refuses someone outside the approvers group', () => {
    const t = createTransfer(request(), 'tr-0001', at);
    expect(() => approve(t, 'U-RANDOM', approvers, at)).toThrow('is not an approver');
  });

  it('refuses a second decision', () => {
    const t = approve(createTransfer(request(), 'tr-0001', at), 'U-APPROVER', approvers, at);
    expect(() => approve(t, 'U-OTHER', approvers, at)).toThrow(IllegalTransitionError);
    expect(() => reject(t, 'U-OTHER', approvers, 'no', at)).toThrow(IllegalTransitionError);
  });

  it('keeps the reason of a rejection and needs one', () => {
    const t = createTransfer(request(), 'tr-0001', at);
    expect(() => reject(t, 'U-APPROVER', approvers, '  ', at)).toThrow('needs a reason');
    const r = reject(t, 'U-APPROVER', approvers, 'VDC full until December', at);
    expect(r.phase).toBe('rejected');
    expect(r.rejectReason).toBe('VDC full until December');
  });
});

describe('items and outcome', () => {
  it('moves items through their states and derives the end phase', () => {
    let t = createTransfer(request(), 'tr-0001', at);
    t = updateItem(t, 'item-1', { state: 'exporting' }, at);
    t = updateItem(t, 'item-1', { state: 'exported', bytes: 1024 }, at);
    t = updateItem(t, 'item-2', { state: 'failed', reason: 'VM is powered on; power it off', code: 'X' }, at);
    expect(t.items[0]!.result).toMatchObject({ state: 'exported', bytes: 1024 });
    expect(t.items[1]!.result).toMatchObject({ state: 'failed', reason: 'VM is powered on; power it off' });
    expect(outcome(t)).toBe('completed-with-errors');
    t = updateItem(t, 'item-1', { state: 'failed', reason: 'disk' }, at);
    expect(outcome(t)).toBe('failed');
  });

  it('keeps what an imported item is called through its later states, and in the schema (#17)', () => {
    let t = createTransfer(request(), 'tr-0001', at);
    for (const state of ['exporting', 'exported', 'verified', 'importing'] as const)
      t = updateItem(t, 'item-1', { state }, at);
    const names = { vcenter: ['DC0_H0_VM0 (tr-0001 item-1)'], vcd: 'DC0_H0_VM0 (item-1)' };
    t = updateItem(t, 'item-1', { state: 'imported', names }, at);
    t = updateItem(t, 'item-1', { state: 'failed', reason: 'vCloud Director refused it' }, at);

    expect(t.items[0]!.result).toMatchObject({ state: 'failed', names });
    expect(transferSchema.parse(t)).toEqual(t);
  });

  it('refuses an item state jump and an unknown item', () => {
    const t = createTransfer(request(), 'tr-0001', at);
    expect(() => updateItem(t, 'item-1', { state: 'imported' }, at)).toThrow(IllegalTransitionError);
    expect(() => updateItem(t, 'item-9', { state: 'exporting' }, at)).toThrow(NotFoundError);
  });

  it('records who moved the transfer and why', () => {
    const t = transition(createTransfer(request(), 'tr-0001', at), 'cancelled', {
      actor: 'U-REQ',
      at,
      note: 'moved by network instead',
    });
    expect(t.history.at(-1)).toEqual({
      at: at.toISOString(),
      actor: 'U-REQ',
      phase: 'cancelled',
      note: 'moved by network instead',
      prev: t.history[0]!.hash,
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
  });
});
