import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { createTransfer } from '../../core/model/lifecycle.ts';
import { SqliteStore, storeFileName } from '../../local/store/sqlite-store.ts';
import { storeConformance } from './conformance.ts';

storeConformance('SQLite (two connections on one file)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'odt-store-'));
  const a = SqliteStore.open(dir);
  const b = SqliteStore.open(dir);
  return {
    a,
    b,
    async close() {
      a.close();
      b.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

it('keeps the store in WAL mode in one file under the state directory, and survives a reopen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'odt-store-'));
  try {
    const first = SqliteStore.open(join(dir, 'state'));
    expect(first.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(first.db.name).toBe(join(dir, 'state', storeFileName));
    await first.tokens.putToken('tr-1', 'approval', 'tok');
    first.close();
    const second = SqliteStore.open(join(dir, 'state'));
    expect(await second.tokens.takeToken('tr-1', 'approval')).toBe('tok');
    second.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('lets exactly one of 6 processes win a claim and an update on the same file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'odt-store-'));
  try {
    const setup = SqliteStore.open(dir);
    const file = join(dir, storeFileName);
    const t0 = new Date('2026-11-26T10:00:00.000Z');
    const transfer = createTransfer(
      { site: 'acme', requester: 'U-REQ', items: [{ kind: 'vm', source: 'vm0', target: { vdc: 'v' } }] },
      'tr-procs',
      t0,
    );
    await setup.transfers.create(transfer);
    await setup.tasks.enqueue(
      {
        id: 'task-procs',
        kind: 'export',
        site: 'acme',
        transferId: transfer.id,
        itemIds: ['item-1'],
        heartbeatSeconds: 60,
      },
      t0,
    );
    setup.close();
    const script = join(import.meta.dirname, 'sqlite-contender.ts');
    const startAt = Date.now() + 1500;
    const run = promisify(execFile);
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        run(process.execPath, [
          '--import',
          'tsx',
          script,
          file,
          String(startAt),
          `agent-${i}`,
          'task-procs',
          'acme',
          transfer.id,
        ]),
      ),
    );
    const parsed = results.map(
      (r) => JSON.parse(r.stdout) as { claimed: boolean; updated: boolean; error: string },
    );
    expect(parsed.filter((p) => p.claimed)).toHaveLength(1);
    // every process read the transfer before or after others wrote; updates from one version: one wins each
    const check = SqliteStore.open(dir);
    const task = await check.tasks.get('task-procs');
    expect(task?.holder).toBe(`agent-${parsed.findIndex((p) => p.claimed)}`);
    const stored = await check.transfers.get(transfer.id);
    expect(stored?.version).toBe(parsed.filter((p) => p.updated).length);
    for (const p of parsed) if (!p.claimed) expect(p.error).toMatch(/^ConflictError/);
    check.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);
