/**
 * `odt serve`'s admin API over a fresh state folder, as the tests of `odt transfer …` use it: a
 * SQLite store, the permission cases' TransferService, and serve.json written where `odt transfer
 * --state-dir` finds the API, as `odt serve` writes it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TransferService } from '../../core/index.ts';
import { adminToken } from '../../local/admin-token.ts';
import { type ControlApi, startControlApi } from '../../local/control-api.ts';
import { SqliteStore } from '../../local/store/sqlite-store.ts';
import { permissionService } from './permission-cases.ts';

export interface AdminApiFixture {
  readonly dir: string;
  readonly stores: SqliteStore;
  readonly service: TransferService;
  readonly api: ControlApi;
  close(): Promise<void>;
}

/** Starts it in a new temporary folder named after `prefix`; `close` stops it and removes the folder. */
export async function startAdminApi(prefix: string): Promise<AdminApiFixture> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const stores = SqliteStore.open(dir);
  const service = permissionService(stores);
  const api = await startControlApi({ service, adminToken: adminToken(dir) });
  writeFileSync(join(dir, 'serve.json'), `${JSON.stringify({ url: api.url })}\n`);
  return {
    dir,
    stores,
    service,
    api,
    close: async () => {
      await api.close();
      stores.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
