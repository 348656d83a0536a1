import { describe, expect, it } from 'vitest';
import { type ItemProgress, overallProgressText, progressMessage } from '../../bot/progress-blocks.ts';
import { updateItem } from '../../core/index.ts';
import { exporting, transferOf } from './chat-fixtures.ts';
import { visible } from './harness.ts';

const GB = 1e9;

// Issue #19: besides each item's bar, one line for the whole transfer in the live Slack message.
describe('the overall line of the progress message', () => {
  const at = new Date('2026-11-26T10:00:00Z');

  it('sums the items done and in flight against the whole transfer, with the summed rate and ETA', () => {
    let t = exporting(transferOf(3, at, { sizes: [10 * GB, 20 * GB, 30 * GB] }), at);
    t = updateItem(t, 'item-1', { state: 'exported', bytes: 10 * GB }, at);
    const progress = new Map<string, ItemProgress>([
      [
        'item-2',
        {
          phase: 'exporting',
          progress: { itemId: 'item-2', bytesDone: 5 * GB, bytesTotal: 20 * GB, bytesPerSecond: 100e6 },
        },
      ],
      [
        'item-3',
        {
          phase: 'exporting',
          progress: { itemId: 'item-3', bytesDone: 15 * GB, bytesTotal: 30 * GB, bytesPerSecond: 150e6 },
        },
      ],
    ]);
    // 10 + 5 + 15 = 30 GB of 60 GB; 250 MB/s; 30 GB left: 120 s.
    expect(overallProgressText(t, progress)).toBe('Overall: 30 GB of 60 GB (50%) · 250 MB/s · ETA 2m 00s');
    expect(visible(progressMessage(t, progress).blocks)).toContain('Overall: 30 GB of 60 GB (50%)');
  });

  it('leaves failed items out, and says nothing before any item reports or outside export and import', () => {
    let t = exporting(transferOf(2, at, { sizes: [10 * GB, 20 * GB] }), at);
    expect(overallProgressText(t, new Map())).toBeUndefined();
    t = updateItem(t, 'item-1', { state: 'failed', reason: 'powered on', code: 'POWERED_ON' }, at);
    const progress = new Map<string, ItemProgress>([
      [
        'item-2',
        {
          phase: 'exporting',
          progress: { itemId: 'item-2', bytesDone: 10 * GB, bytesTotal: 20 * GB, bytesPerSecond: 0 },
        },
      ],
    ]);
    expect(overallProgressText(t, progress)).toBe('Overall: 10 GB of 20 GB (50%)');
    expect(overallProgressText({ ...t, phase: 'exported' }, progress)).toBeUndefined();
  });
});
