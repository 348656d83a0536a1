/**
 * Issue 18: the final report (Slack's and the sandbox's) states the custody log: its length, that
 * the chain holds and its head hash (a copy outside the store), or where it breaks.
 */
import { describe, expect, it } from 'vitest';
import { statusBlocks } from '../../bot/blocks.ts';
import { reportMessage } from '../../bot/progress-blocks.ts';
import { createTransfer, type Transfer, transition } from '../../core/index.ts';
import { formatReport } from '../../local/sandbox/report.ts';

const at = (minute: number) => new Date(Date.UTC(2026, 11, 1, 9, minute));

function completed(): Transfer {
  let t = createTransfer(
    {
      site: 'acme-dc1',
      requester: 'UCUSTOMER1',
      items: [{ kind: 'vm', source: 'web-01', target: { vdc: 'acme-vdc' } }],
    },
    'tr-report-1',
    at(0),
  );
  t = transition(t, 'approved', { actor: 'UAPPROVER1', at: at(1) });
  return transition(t, 'cancelled', { actor: 'UCUSTOMER1', at: at(2), note: 'not needed' });
}

const slackText = (t: Transfer): string => JSON.stringify(reportMessage(t).blocks);

describe('the custody log in the reports', () => {
  it('Slack: entries, chain intact, the head hash and the command that checks it', () => {
    const t = completed();
    expect(slackText(t)).toContain(
      `custody log: 3 entries, chain intact, head ${t.history[2]!.hash} (\`odt transfer show tr-report-1 --history\`)`,
    );
  });

  it('Slack: where the chain breaks, when an entry was edited', () => {
    const t = completed();
    t.history[1] = { ...t.history[1]!, actor: 'UMALLORY' };
    expect(slackText(t)).toContain('custody log BROKEN at entry 2: entry 2 was edited');
  });

  it('Slack /odt status: the same line under the history', () => {
    const t = completed();
    expect(JSON.stringify(statusBlocks(t))).toContain(
      `custody log: 3 entries, chain intact, head ${t.history[2]!.hash}`,
    );
    t.history[0] = { ...t.history[0]!, at: '2026-12-01T08:00:00.000Z' };
    expect(JSON.stringify(statusBlocks(t))).toContain('custody log BROKEN at entry 1');
  });

  it('sandbox: the same line, with the state folder to check it against', () => {
    const t = completed();
    const report = formatReport({
      transfer: t,
      dir: '/tmp/sbx',
      bytes: 0,
      exportSeconds: 1,
      importSeconds: 1,
      totalSeconds: 2,
      vcd: { vapps: [], templates: [] },
    });
    expect(report).toContain(
      `  custody log:    3 entries, chain intact, head ${t.history[2]!.hash} (odt transfer show tr-report-1 --history --state-dir /tmp/sbx/state)`,
    );
  });
});
