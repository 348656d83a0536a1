/**
 * Issue 21: the final Slack report says per item how the export read it (live from a snapshot, or
 * cold) and whether a later delta sync can start from the package.
 */
import { expect, it } from 'vitest';
import { reportMessage } from '../../bot/progress-blocks.ts';
import { createTransfer, type Transfer, transition, updateItem } from '../../core/index.ts';

const at = (minute: number) => new Date(Date.UTC(2026, 11, 8, 9, minute));

function exported(capture: { read: string; deltaSync: boolean }): Transfer {
  let t = createTransfer(
    {
      site: 'acme-dc1',
      requester: 'UCUSTOMER1',
      items: [{ kind: 'vm', source: 'db-01', target: { vdc: 'acme-vdc' } }],
    },
    'tr-capture-1',
    at(0),
  );
  t = transition(t, 'approved', { actor: 'UAPPROVER1', at: at(1) });
  t = updateItem(t, 'item-1', { state: 'exporting' }, at(2));
  return updateItem(t, 'item-1', { state: 'exported', bytes: 1 << 30, capture }, at(3));
}

it('a live export: when the snapshot was taken, quiesced or not, and whether it can be delta-synced', () => {
  const read = 'live, from snapshot at 2026-12-08T09:02:10.000Z, crash-consistent';
  const t = exported({ read, deltaSync: true });
  const text = JSON.stringify(reportMessage(t).blocks);
  expect(text).toContain(`${read}; delta sync later: yes`);
  // Kept through the item's later states (the report comes after the import).
  const later = updateItem(t, 'item-1', { state: 'verified' }, at(4));
  expect(later.items[0]!.result.capture).toEqual({ read, deltaSync: true });
});

it('a cold export without change tracking: no delta sync later', () => {
  const text = JSON.stringify(
    reportMessage(exported({ read: 'cold (powered off)', deltaSync: false })).blocks,
  );
  expect(text).toContain('cold (powered off); delta sync later: no');
});
