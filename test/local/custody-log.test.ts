/**
 * Issue 18, custody log: `odt transfer show --history` over `odt serve`'s admin API prints the
 * hash-chained history and checks it; an entry edited directly in the SQLite file is named, with
 * exit code 4 (CUSTODY_BROKEN).
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTransfer, type Transfer, type TransferService } from '../../core/index.ts';
import { type SqliteStore, storeFileName } from '../../local/store/sqlite-store.ts';
import { type AdminApiFixture, startAdminApi } from '../support/admin-api.ts';
import { odt } from '../support/cli.ts';
import { PEOPLE } from '../support/permission-cases.ts';

let dir: string;
let stores: SqliteStore;
let service: TransferService;
let fixture: AdminApiFixture;
beforeEach(async () => {
  fixture = await startAdminApi('odt-custody-');
  ({ dir, stores, service } = fixture);
});
afterEach(() => fixture.close());

/** A transfer requested, approved and sent its appliance, each step through the service. */
async function walked(): Promise<Transfer> {
  const t = createTransfer(
    {
      site: 'acme-dc1',
      requester: PEOPLE.requester,
      items: [{ kind: 'vm', source: 'web-01', target: { vdc: 'acme-vdc' } }],
    },
    'tr-custody-1',
    new Date('2026-12-01T09:00:00Z'),
  );
  await stores.transfers.create(t);
  await service.approve(t.id, PEOPLE.approver);
  await service.event(t.id, 'appliance-sent', PEOPLE.approver);
  return service.get(t.id);
}

/** Rewrites the stored JSON of transfer `id` with `edit`, as someone with the SQLite file would. */
function editInFile(id: string, edit: (t: Transfer) => void): void {
  const db = new Database(join(dir, storeFileName));
  try {
    const row = db.prepare('SELECT body FROM transfers WHERE id = ?').get(id) as { body: string };
    const t = JSON.parse(row.body) as Transfer;
    edit(t);
    db.prepare('UPDATE transfers SET body = ? WHERE id = ?').run(JSON.stringify(t), id);
  } finally {
    db.close();
  }
}

const show = (id: string) => odt(['transfer', 'show', id, '--history', '--state-dir', dir]);

describe('odt transfer show --history', () => {
  it('prints each entry with who acted, its link and hash, and that the chain holds', async () => {
    const t = await walked();
    const r = await show(t.id);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const [first, second, third] = t.history;
    expect(t.history).toHaveLength(3);
    expect(r.out).toMatch(new RegExp(`1 +${first!.at} +requested +${PEOPLE.requester}`));
    expect(r.out).toMatch(new RegExp(`2 +\\S+ +approved +${PEOPLE.approver}`));
    expect(r.out).toMatch(new RegExp(`3 +\\S+ +appliance-sent +${PEOPLE.approver}`));
    expect(r.out).toContain(`prev ${'0'.repeat(12)}  hash ${first!.hash!.slice(0, 12)}`);
    expect(r.out).toContain(`prev ${first!.hash!.slice(0, 12)}  hash ${second!.hash!.slice(0, 12)}`);
    expect(r.out).toContain(`Chain intact`);
    expect(r.out).toContain(third!.hash);
  });

  it('names the entry edited in the SQLite file, exit 4', async () => {
    const t = await walked();
    editInFile(t.id, (s) => {
      s.history[1]!.actor = 'UMALLORY';
    });
    const r = await show(t.id);
    expect(r.code).toBe(4);
    expect(r.err).toContain(`The custody log of ${t.id} is broken at entry 2`);
    expect(r.err).toContain('CUSTODY_BROKEN');
    expect(r.out).toMatch(/2 +\S+ +approved +UMALLORY[^\n]*\n[^\n]*✗ EDITED/);
  });

  it('names the entry edited even when its hash was recomputed to match', async () => {
    const t = await walked();
    const { entryHash } = await import('../../core/index.ts');
    editInFile(t.id, (s) => {
      const e = s.history[1]!;
      e.at = '2026-12-01T08:00:00.000Z';
      e.hash = entryHash(s.id, e.prev!, e);
    });
    const r = await show(t.id);
    expect(r.code).toBe(4);
    expect(r.err).toContain('broken at entry 2: entry 2 was edited and its hash recomputed');
  });

  it('with --pinned (the head a report quoted), names a log rewritten hashes and all', async () => {
    const t = await walked();
    const reported = t.history[2]!.hash!;
    const ok = await odt(['transfer', 'show', t.id, '--history', '--pinned', reported, '--state-dir', dir]);
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('Pinned: entry 3 has the hash the report quoted');
    // The newest entry rewritten with its hash recomputed: the chain alone cannot tell.
    const { entryHash } = await import('../../core/index.ts');
    editInFile(t.id, (s) => {
      const e = s.history[2]!;
      e.actor = 'UMALLORY';
      e.hash = entryHash(s.id, e.prev!, e);
    });
    expect((await show(t.id)).code).toBe(0);
    const r = await odt(['transfer', 'show', t.id, '--history', '--pinned', reported, '--state-dir', dir]);
    expect(r.code).toBe(4);
    expect(r.err).toContain(`The custody log of ${t.id} does not check: no entry has the hash ${reported}`);
  });

  it('shows a history written before the chain as such, and chains it at the next change', async () => {
    const t = await walked();
    editInFile(t.id, (s) => {
      s.history = s.history.map(({ prev: _p, hash: _h, ...legacy }) => legacy);
    });
    const before = await show(t.id);
    expect(before.code).toBe(0);
    expect(before.out).toContain('Not chained: all 3 entries were written before the custody log');
    await service.event(t.id, 'appliance-connected', PEOPLE.requester);
    const after = await show(t.id);
    expect(after.code).toBe(0);
    expect(after.out).toContain('Chain intact');
    expect((await service.get(t.id)).history.every((h) => h.hash)).toBe(true);
  });
});
