import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { fixedApprovers, type Transfer, TransferService } from '../../core/index.ts';
import { SqliteStore } from '../../local/store/sqlite-store.ts';
import { APPROVER_IDS, idleWorkflow, PEOPLE, seedTransfer } from '../support/permission-cases.ts';

let dir: string;
let stores: SqliteStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'odt-shipped-'));
  stores = SqliteStore.open(dir);
});
afterEach(() => {
  stores.close();
  rmSync(dir, { recursive: true, force: true });
});

// Issue 23, point 7: "shipped" answers two workflow waits for one new state; chat hears of it once.
it('tells chat once when the NAS is shipped back', async () => {
  const told: Transfer[] = [];
  const service = new TransferService({
    transfers: stores.transfers,
    tokens: stores.tokens,
    tasks: stores.tasks,
    workflow: idleWorkflow(),
    chat: {
      transferChanged: async (t) => void told.push(t),
      progress: async () => {},
      report: async () => {},
    },
    clock: { now: () => new Date('2026-12-01T10:00:00Z') },
    approvers: fixedApprovers(APPROVER_IDS),
    newId: () => 'tr-unused',
  });
  const t = await seedTransfer(stores.transfers, 'exported');
  await service.event(t.id, 'shipped', PEOPLE.requester, { carrier: 'DHL', tracking: '1234' });
  expect(told.map((x) => x.phase)).toEqual(['shipped']);
});
