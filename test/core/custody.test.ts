/** Issue 18: the custody log is hash-chained, and a changed, removed or unhashed entry is named. */
import { describe, expect, it } from 'vitest';
import {
  appendHistory,
  assertCustody,
  CustodyError,
  canonicalEntry,
  checkCustody,
  createTransfer,
  entryHash,
  record,
  type Transfer,
  transferSchema,
  transition,
} from '../../core/index.ts';

const at = new Date('2026-11-26T10:00:00Z');
const later = (minutes: number) => new Date(at.getTime() + minutes * 60_000);

/** Requested, approved, a retry noted, cancelled: four chained entries. */
function chainedTransfer(): Transfer {
  let t = createTransfer(
    {
      site: 'acme-hq',
      requester: 'U-REQ',
      items: [{ kind: 'vm', source: 'web-01', target: { vdc: 'acme-vdc' } }],
    },
    'tr-0001',
    at,
  );
  t = transition(t, 'approved', { actor: 'U-APPROVER', at: later(1) });
  t = record(t, { actor: 'U-REQ', at: later(2), note: 'retry 1 failed item(s)' });
  return transition(t, 'cancelled', { actor: 'workflow', at: later(3), note: 'no decision in time' });
}

describe('the custody log', () => {
  it('hashes a fixed canonical encoding (SHA-256 of a JSON array of strings)', () => {
    const first = { at: at.toISOString(), actor: 'U-REQ', phase: 'requested' as const };
    expect(canonicalEntry('tr-0001', '0'.repeat(64), first)).toBe(
      `["odt-custody-v1","tr-0001","${'0'.repeat(64)}","2026-11-26T10:00:00.000Z","U-REQ","requested",null]`,
    );
    // The same bytes through `printf '%s' … | sha256sum`.
    expect(entryHash('tr-0001', '0'.repeat(64), first)).toBe(
      'c204052985991fa41562fc55812d8845642b6af7d452f79919f32929b2007d2e',
    );
  });

  it('chains every entry, transitions and phase-less records alike, and keeps the chain through the schema', () => {
    const t = chainedTransfer();
    expect(t.history.map((h) => h.phase)).toEqual(['requested', 'approved', 'approved', 'cancelled']);
    for (const [i, h] of t.history.entries()) {
      expect(h.prev).toBe(i === 0 ? '0'.repeat(64) : t.history[i - 1]!.hash);
      expect(h.hash).toBe(entryHash(t.id, h.prev!, h));
    }
    expect(checkCustody(t)).toEqual({ ok: true, legacy: 0, head: t.history[3]!.hash });
    expect(checkCustody(transferSchema.parse(JSON.parse(JSON.stringify(t))))).toMatchObject({ ok: true });
  });

  it('names an entry whose content was changed', () => {
    const t = chainedTransfer();
    t.history[2] = { ...t.history[2]!, note: 'retry 0 failed item(s)' };
    expect(checkCustody(t)).toMatchObject({ ok: false, broken: { entry: 3 } });
    expect(() => assertCustody(t)).toThrow(CustodyError);
    expect(() => assertCustody(t)).toThrow(/broken at entry 3: entry 3 was edited/);
  });

  it('names an entry changed with its hash recomputed, by the next entry’s link', () => {
    const t = chainedTransfer();
    const e = { ...t.history[1]!, actor: 'U-MALLORY' };
    t.history[1] = { ...e, hash: entryHash(t.id, e.prev!, e) };
    expect(checkCustody(t).broken).toMatchObject({ entry: 2 });
  });

  it('notices a removed entry, an entry without a hash, and an entry moved from another transfer', () => {
    const removed = chainedTransfer();
    removed.history.splice(1, 1);
    expect(checkCustody(removed).broken?.reason).toMatch(
      /entry 1 was edited .* or an entry after it removed/,
    );

    const stripped = chainedTransfer();
    const { hash: _h, prev: _p, ...bare } = stripped.history[2]!;
    stripped.history[2] = bare;
    expect(checkCustody(stripped).broken).toMatchObject({
      entry: 3,
      reason: expect.stringMatching(/no hash/),
    });

    const other = chainedTransfer();
    expect(checkCustody({ ...other, id: 'tr-0002' }).broken).toMatchObject({ entry: 1 });
  });

  it('loads a history written before the chain as a legacy prefix, and hashes it at the next entry', () => {
    const t = chainedTransfer();
    const legacy: Transfer = { ...t, history: t.history.map(({ hash: _h, prev: _p, ...e }) => e) };
    expect(transferSchema.parse(legacy).history).toEqual(legacy.history);
    expect(checkCustody(legacy)).toEqual({ ok: true, legacy: 4 });

    const next = appendHistory(legacy.id, legacy.history, {
      at: later(9).toISOString(),
      actor: 'U-APPROVER',
      phase: 'cancelled',
    });
    // The same hashes as if it had been chained from the start.
    expect(next.slice(0, 4)).toEqual(t.history);
    expect(checkCustody({ id: t.id, history: next })).toMatchObject({ ok: true, legacy: 0 });
  });
});
