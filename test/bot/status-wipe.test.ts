import { describe, expect, it } from 'vitest';
import { statusBlocks } from '../../bot/blocks.ts';
import { createTransfer, record } from '../../core/index.ts';

// Issue #18: the node's wipe statement is kept whole in the custody log (over a thousand
// characters of signed payload); /odt status shows its gist, cut short, within a Slack section.
describe('/odt status of a wiped transfer', () => {
  it('shows the key destroyed, briefly, within a Slack section', () => {
    let t = createTransfer(
      {
        site: 'acme',
        providerSite: 'cloud',
        requester: 'alice',
        items: [{ kind: 'vm', source: 'web-01', target: { vdc: 'v' } }],
      },
      'tr-status-wipe',
      new Date('2026-12-08T00:00:00Z'),
    );
    for (let i = 0; i < 9; i++) t = record(t, { actor: 'bob', at: new Date(), note: `step ${i}` });
    const note = `key destroyed: ${'a'.repeat(64)} at 2026-12-08T01:00:00.000Z by node agt-1; NAS erase confirmed by bob; signed statement ${'P'.repeat(800)}.${'S'.repeat(512)}`;
    t = record(t, { actor: 'agt-1', at: new Date(), note });
    const sections = statusBlocks(t).flatMap((b) =>
      b.type === 'section' && 'text' in b ? [(b as unknown as { text: { text: string } }).text.text] : [],
    );
    const history = sections.find((s) => s.startsWith('*History*'))!;
    expect(history).toContain(`key destroyed: ${'a'.repeat(64)}`);
    expect(history).toContain('…');
    for (const s of sections) expect(s.length).toBeLessThanOrEqual(3000);
  });
});
