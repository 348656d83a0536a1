/**
 * One conformance suite for every store adapter (DESIGN.md, "Both stores pass one conformance
 * test suite"). An adapter's test file calls `storeConformance` with a factory; the factory gives
 * two handles on the same data (SQLite: two connections on one file; DynamoDB: two clients), and
 * the concurrent cases spread their calls over both.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConflictError, ForbiddenError, NotFoundError } from '../../core/errors.ts';
import { checkCustody } from '../../core/model/custody.ts';
import { createTransfer, transition } from '../../core/model/lifecycle.ts';
import type { TransferPhase } from '../../core/model/phases.ts';
import type { Transfer } from '../../core/model/transfer.ts';
import type { Stores } from '../../core/ports/store.ts';
import type { AgentTask } from '../../core/ports/task-queue.ts';

export interface ConformanceSubject {
  /** Two handles on the same data. */
  readonly a: Stores;
  readonly b: Stores;
  close(): Promise<void>;
}

const t0 = new Date('2026-11-26T10:00:00.000Z');
const plus = (seconds: number): Date => new Date(t0.getTime() + seconds * 1000);

/** Settles all, then counts: [fulfilled values, rejections]. */
async function race<T>(calls: readonly Promise<T>[]): Promise<[T[], unknown[]]> {
  const settled = await Promise.allSettled(calls);
  const won: T[] = [];
  const lost: unknown[] = [];
  for (const s of settled) {
    if (s.status === 'fulfilled') won.push(s.value);
    else lost.push(s.reason);
  }
  return [won, lost];
}

export function storeConformance(name: string, open: () => Promise<ConformanceSubject>): void {
  describe(`store conformance: ${name}`, () => {
    let subject: ConformanceSubject;
    // Every test uses its own ids and sites, so tests share one store and still see only their data.
    const run = randomBytes(3).toString('hex');
    let n = 0;
    const uid = (prefix: string): string => `${prefix}-${run}-${++n}`;

    beforeAll(async () => {
      subject = await open();
    });
    afterAll(async () => {
      await subject?.close();
    });

    const a = () => subject.a;
    const b = () => subject.b;
    /** Alternates between the two handles. */
    const either = (i: number): Stores => (i % 2 === 0 ? subject.a : subject.b);

    function transfer(site: string, over: Partial<Transfer> = {}, at = t0): Transfer {
      const t = createTransfer(
        {
          site,
          requester: 'U-REQ',
          items: [
            { kind: 'vm', source: 'DC0_H0_VM0', target: { vdc: 'acme-vdc' } },
            { kind: 'vm', source: 'DC0_H0_VM1', target: { vdc: 'acme-vdc' } },
          ],
        },
        uid('tr'),
        at,
      );
      return { ...t, ...over };
    }

    function task(site: string, over: Partial<AgentTask> = {}): AgentTask {
      return {
        id: uid('task'),
        kind: 'export',
        site,
        transferId: uid('tr'),
        itemIds: ['item-1', 'item-2'],
        heartbeatSeconds: 60,
        ...over,
      };
    }

    describe('transfers', () => {
      it('creates, gets back exactly what it stored, and gives undefined for an unknown id', async () => {
        const t = transfer(uid('site'));
        await a().transfers.create(t);
        expect(await a().transfers.get(t.id)).toEqual(t);
        expect(await b().transfers.get(t.id)).toEqual(t);
        expect(await a().transfers.get(uid('missing'))).toBeUndefined();
      });

      it('keeps the custody log chained as written, and loads one written before the chain (issue #18)', async () => {
        const t = transfer(uid('site'));
        await a().transfers.create(t);
        const v1 = await a().transfers.update(
          transition(t, 'approved', { actor: 'U-APPROVER', at: plus(60) }),
        );
        const back = await b().transfers.get(t.id);
        expect(back?.history).toEqual(v1.history);
        expect(checkCustody(back!)).toEqual({ ok: true, legacy: 0, head: v1.history[1]!.hash });

        const legacy = transfer(uid('site'));
        const unchained = {
          ...legacy,
          history: legacy.history.map(({ at, actor, phase }) => ({ at, actor, phase })),
        };
        await a().transfers.create(unchained);
        const old = (await b().transfers.get(legacy.id))!;
        expect(checkCustody(old)).toEqual({ ok: true, legacy: 1 });
        const moved = await b().transfers.update(
          transition(old, 'approved', { actor: 'U-APPROVER', at: plus(60) }),
        );
        expect(checkCustody((await a().transfers.get(moved.id))!)).toMatchObject({ ok: true, legacy: 0 });
      });

      it('refuses a second create of the same id with ConflictError and keeps the first', async () => {
        const t = transfer(uid('site'));
        await a().transfers.create(t);
        const again = { ...t, requester: 'U-OTHER' };
        await expect(b().transfers.create(again)).rejects.toBeInstanceOf(ConflictError);
        expect((await a().transfers.get(t.id))?.requester).toBe('U-REQ');
      });

      it('lists oldest first, filtered by site, provider site and phase', async () => {
        const site = uid('site');
        const other = uid('site');
        const provider = uid('prov');
        const t1 = transfer(site, {}, plus(1));
        const t2 = transfer(site, { phase: 'approved', providerSite: provider }, plus(2));
        const t3 = transfer(site, { phase: 'shipped' }, plus(3));
        const t4 = transfer(other, { phase: 'approved' }, plus(4));
        // created out of order: the listing sorts by createdAt
        for (const t of [t3, t1, t4, t2]) await a().transfers.create(t);

        const ids = (ts: readonly Transfer[]) => ts.map((t) => t.id);
        const all = await b().transfers.list();
        expect(ids(all.filter((t) => [site, other].includes(t.site)))).toEqual([t1.id, t2.id, t3.id, t4.id]);
        expect(ids(await b().transfers.list({ site }))).toEqual([t1.id, t2.id, t3.id]);
        expect(ids(await b().transfers.list({ site, phase: 'approved' }))).toEqual([t2.id]);
        const phases: TransferPhase[] = ['requested', 'shipped'];
        expect(ids(await b().transfers.list({ site, phase: phases }))).toEqual([t1.id, t3.id]);
        expect(ids(await b().transfers.list({ site: other }))).toEqual([t4.id]);
        expect(ids(await b().transfers.list({ providerSite: provider }))).toEqual([t2.id]);
        expect(await b().transfers.list({ site: uid('nobody') })).toEqual([]);
        expect(await b().transfers.list({ site, phase: [] })).toEqual([]);
        expect((await b().transfers.list({ site })).find((t) => t.id === t2.id)).toEqual(t2);
      });

      it('updates conditionally on the version read, incrementing it', async () => {
        const t = transfer(uid('site'));
        await a().transfers.create(t);
        const v1 = await a().transfers.update({ ...t, phase: 'approved', approver: 'U-APPROVER' });
        expect(v1.version).toBe(t.version + 1);
        expect(await b().transfers.get(t.id)).toEqual(v1);
        const v2 = await b().transfers.update({ ...v1, phase: 'appliance-sent' });
        expect(v2.version).toBe(t.version + 2);
        expect(
          (await a().transfers.list({ site: t.site, phase: 'appliance-sent' })).map((x) => x.id),
        ).toEqual([t.id]);
      });

      it('refuses an update from a stale version with ConflictError and an unknown id with NotFoundError', async () => {
        const t = transfer(uid('site'));
        await a().transfers.create(t);
        await a().transfers.update({ ...t, phase: 'approved' });
        await expect(b().transfers.update({ ...t, phase: 'rejected' })).rejects.toBeInstanceOf(ConflictError);
        expect((await a().transfers.get(t.id))?.phase).toBe('approved');
        await expect(a().transfers.update(transfer(uid('site')))).rejects.toBeInstanceOf(NotFoundError);
      });

      it('lets exactly one of 10 concurrent updates from the same version win', async () => {
        const t = transfer(uid('site'));
        await a().transfers.create(t);
        const writers = Array.from({ length: 10 }, (_, i) =>
          either(i).transfers.update({ ...t, phase: 'approved', approver: `U-${i}` }),
        );
        const [won, lost] = await race(writers);
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(9);
        for (const e of lost) expect(e).toBeInstanceOf(ConflictError);
        const stored = await a().transfers.get(t.id);
        expect(stored).toEqual(won[0]);
        expect(stored?.version).toBe(t.version + 1);
      });
    });

    describe('callback tokens', () => {
      it('puts, peeks and takes a token exactly once', async () => {
        const id = uid('tr');
        const token = `AAAA${'x'.repeat(1900)}`;
        expect(await a().tokens.peekToken(id, 'approval')).toBeUndefined();
        await a().tokens.putToken(id, 'approval', token);
        await a().tokens.putToken(id, 'export', 'other-token');
        expect(await b().tokens.peekToken(id, 'approval')).toBe(token);
        expect(await b().tokens.takeToken(id, 'approval')).toBe(token);
        expect(await a().tokens.takeToken(id, 'approval')).toBeUndefined();
        expect(await a().tokens.peekToken(id, 'approval')).toBeUndefined();
        expect(await a().tokens.peekToken(id, 'export')).toBe('other-token');
      });

      it('replaces the token of a wait that is put again', async () => {
        const id = uid('tr');
        await a().tokens.putToken(id, 'export', 'first');
        await b().tokens.putToken(id, 'export', 'second');
        expect(await a().tokens.takeToken(id, 'export')).toBe('second');
        expect(await a().tokens.takeToken(id, 'export')).toBeUndefined();
      });

      it('gives the token to exactly one of 10 concurrent takers', async () => {
        const id = uid('tr');
        await a().tokens.putToken(id, 'approval', 'tok');
        const got = await Promise.all(
          Array.from({ length: 10 }, (_, i) => either(i).tokens.takeToken(id, 'approval')),
        );
        expect(got.filter((x) => x === 'tok')).toHaveLength(1);
        expect(got.filter((x) => x === undefined)).toHaveLength(9);
      });
    });

    describe('agent tasks', () => {
      it('enqueues and lists open tasks per site, oldest first; another site sees none of them', async () => {
        const site = uid('site');
        const other = uid('site');
        const t1 = task(site);
        const t2 = task(site, { kind: 'import' });
        await a().tasks.enqueue(t1, plus(1));
        await a().tasks.enqueue(t2, plus(2));
        const open = await b().tasks.listOpen(site, plus(3));
        expect(open.map((t) => t.id)).toEqual([t1.id, t2.id]);
        expect(open[0]).toMatchObject({
          ...t1,
          status: 'open',
          attempts: 0,
          enqueuedAt: plus(1).toISOString(),
        });
        expect(await b().tasks.listOpen(other, plus(3))).toEqual([]);
        expect(await a().tasks.get(t2.id)).toMatchObject({ ...t2, status: 'open' });
        expect(await a().tasks.get(uid('missing'))).toBeUndefined();
      });

      it('refuses to enqueue the same task id twice', async () => {
        const t = task(uid('site'));
        await a().tasks.enqueue(t, t0);
        await expect(b().tasks.enqueue(t, t0)).rejects.toBeInstanceOf(ConflictError);
      });

      it("refuses a claim from another site's agent with ForbiddenError; unknown task: NotFoundError", async () => {
        const site = uid('site');
        const t = task(site);
        await a().tasks.enqueue(t, t0);
        await expect(a().tasks.claim(t.id, uid('site'), 'agent-x', plus(1))).rejects.toBeInstanceOf(
          ForbiddenError,
        );
        await expect(a().tasks.claim(uid('missing'), site, 'agent-x', plus(1))).rejects.toBeInstanceOf(
          NotFoundError,
        );
        expect((await a().tasks.get(t.id))?.status).toBe('open');
      });

      it('lets exactly one of 10 concurrent claims win; the task is then no longer listed', async () => {
        const site = uid('site');
        const t = task(site);
        await a().tasks.enqueue(t, t0);
        const claims = Array.from({ length: 10 }, (_, i) =>
          either(i).tasks.claim(t.id, site, `agent-${i}`, plus(1)),
        );
        const [won, lost] = await race(claims);
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(9);
        for (const e of lost) expect(e).toBeInstanceOf(ConflictError);
        const winner = won[0]!;
        expect(winner).toMatchObject({
          id: t.id,
          status: 'claimed',
          attempts: 1,
          heartbeatAt: plus(1).toISOString(),
        });
        expect((await b().tasks.get(t.id))?.holder).toBe(winner.holder);
        expect(await a().tasks.listOpen(site, plus(2))).toEqual([]);
      });

      it('lets the holder claim again (a lost answer) without counting a new attempt', async () => {
        const site = uid('site');
        const t = task(site);
        await a().tasks.enqueue(t, t0);
        await a().tasks.claim(t.id, site, 'agent-1', plus(1));
        const again = await b().tasks.claim(t.id, site, 'agent-1', plus(2));
        expect(again).toMatchObject({ holder: 'agent-1', attempts: 1, heartbeatAt: plus(2).toISOString() });
        await expect(a().tasks.claim(t.id, site, 'agent-2', plus(3))).rejects.toBeInstanceOf(ConflictError);
      });

      it('accepts heartbeats with progress from the holder only', async () => {
        const site = uid('site');
        const t = task(site);
        await a().tasks.enqueue(t, t0);
        await a().tasks.claim(t.id, site, 'agent-1', plus(1));
        const progress = [{ itemId: 'item-1', bytesDone: 1024, bytesTotal: 4096, bytesPerSecond: 512 }];
        await b().tasks.heartbeat(t.id, 'agent-1', progress, plus(30));
        expect(await a().tasks.get(t.id)).toMatchObject({ heartbeatAt: plus(30).toISOString(), progress });
        await expect(a().tasks.heartbeat(t.id, 'agent-2', [], plus(31))).rejects.toBeInstanceOf(
          ForbiddenError,
        );
        await expect(a().tasks.heartbeat(uid('missing'), 'agent-1', [], plus(31))).rejects.toBeInstanceOf(
          NotFoundError,
        );
        expect((await a().tasks.get(t.id))?.heartbeatAt).toBe(plus(30).toISOString());
      });

      it('lists a task again once its holder missed the heartbeat, and another agent claims it', async () => {
        const site = uid('site');
        const t = task(site, { heartbeatSeconds: 60 });
        await a().tasks.enqueue(t, t0);
        await a().tasks.claim(t.id, site, 'agent-dead', plus(1));
        await a().tasks.heartbeat(t.id, 'agent-dead', [], plus(10));
        // exactly at the deadline the hold still stands
        expect(await b().tasks.listOpen(site, plus(70))).toEqual([]);
        await expect(b().tasks.claim(t.id, site, 'agent-new', plus(70))).rejects.toBeInstanceOf(
          ConflictError,
        );
        // one second later it is open again
        expect((await b().tasks.listOpen(site, plus(71))).map((x) => x.id)).toEqual([t.id]);
        const claimed = await b().tasks.claim(t.id, site, 'agent-new', plus(71));
        expect(claimed).toMatchObject({ holder: 'agent-new', attempts: 2, progress: [] });
        await expect(a().tasks.heartbeat(t.id, 'agent-dead', [], plus(72))).rejects.toBeInstanceOf(
          ForbiddenError,
        );
        await expect(a().tasks.complete(t.id, 'agent-dead', [], plus(72))).rejects.toBeInstanceOf(
          ForbiddenError,
        );
        await b().tasks.complete(t.id, 'agent-new', [{ itemId: 'item-1', ok: true, bytes: 10 }], plus(80));
        expect((await a().tasks.get(t.id))?.status).toBe('completed');
      });

      it('lets only one of 10 concurrent claims of a timed-out task win', async () => {
        const site = uid('site');
        const t = task(site, { heartbeatSeconds: 5 });
        await a().tasks.enqueue(t, t0);
        await a().tasks.claim(t.id, site, 'agent-dead', plus(1));
        const claims = Array.from({ length: 10 }, (_, i) =>
          either(i).tasks.claim(t.id, site, `agent-${i}`, plus(60)),
        );
        const [won, lost] = await race(claims);
        expect(won).toHaveLength(1);
        for (const e of lost) expect(e).toBeInstanceOf(ConflictError);
        expect((await a().tasks.get(t.id))?.attempts).toBe(2);
      });

      it('completes exactly once, only by the holder', async () => {
        const site = uid('site');
        const t = task(site);
        await a().tasks.enqueue(t, t0);
        await a().tasks.claim(t.id, site, 'agent-1', plus(1));
        const outcomes = [
          { itemId: 'item-1', ok: true, bytes: 2048 },
          { itemId: 'item-2', ok: false, code: 'NFC_LEASE', reason: 'lease expired' },
        ];
        await expect(a().tasks.complete(t.id, 'agent-2', outcomes, plus(5))).rejects.toBeInstanceOf(
          ForbiddenError,
        );
        const done = await race(
          Array.from({ length: 10 }, (_, i) => either(i).tasks.complete(t.id, 'agent-1', outcomes, plus(5))),
        );
        expect(done[0]).toHaveLength(1);
        for (const e of done[1]) expect(e).toBeInstanceOf(ConflictError);
        expect(await b().tasks.get(t.id)).toMatchObject({
          status: 'completed',
          holder: 'agent-1',
          outcomes,
          finishedAt: plus(5).toISOString(),
        });
        await expect(a().tasks.complete(t.id, 'agent-1', outcomes, plus(6))).rejects.toBeInstanceOf(
          ConflictError,
        );
        await expect(a().tasks.heartbeat(t.id, 'agent-1', [], plus(6))).rejects.toBeInstanceOf(ConflictError);
        await expect(a().tasks.claim(t.id, site, 'agent-2', plus(600))).rejects.toBeInstanceOf(ConflictError);
        expect(await a().tasks.listOpen(site, plus(600))).toEqual([]);
      });

      it('fails once, only by the holder, and records why', async () => {
        const site = uid('site');
        const t = task(site);
        await a().tasks.enqueue(t, t0);
        await a().tasks.claim(t.id, site, 'agent-1', plus(1));
        await expect(a().tasks.fail(t.id, 'agent-2', 'X', 'no', plus(2))).rejects.toBeInstanceOf(
          ForbiddenError,
        );
        await b().tasks.fail(t.id, 'agent-1', 'VCENTER_UNREACHABLE', 'connect ECONNREFUSED', plus(2));
        expect(await a().tasks.get(t.id)).toMatchObject({
          status: 'failed',
          error: { code: 'VCENTER_UNREACHABLE', reason: 'connect ECONNREFUSED' },
        });
        await expect(a().tasks.fail(t.id, 'agent-1', 'X', 'again', plus(3))).rejects.toBeInstanceOf(
          ConflictError,
        );
        await expect(a().tasks.complete(t.id, 'agent-1', [], plus(3))).rejects.toBeInstanceOf(ConflictError);
        expect(await a().tasks.listOpen(site, plus(600))).toEqual([]);
      });

      it('gives a released task back at once; the releasing agent no longer holds it', async () => {
        const site = uid('site');
        const t = task(site);
        await a().tasks.enqueue(t, t0);
        await a().tasks.claim(t.id, site, 'agent-1', plus(1));
        await expect(a().tasks.release(t.id, 'agent-2')).rejects.toBeInstanceOf(ForbiddenError);
        await b().tasks.release(t.id, 'agent-1');
        expect((await a().tasks.listOpen(site, plus(2))).map((x) => x.id)).toEqual([t.id]);
        expect((await a().tasks.get(t.id))?.status).toBe('open');
        await expect(a().tasks.heartbeat(t.id, 'agent-1', [], plus(2))).rejects.toBeInstanceOf(
          ForbiddenError,
        );
        expect(await a().tasks.claim(t.id, site, 'agent-2', plus(3))).toMatchObject({
          holder: 'agent-2',
          attempts: 2,
        });
      });

      it('cancels an unfinished task: the holder is told to stop and nobody can claim it', async () => {
        const site = uid('site');
        const t = task(site);
        await a().tasks.enqueue(t, t0);
        await a().tasks.claim(t.id, site, 'agent-1', plus(1));
        expect(await b().tasks.cancel(t.id, 'CANCELLED', 'cancelled by U-REQ', plus(2))).toBe(true);
        await expect(a().tasks.heartbeat(t.id, 'agent-1', [], plus(3))).rejects.toBeInstanceOf(ConflictError);
        await expect(a().tasks.claim(t.id, site, 'agent-2', plus(600))).rejects.toBeInstanceOf(ConflictError);
        expect(await a().tasks.listOpen(site, plus(600))).toEqual([]);
        expect(await a().tasks.cancel(t.id, 'CANCELLED', 'again', plus(4))).toBe(false);
        expect((await a().tasks.get(t.id))?.error?.reason).toBe('cancelled by U-REQ');
        const open = task(site);
        await a().tasks.enqueue(open, t0);
        expect(await a().tasks.cancel(open.id, 'CANCELLED', 'before any claim', plus(1))).toBe(true);
        expect(await a().tasks.listOpen(site, plus(2))).toEqual([]);
      });
    });
  });
}
