import { describe, expect, it } from 'vitest';
import { startKeepAlive } from '../../agent/keep-alive.ts';

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('keep-alive', () => {
  it('beats at its interval without overlapping, and stops', async () => {
    let running = 0;
    let maxRunning = 0;
    let beats = 0;
    const controller = new AbortController();
    const ka = startKeepAlive({
      intervalMs: 10,
      controller,
      beat: async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await wait(15);
        beats++;
        running--;
      },
    });
    await wait(120);
    await ka.stop();
    const after = beats;
    await wait(50);
    expect(after).toBeGreaterThanOrEqual(3);
    expect(beats).toBe(after);
    expect(maxRunning).toBe(1);
    expect(controller.signal.aborted).toBe(false);
  });

  it('aborts the work with the beat error when a beat fails', async () => {
    const controller = new AbortController();
    const boom = new Error('lease gone');
    const ka = startKeepAlive({
      intervalMs: 5,
      controller,
      beat: async () => {
        throw boom;
      },
    });
    await wait(40);
    expect(controller.signal.aborted).toBe(true);
    expect(controller.signal.reason).toBe(boom);
    await ka.stop();
  });

  it('tolerates isolated failures when asked to', async () => {
    const controller = new AbortController();
    let n = 0;
    const ka = startKeepAlive({
      intervalMs: 5,
      controller,
      maxFailures: 2,
      beat: async () => {
        n++;
        if (n % 2 === 0) throw new Error('blip');
      },
    });
    await wait(60);
    await ka.stop();
    expect(n).toBeGreaterThan(3);
    expect(controller.signal.aborted).toBe(false);
  });
});

describe('keep-alive, immediate', () => {
  it('beats at once when asked, before the first interval', async () => {
    let beats = 0;
    const ka = startKeepAlive({
      intervalMs: 10_000,
      immediate: true,
      controller: new AbortController(),
      beat: async () => {
        beats++;
      },
    });
    await new Promise((r) => setTimeout(r, 20));
    await ka.stop();
    expect(beats).toBe(1);
  });
});
