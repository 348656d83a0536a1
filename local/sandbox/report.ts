import { custodySummary, type Item, type Transfer } from '../../core/index.ts';
import { recipientStatementSchema, statementOf, wipeNotePrefix } from '../../core/model/transfer-key.ts';
import type { SandboxResult } from './run-sandbox.ts';

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

/** Where the item went in vCloud Director, in words. */
function placedAs(i: Item): string {
  const t = i.target;
  if (t.placement === 'catalog') {
    return t.deploy ? `catalog ${t.catalog}, and a vApp in ${t.vdc}` : `catalog ${t.catalog}`;
  }
  if (t.placement === 'existing-vapp') return `vApp ${t.vapp} in ${t.vdc}`;
  return `vApp in ${t.vdc}`;
}

/** How far the item got, in words (`powered-on` → `powered on`), with the reason of a failure. */
const resultOf = (i: Item): string =>
  `${i.result.state.replace('-', ' ')}${i.result.reason ? `: ${i.result.reason}` : ''}`;

/** What the item's VMs are called in vCenter, and its vApp or template in vCloud Director. */
function namedAs(i: Item): string {
  const n = i.result.names;
  if (!n) return '';
  return [`vCenter ${n.vcenter.map((v) => `'${v}'`).join(', ')}`, ...(n.vcd ? [`vCD '${n.vcd}'`] : [])].join(
    '; ',
  );
}

/**
 * The sandbox's closing report: one row per item (where it went, how far it got, the bytes its
 * agents reported, what it is called there), the measured throughput, and where state, logs and
 * the NAS folder are.
 */
export function formatReport(r: SandboxResult): string {
  const t = r.transfer;
  const rows = t.items.map((i) => [
    i.id,
    i.kind,
    i.source,
    placedAs(i),
    resultOf(i),
    mb(i.result.bytes),
    namedAs(i),
  ]);
  const head = ['ITEM', 'KIND', 'SOURCE', 'PLACED AS', 'RESULT', 'BYTES', 'NAMED'];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]!.length)));
  const table = [head, ...rows].map((row) =>
    `  ${row.map((v, c) => v.padEnd(widths[c]!)).join('  ')}`.trimEnd(),
  );
  return [
    `Report for ${t.id} (${t.phase})`,
    ...table,
    '',
    `  ${mb(r.bytes)} exported in ${r.exportSeconds.toFixed(1)} s (${mb(r.bytes / Math.max(0.001, r.exportSeconds))}/s, encrypted and signed), imported and onboarded in ${r.importSeconds.toFixed(1)} s; ${r.totalSeconds.toFixed(1)} s in all`,
    '',
    `  state and logs: ${r.dir}/state (events.log, odt.sqlite)`,
    `  NAS folder:     ${r.dir}/nas/${t.id}`,
    `  ${custodySummary(t, `odt transfer show ${t.id} --history --state-dir ${r.dir}/state`).replace(/^custody log: /, 'custody log:    ')}`,
    ...keyLines(t),
    '',
  ].join('\n');
}

/**
 * The transfer's own key: which it was, and the node's signed statement that it is destroyed
 * (docs/security.md). Until the wipe, `odt-node/transfer-keys/<id>.txt` decrypts the NAS by hand.
 */
function keyLines(t: Transfer): string[] {
  const made = t.key ? statementOf(recipientStatementSchema, t.key, 'The transfer key') : undefined;
  const wipe = t.history.findLast((h) => h.note?.startsWith(`${wipeNotePrefix}: `));
  if (!made)
    return ['  transfer key:   none of its own (encrypted to the node identity, odt-node/identity.txt)'];
  return [
    `  transfer key:   ${made.recipient} (SHA-256 ${made.keyFingerprint.slice(0, 16)}…), made by node ${made.node}`,
    wipe
      ? `  wipe:           ${wipe.note!.split('; signed statement')[0]}; signed by the node (history, ${wipe.at}): the NAS can no longer be decrypted`
      : `  wipe:           not yet: ${t.id}.txt in odt-node/transfer-keys/ opens the NAS by hand (docs/package-format.md)`,
  ];
}
