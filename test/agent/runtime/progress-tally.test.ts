import { describe, expect, it } from 'vitest';
import { ProgressTally } from '../../../agent/runtime/run-agent.ts';

// What an agent's heartbeat says of each item: the files of the item's current stage, summed.
describe('ProgressTally', () => {
  it('sums an item’s files, with a total only once every file has one, and a rate since the item started', () => {
    let now = 1_000;
    const tally = new ProgressTally(() => now);
    tally.note({ item: 'item-1', file: 'a.vmdk', bytes: 100, total: 400 });
    now += 1_000;
    tally.note({ item: 'item-1', file: 'b.vmdk', bytes: 100 });
    tally.note({ item: 'item-2', file: 'c.vmdk', bytes: 50, total: 50 });
    now += 1_000;
    expect(tally.report()).toEqual([
      { itemId: 'item-1', bytesDone: 200, bytesPerSecond: 100 },
      { itemId: 'item-2', bytesDone: 50, bytesTotal: 50, bytesPerSecond: 50 },
    ]);
    tally.note({ item: 'item-1', file: 'b.vmdk', bytes: 300, total: 300 });
    expect(tally.report()[0]).toEqual({
      itemId: 'item-1',
      bytesDone: 400,
      bytesTotal: 700,
      bytesPerSecond: 200,
    });
  });

  it('reports an import’s check of the NAS as verifying, then starts the upload’s count and rate afresh', () => {
    let now = 0;
    const tally = new ProgressTally(() => now);
    tally.note({ item: 'item-1', file: 'item-1/a.vmdk.age', bytes: 0, total: 1_000, stage: 'verifying' });
    now += 1_000;
    tally.note({ item: 'item-1', file: 'item-1/a.vmdk.age', bytes: 1_000, total: 1_000, stage: 'verifying' });
    expect(tally.report()).toEqual([
      { itemId: 'item-1', bytesDone: 1_000, bytesTotal: 1_000, bytesPerSecond: 1_000, stage: 'verifying' },
    ]);
    now += 10_000;
    tally.note({ item: 'item-1', file: 'a.vmdk', bytes: 0, total: 990 });
    now += 2_000;
    tally.note({ item: 'item-1', file: 'a.vmdk', bytes: 200, total: 990 });
    expect(tally.report()).toEqual([
      { itemId: 'item-1', bytesDone: 200, bytesTotal: 990, bytesPerSecond: 100 },
    ]);
  });
});
