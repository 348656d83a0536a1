/**
 * A separate process contending for the same SQLite file (run by sqlite.test.ts with tsx):
 * waits for the shared start time, tries many conditional writes in a row and prints which won.
 * Args: <file> <startAtMs> <agentId> <taskId> <site> <transferId>
 */
import { SqliteStore } from '../../local/store/sqlite-store.ts';

const [file, startAt, agent, taskId, site, transferId] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
  string,
];
const store = new SqliteStore({ file });
const now = new Date('2026-11-26T10:00:01.000Z');
while (Date.now() < Number(startAt)) {
  // spin to the common start so the processes really overlap
}
const result = { claimed: false, updated: false, error: '' };
try {
  await store.tasks.claim(taskId, site, agent, now);
  result.claimed = true;
} catch (err) {
  result.error += `${(err as Error).name} `;
}
const read = await store.transfers.get(transferId);
if (read) {
  try {
    await store.transfers.update({ ...read, approver: agent });
    result.updated = true;
  } catch (err) {
    result.error += (err as Error).name;
  }
}
store.close();
process.stdout.write(JSON.stringify(result));
