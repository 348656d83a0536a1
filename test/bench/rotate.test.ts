import { describe, expect, it } from 'vitest';
import { rotate } from '../../bench/support.ts';

/** The order the contenders ran in, round by round. */
async function rounds(
  n: number,
  runs: number,
  warmup = 0,
): Promise<{ order: number[][]; counted: number[][] }> {
  const order: number[][] = [];
  let round: number[] = [];
  const counted = await rotate(
    runs,
    Array.from({ length: n }, (_, c) => async () => {
      const finished = order.length;
      round.push(c);
      if (round.length === n) {
        order.push(round);
        round = [];
      }
      return finished;
    }),
    warmup,
  );
  return { order, counted };
}

describe('rotate (the benches run their contenders in turn)', () => {
  it.each([2, 3, 4])(
    'times each of %i contenders first equally often over two rounds per contender',
    async (n) => {
      const { order } = await rounds(n, 2 * n);
      const firsts = order.map((r) => r[0]!);
      for (let c = 0; c < n; c++)
        expect(
          firsts.filter((f) => f === c),
          `contender ${c}`,
        ).toHaveLength(2);
      // Each round runs every contender once.
      for (const r of order) expect([...r].sort()).toEqual(Array.from({ length: n }, (_, c) => c));
    },
  );

  it('runs the warm-up rounds first and does not count them', async () => {
    const { order, counted } = await rounds(4, 3, 1);
    expect(order).toHaveLength(4);
    // Each result is the number of rounds finished before it ran: the warm-up round's (0) are dropped.
    for (const results of counted) expect(results).toEqual([1, 2, 3]);
  });
});
