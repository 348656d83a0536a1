import { describe, expect, it } from 'vitest';
import { formatSeconds, overallLine, TransferProgress } from '../../agent/file-progress.ts';

// Issue #19: one overall figure for the whole transfer, beside the per-file bars.
describe('TransferProgress', () => {
  it('sums every file, takes the rate over the last window, and gives the time left', () => {
    let now = 0;
    const p = new TransferProgress(() => now, 10_000);
    p.plan(1_000);
    p.note({ item: 'item-1', file: 'a.vmdk', bytes: 0, total: 600 });
    now = 5_000;
    p.note({ item: 'item-1', file: 'a.vmdk', bytes: 500, total: 600 });
    expect(p.snapshot()).toEqual({
      bytesDone: 500,
      bytesTotal: 1_000,
      planned: true,
      bytesPerSecond: 100,
      etaSeconds: 5,
      files: 1,
      filesDone: 0,
    });
    // A stall: 20 s later nothing more moved; the window's rate falls to 0 and no ETA is promised.
    now = 25_000;
    p.note({ item: 'item-1', file: 'a.vmdk', bytes: 500, total: 600 });
    now = 26_000;
    const stalled = p.snapshot();
    expect(stalled.bytesPerSecond).toBe(0);
    expect(stalled.etaSeconds).toBeUndefined();
  });

  it('counts kept files as done but not as moved, so they do not inflate the rate', () => {
    let now = 0;
    const p = new TransferProgress(() => now);
    p.note({ item: 'item-1', file: 'kept.vmdk', bytes: 10_000, total: 10_000, skipped: true });
    p.note({ item: 'item-1', file: 'b.vmdk', bytes: 0, total: 2_000 });
    now = 2_000;
    p.note({ item: 'item-1', file: 'b.vmdk', bytes: 1_000, total: 2_000 });
    expect(p.snapshot()).toMatchObject({
      bytesDone: 11_000,
      bytesTotal: 12_000,
      planned: false,
      bytesPerSecond: 500,
      etaSeconds: 2,
      files: 2,
      filesDone: 1,
    });
  });

  it('has no total while a file of unknown length is in flight, unless planned', () => {
    const p = new TransferProgress(() => 0);
    p.note({ item: 'item-1', file: 'a.vmdk', bytes: 5 });
    expect(p.snapshot().bytesTotal).toBeUndefined();
    p.plan(100);
    expect(p.snapshot()).toMatchObject({ bytesTotal: 100, planned: true });
  });

  it('with the files planned before the first byte, totals the whole transfer from the start: each file at its estimate until its length is known', () => {
    let now = 0;
    const p = new TransferProgress(() => now);
    // An export's two disks, estimated from their datastore extents before any byte.
    p.planFiles([
      { key: 'item-1/web-disk-0.vmdk', bytes: 4_000 },
      { key: 'item-2/db-disk-0.vmdk', bytes: 6_000 },
    ]);
    expect(p.snapshot()).toMatchObject({
      bytesDone: 0,
      bytesTotal: 10_000,
      planned: true,
      estimated: true,
      files: 2,
    });
    expect(overallLine(p.snapshot())).toContain('of ~10.0 kB (0%)');
    // The first disk starts: its download's length (3 000, compressed) replaces its estimate.
    p.note({ item: 'item-1', file: 'web-disk-0.vmdk', bytes: 0, total: 3_000 });
    now = 1_000;
    p.note({ item: 'item-1', file: 'web-disk-0.vmdk', bytes: 3_000, total: 3_000, done: true });
    expect(p.snapshot()).toMatchObject({
      bytesDone: 3_000,
      bytesTotal: 9_000,
      estimated: true,
      files: 2,
      filesDone: 1,
    });
    // The second streams without a length (an ESXi host): its estimate stands, then its end is its size.
    p.note({ item: 'item-2', file: 'db-disk-0.vmdk', bytes: 2_000 });
    expect(p.snapshot()).toMatchObject({ bytesDone: 5_000, bytesTotal: 9_000, estimated: true });
    // A small file nobody planned (the descriptor) adds itself.
    p.note({ item: 'item-2', file: 'db.ovf', bytes: 100, total: 100, done: true });
    now = 2_000;
    p.note({ item: 'item-2', file: 'db-disk-0.vmdk', bytes: 5_000, done: true });
    const end = p.snapshot();
    expect(end).toMatchObject({
      bytesDone: 8_100,
      bytesTotal: 8_100,
      planned: true,
      files: 3,
      filesDone: 3,
      etaSeconds: 0,
    });
    expect(end.estimated).toBeUndefined();
    expect(overallLine(end)).toContain('of 8.1 kB (100%)');
  });

  it('writes durations as a person reads them', () => {
    expect(formatSeconds(9)).toBe('9s');
    expect(formatSeconds(65)).toBe('1m05s');
    expect(formatSeconds(3725)).toBe('1h02m05s');
  });
});
