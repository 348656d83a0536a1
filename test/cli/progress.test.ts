import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { jsonProgress, ttyProgress } from '../../cli/progress.ts';

const collect = () => {
  const s = new PassThrough();
  let text = '';
  s.on('data', (c) => {
    text += String(c);
  });
  return { s, text: () => text };
};

describe('progress', () => {
  it('--json: one JSON line per sampled event, always the final one, with rate', () => {
    const { s, text } = collect();
    let t = 0;
    const p = jsonProgress(s, () => t);
    p.update({ item: 'item-1', file: 'a.vmdk', bytes: 0, total: 100 });
    t = 100;
    p.update({ item: 'item-1', file: 'a.vmdk', bytes: 10, total: 100 }); // sampled out (< 500 ms)
    t = 1000;
    p.update({ item: 'item-1', file: 'a.vmdk', bytes: 100, total: 100, done: true });
    const lines = text()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    expect(lines[1]).toEqual({
      event: 'progress',
      item: 'item-1',
      file: 'a.vmdk',
      bytes: 100,
      total: 100,
      bytesPerSecond: 100,
      done: true,
      skipped: false,
    });
  });

  it('terminal: a bar per file with percent, bytes, rate and ETA', () => {
    const { s, text } = collect();
    let t = 0;
    const p = ttyProgress(s as unknown as NodeJS.WriteStream, () => t);
    p.update({ item: 'item-1', file: 'disk-0.vmdk', bytes: 0, total: 200e6 });
    t = 1000;
    p.update({ item: 'item-1', file: 'disk-0.vmdk', bytes: 50e6, total: 200e6 });
    p.end();
    const last = text().trim().split('\n').at(-1)!;
    expect(last).toContain('item-1/disk-0.vmdk');
    expect(last).toContain('[######..................]');
    expect(last).toContain(' 25%');
    expect(last).toContain('50.0 MB');
    expect(last).toContain('50.0 MB/s');
    expect(last).toContain('ETA 3s');
  });
});
