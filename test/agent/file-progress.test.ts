import { describe, expect, it } from 'vitest';
import { formatSeconds, TransferProgress } from '../../agent/file-progress.ts';

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

  it('writes durations as a person reads them', () => {
    expect(formatSeconds(9)).toBe('9s');
    expect(formatSeconds(65)).toBe('1m05s');
    expect(formatSeconds(3725)).toBe('1h02m05s');
  });
});
