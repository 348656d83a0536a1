// bench/workflow: 200 transfers × 5 items through the whole lifecycle on the embedded engine.
//
//   npx tsx bench/workflow/bench-workflow.ts [--transfers 200] [--items 5] [--concurrency 20]
//
// Starts `odt serve` as its own process, drives every transfer through its API as the admin CLI
// and fake agents do (request, approve, shipping steps, export task claim/heartbeat/complete,
// import task, wipe), and prints: workflow transitions per second, p50/p99 from an approval to the
// export task being claimable (the two shipping events are sent at once by the bench), and the
// peak RSS of the odt serve process (VmHWM).
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { poll } from '../../core/wait.ts';
import { answerKeyTaskOverApi } from '../../test/support/fake-node.ts';

const { values } = parseArgs({
  options: {
    transfers: { type: 'string', default: '200' },
    items: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '20' },
  },
});
const N = Number(values.transfers);
const ITEMS = Number(values.items);
const CONC = Number(values.concurrency);
const repo = join(import.meta.dirname, '..', '..');

const dir = await mkdtemp(join(tmpdir(), 'odt-bench-wf-'));
const serve = spawn(
  process.execPath,
  [join(repo, 'bin/odt.mjs'), 'serve', '--state-dir', dir, '--port', '0', '--approvers', 'bob'],
  {
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
const url = await new Promise<string>((resolve, reject) => {
  let out = '';
  serve.stdout.on('data', (c) => {
    out += String(c);
    const m = /API (http:\/\/[^\s,]+)/.exec(out);
    if (m) resolve(m[1]!);
  });
  serve.on('exit', (code) => reject(new Error(`odt serve exited ${code}`)));
});
const token = (await readFile(join(dir, 'admin-token'), 'utf8')).trim();

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const json = (await res.json()) as T & { error?: string };
  if (!res.ok) throw new Error(`${method} ${path}: ${json.error}`);
  return json;
}
interface Task {
  id: string;
  itemIds: string[];
}
interface Transfer {
  id: string;
  phase: string;
  history: unknown[];
}

// A wait that never ends would hang the bench instead of failing it: each gives up after a minute.
function firstTask(site: string): Promise<Task> {
  return poll({
    what: `a task of site ${site}`,
    until: async () => (await api<Task[]>('GET', `/tasks?site=${site}`))[0],
    intervalMs: 2,
    timeoutMs: 60_000,
  });
}
async function untilPhase(id: string, phase: string): Promise<void> {
  await poll({
    what: `${id} to reach ${phase}`,
    until: async () => (await api<Transfer>('GET', `/transfers/${id}`)).phase === phase || undefined,
    intervalMs: 5,
    timeoutMs: 60_000,
  });
}

const approvalToClaimable: number[] = [];
async function one(i: number): Promise<void> {
  const site = `site-${i}`;
  const t = await api<Transfer>('POST', '/transfers', {
    request: {
      site,
      providerSite: `cloud-${i}`,
      requester: 'alice',
      items: Array.from({ length: ITEMS }, (_, k) => ({
        kind: 'vm',
        source: `vm-${i}-${k}`,
        target: { vdc: 'v', powerOn: true },
      })),
    },
  });
  const approved = performance.now();
  await api('POST', `/transfers/${t.id}/approve`, { actor: 'bob' });
  // The ODT node's key for the transfer (#18), answered as a fake node does, before the export task.
  await poll({
    what: `the make-key task of ${t.id}`,
    until: async () =>
      (await answerKeyTaskOverApi(api, `cloud-${i}`, await api('GET', `/transfers/${t.id}`))) || undefined,
    intervalMs: 2,
    timeoutMs: 60_000,
  });
  await api('POST', `/transfers/${t.id}/event`, { actor: 'bob', event: 'appliance-sent' });
  await api('POST', `/transfers/${t.id}/event`, { actor: 'alice', event: 'appliance-connected' });
  const exp = await firstTask(site);
  approvalToClaimable.push(performance.now() - approved);
  await api('POST', `/tasks/${exp.id}/claim`, { site, agent: `agent-${i}` });
  await api('POST', `/tasks/${exp.id}/heartbeat`, { agent: `agent-${i}`, progress: [] });
  await api('POST', `/tasks/${exp.id}/complete`, {
    agent: `agent-${i}`,
    outcomes: exp.itemIds.map((itemId) => ({ itemId, ok: true, bytes: 1 })),
  });
  await untilPhase(t.id, 'exported');
  await api('POST', `/transfers/${t.id}/event`, {
    actor: 'alice',
    event: 'shipped',
    carrier: 'DHL',
    tracking: `T${i}`,
  });
  await api('POST', `/transfers/${t.id}/event`, { actor: 'bob', event: 'received' });
  const imp = await firstTask(`cloud-${i}`);
  await api('POST', `/tasks/${imp.id}/claim`, { site: `cloud-${i}`, agent: `node-${i}` });
  await api('POST', `/tasks/${imp.id}/complete`, {
    agent: `node-${i}`,
    outcomes: imp.itemIds.map((itemId) => ({ itemId, ok: true, state: 'powered-on' })),
  });
  await untilPhase(t.id, 'completed');
  await api('POST', `/transfers/${t.id}/event`, { actor: 'bob', event: 'wiped' });
}

const started = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: CONC }, async () => {
    while (next < N) await one(next++);
  }),
);
const seconds = (performance.now() - started) / 1000;
const all = await api<Transfer[]>('GET', '/transfers');
const transitions = all.reduce((s, t) => s + t.history.length - 1, 0);
const status = await readFile(`/proc/${serve.pid}/status`, 'utf8');
const hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
serve.kill('SIGTERM');
await new Promise((r) => serve.once('exit', r));
await rm(dir, { recursive: true, force: true });

const sorted = [...approvalToClaimable].sort((a, b) => a - b);
const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
console.log(
  `${N} transfers × ${ITEMS} items, ${CONC} at a time, through the whole lifecycle in ${seconds.toFixed(1)} s`,
);
console.log(`transfer phase transitions: ${transitions} (${(transitions / seconds).toFixed(0)}/s)`);
console.log(`approval → export task claimable: p50 ${pct(50).toFixed(0)} ms, p99 ${pct(99).toFixed(0)} ms`);
console.log(`odt serve peak RSS: ${(hwmKb / 1024).toFixed(0)} MiB`);
