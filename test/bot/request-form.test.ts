import { describe, expect, it } from 'vitest';
import {
  blockOfIssue,
  estimate,
  estimateText,
  formatDuration,
  inventoryEntries,
  itemOptions,
  optionText,
  optionValue,
} from '../../bot/request-form.ts';

describe('the ship-or-send estimate', () => {
  it('1 TB over 100 Mbit/s takes ~22 h: faster than a 5-day shipping turnaround', () => {
    const e = estimate(1e12, 1, 100, 5);
    expect(e.linkSeconds).toBe(80_000); // 8e12 bits / 1e8 bit/s
    expect(e.shippingSeconds).toBe(432_000);
    expect(e.verdict).toBe('send');
    expect(e.breakEvenBytes).toBe(5.4e12);
    expect(estimateText(e)).toBe(
      [
        '*Total:* 1.0 TB in 1 item',
        "*Over the site's 100 Mbit/s link:* ~22 h (at full line rate)",
        '*Shipping the NAS:* ~5 days turnaround',
        ':globe_with_meridians: *The link is faster* for this selection; shipping pays off above 5.4 TB.',
      ].join('\n'),
    );
  });

  it('20 TB over 100 Mbit/s takes ~19 days: ship', () => {
    const e = estimate(20e12, 12, 100, 5);
    expect(e.linkSeconds).toBe(1_600_000);
    expect(e.verdict).toBe('ship');
    expect(formatDuration(e.linkSeconds)).toBe('~19 days'); // 18.5
    expect(estimateText(e)).toContain('*Ship the NAS*: the link would take ~14 days longer.');
    expect(estimateText(e)).toContain('20 TB in 12 items');
  });

  it('formats durations for people', () => {
    expect(formatDuration(30)).toBe('under a minute');
    expect(formatDuration(40 * 60)).toBe('~40 min');
    expect(formatDuration(47 * 3600)).toBe('~47 h');
    expect(formatDuration(3 * 86_400)).toBe('~3 days');
    expect(formatDuration(12.4 * 86_400)).toBe('~12 days');
    expect(estimateText(estimate(1e9, 1, 2.5, 5))).toContain('2.5 Mbit/s');
  });
});

describe('inventory entries and options', () => {
  it('keeps what the agent reported that the form can use, and skips the rest', () => {
    const entries = inventoryEntries({
      site: 's',
      agentId: 'a',
      reportedAt: '2026-01-01T00:00:00.000Z',
      items: [
        { kind: 'vm', name: 'a', path: '/DC0/vm/a', sizeBytes: 1e9, moref: 'vm-1' },
        { kind: 'disk', name: 'b', path: '/x' },
        { kind: 'vm', name: '', path: '/DC0/vm/' },
        { kind: 'template', name: 't', path: '/DC0/vm/t' },
        null,
      ],
    });
    expect(entries).toEqual([
      { kind: 'vm', name: 'a', path: '/DC0/vm/a', sizeBytes: 1e9 },
      { kind: 'template', name: 't', path: '/DC0/vm/t', sizeBytes: 0 },
    ]);
  });

  it('shows the path of a name two items share, clipped from the left, within 75 characters', () => {
    const a = { kind: 'vm' as const, name: 'web', path: `/DC0/vm/${'team/'.repeat(20)}web`, sizeBytes: 1e9 };
    const b = { kind: 'vm' as const, name: 'web', path: '/DC0/vm/other/web', sizeBytes: 2e9 };
    const r = itemOptions([a, b], '') as { option_groups: { options: { text: { text: string } }[] }[] };
    const texts = r.option_groups[0]!.options.map((o) => o.text.text);
    expect(texts).toEqual([
      'VM /DC0/vm/other/web · 2.0 GB',
      expect.stringMatching(/^VM …[a-z]*\/(team\/)+web · 1\.0 GB$/),
    ]);
    for (const t of texts) expect(t.length).toBeLessThanOrEqual(75);
    expect(optionText(b)).toBe('VM web · 2.0 GB');
    expect(optionValue(b)).toBe('vm:/DC0/vm/other/web');
  });

  it('maps service issue paths to the fields that show them', () => {
    const blocks = ['item:vm:/a', 'item:vm:/b'];
    expect(blockOfIssue('items.1.target.powerOn', 'items:s', blocks)).toBe('item:vm:/b');
    expect(blockOfIssue('items.0.target.vdc', 'items:s', blocks)).toBe('vdc');
    expect(blockOfIssue('items.0.target.catalog', 'items:s', blocks)).toBe('catalog');
    expect(blockOfIssue('items.0.target.network', 'items:s', blocks)).toBe('network');
    expect(blockOfIssue('items', 'items:s', blocks)).toBe('items:s');
    expect(blockOfIssue('site', 'items:s', blocks)).toBe('site');
    expect(blockOfIssue('providerSite', 'items:s', blocks)).toBe('provider_site');
  });
});
