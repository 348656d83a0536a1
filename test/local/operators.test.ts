import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServeProcess, serveAdmin, startServe, until } from '../support/serve-process.ts';
import { writeTransferRequest } from '../support/transfer-request.ts';

// Issue 22: `odt transfer approve --as bob` took the approver's name from a flag, so four eyes
// from the CLI rested on a self-asserted name. Each operator now has a token odt serve issued and
// checks; the name it records is the one it looked up.

let work: string;
let dir: string;
let serve: ServeProcess;
const tokens = { bob: '', alice: '' };

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'odt-operators-'));
  dir = join(work, 'state');
  // Both approve: alice's own request is then refused by four eyes, not for want of the right.
  serve = await startServe(dir, ['--approvers', 'bob,alice']);
});
afterAll(async () => {
  serve?.child.kill('SIGTERM');
  await serve?.exited;
  await rm(work, { recursive: true, force: true });
});

describe('operators with tokens odt serve checks', () => {
  it('odt operator add writes a private token file, once', async () => {
    const { cli } = serveAdmin(dir);
    for (const name of ['bob', 'alice'] as const) {
      tokens[name] = join(work, `${name}.token`);
      const added = await cli('operator', 'add', name, '--out', tokens[name]);
      expect(added.code, added.err).toBe(0);
      expect((await stat(tokens[name])).mode & 0o777).toBe(0o600);
      expect((await readFile(tokens[name], 'utf8')).trim()).toMatch(/^odt_op_[A-Za-z0-9_-]{43}$/);
    }
    expect((await cli('operator', 'list', '--json')).out).toContain('"name": "alice"');
    const again = await cli('operator', 'add', 'carol', '--out', tokens.bob);
    expect(again.code).toBe(2);
    expect(again.err).toContain('a token file is never overwritten');
    // The refused file took nothing with it: carol does not exist.
    expect((await cli('operator', 'list', '--json')).out).not.toContain('carol');
  });

  it('records the name the server looked up; --as and the admin token cannot name someone else', async () => {
    const { cli, show } = serveAdmin(dir);
    const file = await writeTransferRequest(join(work, 'request.json'));
    const requested = await cli('transfer', 'request', '--file', file, '--token-file', tokens.alice);
    expect(requested.code, requested.err).toBe(0);
    const id = requested.out.trim();
    await until('requested', async () => (await show(id)).phase === 'requested');

    // The admin token no longer carries a person once operators exist.
    const asAdmin = await cli('transfer', 'approve', id, '--as', 'bob');
    expect(asAdmin.code).toBe(7);
    expect(asAdmin.err).toContain('the admin token acts for no person once operators exist');
    // alice's token is alice's, whatever --as says; and she may not approve her own request.
    const aliceAsBob = await cli('transfer', 'approve', id, '--as', 'bob', '--token-file', tokens.alice);
    expect(aliceAsBob.code).toBe(7);
    expect(aliceAsBob.err).toContain("this operator token is alice's; it cannot act as 'bob'");
    const own = await cli('transfer', 'approve', id, '--token-file', tokens.alice);
    expect(own.code).toBe(7);
    expect(own.err).toContain('[OWN_REQUEST]');

    const approved = await cli('transfer', 'approve', id, '--token-file', tokens.bob);
    expect(approved.code, approved.err).toBe(0);
    const t = await show(id);
    expect(t.requester).toBe('alice');
    expect(t.history.find((h) => h.phase === 'approved')?.actor).toBe('bob');

    // A request that names another requester than its token's is refused.
    const forged = await cli('transfer', 'request', '--file', file, '--token-file', tokens.bob);
    expect(forged.code).toBe(7);
    expect(forged.err).toContain("names requester 'alice', but this token is bob's");

    // Every decision, not approval alone: a cancel is recorded for the token's operator, and
    // --as cannot name another one there either.
    const cancelAsBob = await cli('transfer', 'cancel', id, '--as', 'bob', '--token-file', tokens.alice);
    expect(cancelAsBob.code).toBe(7);
    const cancelled = await cli('transfer', 'cancel', id, '--token-file', tokens.alice);
    expect(cancelled.code, cancelled.err).toBe(0);
    await until('cancelled', async () => (await show(id)).phase === 'cancelled');
    expect((await show(id)).history.findLast((h) => h.phase === 'cancelled')?.actor).toBe('alice');
  });

  it('refuses a token file others can read, and a removed operator’s token', async () => {
    const { cli } = serveAdmin(dir);
    await chmod(tokens.alice, 0o644);
    const open = await cli('transfer', 'list', '--token-file', tokens.alice);
    expect(open.code).toBe(2);
    expect(open.err).toContain(`chmod 600 ${tokens.alice}`);
    await chmod(tokens.alice, 0o600);
    expect((await cli('transfer', 'list', '--token-file', tokens.alice)).code).toBe(0);

    expect((await cli('operator', 'remove', 'alice')).code).toBe(0);
    const removed = await cli('transfer', 'list', '--token-file', tokens.alice);
    expect(removed.code).toBe(7);
    expect(removed.err).toContain('[UNAUTHORIZED]');
  });
});
