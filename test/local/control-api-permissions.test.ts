/**
 * Issue 23, point 1, through the admin API of `odt serve` and `odt transfer …` over it: the actor
 * the API is given (`--as`, self-asserted until issue #22) goes through the same core check as a
 * Slack click. A refusal is HTTP 403 with its code, and the CLI's exit code 2 with the message
 * saying who may.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Transfer, TransferService } from '../../core/index.ts';
import { adminToken } from '../../local/admin-token.ts';
import type { ControlApi } from '../../local/control-api.ts';
import type { SqliteStore } from '../../local/store/sqlite-store.ts';
import { type AdminApiFixture, startAdminApi } from '../support/admin-api.ts';
import { odt } from '../support/cli.ts';
import {
  expectTakenBy,
  PEOPLE,
  type PermissionCase,
  permissionCases,
  seedTransfer,
} from '../support/permission-cases.ts';

let dir: string;
let stores: SqliteStore;
let service: TransferService;
let api: ControlApi;
let fixture: AdminApiFixture;
beforeEach(async () => {
  fixture = await startAdminApi('odt-admin-perm-');
  ({ dir, stores, service, api } = fixture);
});
afterEach(() => fixture.close());

/** The admin API call of `action` as `actor`. */
function post(c: PermissionCase, id: string, actor: string): Promise<Response> {
  const [verb, body] =
    c.action === 'approve' || c.action === 'retry'
      ? [c.action, {}]
      : c.action === 'reject' || c.action === 'cancel'
        ? [c.action, { reason: 'not now' }]
        : [
            'event',
            {
              event: c.action,
              ...(c.action === 'shipped' ? { carrier: 'DHL', tracking: 'JD0002' } : {}),
            },
          ];
  return fetch(`${api.url}/transfers/${id}/${verb}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken(dir)}`, 'content-type': 'application/json' },
    body: JSON.stringify({ actor, ...body }),
  });
}

/** The `odt transfer …` command line of `action` as `actor`. */
function cli(c: PermissionCase, id: string, actor: string): string[] {
  const common = ['--as', actor, '--state-dir', dir];
  switch (c.action) {
    case 'approve':
    case 'retry':
      return ['transfer', c.action, id, ...common];
    case 'reject':
    case 'cancel':
      return ['transfer', c.action, id, '--reason', 'not now', ...common];
    case 'shipped':
      return ['transfer', 'event', id, 'shipped', '--carrier', 'DHL', '--tracking', 'JD0002', ...common];
    default:
      return ['transfer', 'event', id, c.action, ...common];
  }
}

const unchanged = async (t: Transfer) => expect(await service.get(t.id)).toEqual(t);

describe.each(permissionCases)('issue 23: $action through the admin API and `odt transfer`', (c) => {
  it('the admin API refuses a stranger with 403 NOT_ALLOWED saying who may, and nothing changes', async () => {
    const t = await seedTransfer(stores.transfers, c.phase);
    const res = await post(c, t.id, PEOPLE.stranger);
    expect(res.status).toBe(403);
    const body = (await res.json()) as { code: string; error: string };
    expect(body.code).toBe('NOT_ALLOWED');
    expect(body.error).toContain(
      c.requesterMay ? `its requester (${PEOPLE.requester}) or an approver` : 'Only an approver',
    );
    await unchanged(t);
  });

  it('`odt transfer` as a stranger exits 7 (not allowed) with the refusal and its code, and nothing changes', async () => {
    const t = await seedTransfer(stores.transfers, c.phase);
    const run = await odt(cli(c, t.id, PEOPLE.stranger));
    // The refusal's own exit code (cli/exit-codes.ts), as for every command; it was 2 for any refusal.
    expect(run.code).toBe(7);
    expect(run.err).toMatch(/^odt: .*\[NOT_ALLOWED\]\n$/);
    expect(run.err).toContain(PEOPLE.stranger);
    await unchanged(t);
  });

  it(`as the requester: ${c.requesterMay ? 'allowed' : 'refused with NOT_ALLOWED'}`, async () => {
    const t = await seedTransfer(stores.transfers, c.phase);
    const run = await odt(cli(c, t.id, PEOPLE.requester));
    if (c.requesterMay) {
      expect(run, run.err).toMatchObject({ code: 0, err: '' });
      expect(c.done(await service.get(t.id))).toBe(true);
    } else {
      expect(run.code).toBe(7);
      expect(run.err).toContain(`${PEOPLE.requester} is not an approver`);
      expect(run.err).toContain('[NOT_ALLOWED]');
      await unchanged(t);
    }
  });

  it('as an approver: allowed', async () => {
    const t = await seedTransfer(stores.transfers, c.phase);
    const run = await odt(cli(c, t.id, PEOPLE.approver));
    expect(run, run.err).toMatchObject({ code: 0, err: '' });
    expectTakenBy(c, await service.get(t.id), PEOPLE.approver);
  });
});

describe('issue 23: four eyes through the admin API', () => {
  it.each(['approve', 'reject'] as const)(
    'an approver may not %s their own request: 403 OWN_REQUEST, nothing changes',
    async (action) => {
      const t = await seedTransfer(stores.transfers, 'requested', PEOPLE.approverRequester);
      const c = permissionCases.find((x) => x.action === action)!;
      const res = await post(c, t.id, PEOPLE.approverRequester);
      expect(res.status).toBe(403);
      expect(((await res.json()) as { code: string }).code).toBe('OWN_REQUEST');
      await unchanged(t);
    },
  );
});
