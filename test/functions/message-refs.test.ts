/**
 * The Slack message refs (bot/message-refs.ts) behave the same in memory, in SQLite and in
 * DynamoDB (dynalite): the chat notifier relies on partial updates keeping the other fields.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryMessageRefs, type MessageRefs, SqliteMessageRefs } from '../../bot/message-refs.ts';
import { DynamoMessageRefs } from '../../functions/store/dynamodb-message-refs.ts';
import { type Dynalite, startDynalite } from './support.ts';

let db: Dynalite;
const dir = mkdtempSync(join(tmpdir(), 'odt-refs-'));
beforeAll(async () => {
  db = await startDynalite('odt-refs');
});
afterAll(async () => {
  await db?.close();
  rmSync(dir, { recursive: true, force: true });
});

const kinds: [string, () => MessageRefs][] = [
  ['memory', () => new MemoryMessageRefs()],
  ['SQLite', () => SqliteMessageRefs.open(join(dir, `refs-${Math.random()}.db`))],
  ['DynamoDB', () => new DynamoMessageRefs(db.client(), db.tableName)],
];

describe.each(kinds)('message refs in %s', (_name, make) => {
  it('is empty for an unknown transfer, then keeps every field a partial update did not name', async () => {
    const refs = make();
    const id = `tr-${Math.random().toString(36).slice(2)}`;
    expect(await refs.get(id)).toBeUndefined();
    expect(await refs.update(id, { channel: 'CAPPROVERS', threadTs: '1.1' })).toEqual({
      transferId: id,
      channel: 'CAPPROVERS',
      threadTs: '1.1',
    });
    await refs.update(id, { progressTs: '2.2', lastUpdateAt: 1000 });
    const after = await refs.update(id, { lastUpdateAt: 6000, reportTs: undefined });
    expect(after).toEqual({
      transferId: id,
      channel: 'CAPPROVERS',
      threadTs: '1.1',
      progressTs: '2.2',
      lastUpdateAt: 6000,
    });
    await refs.update(id, { reportTs: '3.3', reportKey: '1' });
    expect(await refs.get(id)).toEqual({ ...after, reportTs: '3.3', reportKey: '1' });
    // Another transfer is another record.
    expect(await refs.get(`${id}-other`)).toBeUndefined();
  });
});
