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
      .map((l) => JSON.parse(l))
      .filter((e) => e.event === 'progress');
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
    const last = text()
      .trim()
      .split('\n')
      .findLast((l) => l.includes('item-1/disk-0.vmdk'))!;
    expect(last).toContain('[######..................]');
    expect(last).toContain(' 25%');
    expect(last).toContain('50.0 MB');
    expect(last).toContain('50.0 MB/s');
    expect(last).toContain('ETA 3s');
  });

  // Issue #19: besides the per-file bars, one line for the whole transfer.
  it('terminal: under the bars, one overall line of bytes done of the total, rate and ETA', () => {
    const { s, text } = collect();
    let t = 0;
    const p = ttyProgress(s as unknown as NodeJS.WriteStream, () => t);
    p.plan!(1000e6);
    p.update({ item: 'item-1', file: 'disk-0.vmdk', bytes: 0, total: 600e6 });
    p.update({ item: 'item-2', file: 'disk-0.vmdk', bytes: 0, total: 400e6 });
    t = 2000;
    p.update({ item: 'item-1', file: 'disk-0.vmdk', bytes: 150e6, total: 600e6 });
    p.update({ item: 'item-2', file: 'disk-0.vmdk', bytes: 50e6, total: 400e6 });
    p.end();
    const frame = text().trim().split('\n').slice(-3);
    expect(frame[0]).toContain('item-1/disk-0.vmdk');
    expect(frame[1]).toContain('item-2/disk-0.vmdk');
    // 200 MB of 1 GB moved in 2 s: 100 MB/s, 800 MB left.
    expect(frame[2]).toContain('overall 200.0 MB of 1.0 GB (20%) 100.0 MB/s ETA 8s, 0 of 2 file(s) done');
  });

  it('terminal: without a plan, the total is of the files seen so far (≥), and unknown with a file of no size', () => {
    const { s, text } = collect();
    let t = 0;
    const p = ttyProgress(s as unknown as NodeJS.WriteStream, () => t);
    p.update({ item: 'item-1', file: 'a.vmdk', bytes: 0, total: 100e6 });
    t = 1000;
    p.update({ item: 'item-1', file: 'a.vmdk', bytes: 100e6, total: 100e6, done: true });
    expect(text().trim().split('\n').at(-1)).toContain(
      'overall 100.0 MB of ≥100.0 MB (100%) 100.0 MB/s ETA 0s, 1 of 1 file(s) done',
    );
    p.update({ item: 'item-1', file: 'b.vmdk', bytes: 0 });
    p.end();
    expect(text().trim().split('\n').at(-1)).toMatch(
      /overall 100\.0 MB \d+(\.\d)? [kM]?B\/s, 1 of 2 file\(s\) done$/,
    );
  });

  it('--json: an overall event at most once a second and at the end, with total, rate and ETA', () => {
    const { s, text } = collect();
    let t = 0;
    const p = jsonProgress(s, () => t);
    p.plan!(400);
    p.update({ item: 'item-1', file: 'a.vmdk', bytes: 0, total: 200 });
    t = 500;
    p.update({ item: 'item-1', file: 'a.vmdk', bytes: 50, total: 200 });
    t = 1000;
    p.update({ item: 'item-1', file: 'a.vmdk', bytes: 100, total: 200 });
    t = 1500;
    p.update({ item: 'item-1', file: 'a.vmdk', bytes: 150, total: 200 });
    t = 2000;
    p.update({ item: 'item-1', file: 'a.vmdk', bytes: 200, total: 200, done: true });
    p.end();
    const overall = text()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((e) => e.event === 'overall');
    // At the plan (the whole size before the first byte), at 1 s, at 2 s, and the end.
    expect(overall).toHaveLength(4);
    expect(overall[0]).toMatchObject({ bytes: 0, total: 400, planned: true, files: 0 });
    expect(overall[1]).toEqual({
      event: 'overall',
      bytes: 100,
      total: 400,
      planned: true,
      estimated: false,
      bytesPerSecond: 100,
      etaSeconds: 3,
      files: 1,
      filesDone: 0,
    });
    expect(overall.at(-1)).toMatchObject({ bytes: 200, total: 400, etaSeconds: 2, filesDone: 1 });
  });

  it('--json and terminal: files planned before the first byte (an export) give the total from the start, marked as an estimate', () => {
    const { s, text } = collect();
    let t = 0;
    const p = jsonProgress(s, () => t);
    p.planFiles!([
      { key: 'item-1/a.vmdk', bytes: 300 },
      { key: 'item-2/b.vmdk', bytes: 700 },
    ]);
    p.update({ item: 'item-1', file: 'a.vmdk', bytes: 0, total: 200 });
    t = 1000;
    p.update({ item: 'item-1', file: 'a.vmdk', bytes: 100, total: 200 });
    p.end();
    const overall = text()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((e) => e.event === 'overall');
    // The second item has not started: it counts at its estimate; the first at its download's length.
    expect(overall.at(-1)).toMatchObject({
      bytes: 100,
      total: 900,
      planned: true,
      estimated: true,
      files: 2,
    });
    const tty = collect();
    const bars = ttyProgress(tty.s as unknown as NodeJS.WriteStream, () => 0);
    bars.planFiles!([{ key: 'item-1/a.vmdk', bytes: 2_000_000 }]);
    bars.update({
      item: 'item-1',
      file: 'kept.ovf',
      bytes: 1_000_000,
      total: 1_000_000,
      done: true,
      skipped: true,
    });
    expect(tty.text()).toContain('overall 1.0 MB of ~3.0 MB (33%)');
  });

  it('--json: the check of a NAS has its own overall event', () => {
    const { s, text } = collect();
    const p = jsonProgress(s, () => 0, 'verify');
    p.update({ item: 'item-1', file: 'item-1/a.vmdk.age', bytes: 10, total: 10, done: true });
    p.end();
    expect(text()).toContain('"event":"verify-overall"');
    expect(text()).not.toContain('"event":"overall"');
  });
});
