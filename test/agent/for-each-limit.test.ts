import { describe, expect, it } from 'vitest';
import { forEachLimit } from '../../agent/for-each-limit.ts';

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('forEachLimit', () => {
  it('runs every item with at most `limit` in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const done: number[] = [];
    await forEachLimit([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await wait(5 + (n % 3) * 5);
      done.push(n);
      inFlight--;
    });
    expect(done.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(most).toBe(3);
  });

  it('starts nothing new after a failure and throws the first error', async () => {
    const started: number[] = [];
    const boom = new Error('disk 2 failed');
    await expect(
      forEachLimit([1, 2, 3, 4, 5], 2, async (n) => {
        started.push(n);
        await wait(n === 2 ? 5 : 20);
        if (n === 2) throw boom;
        if (n === 1) throw new Error('failed later');
      }),
    ).rejects.toBe(boom);
    // Items 1 and 2 were in flight; neither lane took another once one of them failed.
    expect(started).toEqual([1, 2]);
  });

  it('handles an empty list', async () => {
    await forEachLimit([], 4, async () => {
      throw new Error('never');
    });
  });
});
