// What the export and import benchmarks share: their common options, the work folder and the
// bundle they time, how they run it and read its peak RSS, the simulator and the lease the curl
// references use, wall-clock timing, page-cache dropping and medians.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { VimClient } from '../agent/vsphere/client.ts';
import type { NfcLease } from '../agent/vsphere/lease.ts';
import {
  buildSimulator,
  type RunningSimulator,
  type SimulatorOptions,
  startSimulator,
} from '../test/peers/vsphere/simulator.ts';
import { initParties } from '../test/support/cli.ts';

export const sh = promisify(execFile);
export const repo = join(import.meta.dirname, '..');
export const GiB = 2 ** 30;
/** MB/s with MB = 10^6 bytes. */
export const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Preloaded into the bundle: prints `{"maxRssBytes":N}` on stderr as the process exits. */
const maxRss = join(import.meta.dirname, 'export', 'max-rss.mjs');

export async function timed<T>(f: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t = performance.now();
  const value = await f();
  return { ms: performance.now() - t, value };
}

/** Runs a bash script with pipefail; rejects with the script when it fails. */
export function bash(script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('bash', ['-o', 'pipefail', '-c', script], { stdio: ['ignore', 'ignore', 'inherit'] });
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`bash exited ${code}: ${script}`))));
  });
}

/**
 * Flushes and, when allowed (root), drops the page cache so a read comes from the disk; then
 * waits a second, for the discards of files just deleted to reach the disk (this machine's root
 * is mounted with `discard`) instead of slowing down whatever is timed next.
 */
export async function dropCaches(): Promise<void> {
  await sh('sync');
  await sh('bash', ['-c', 'echo 1 > /proc/sys/vm/drop_caches']).catch(() => undefined);
  await new Promise((resolve) => setTimeout(resolve, 1000));
}

/**
 * Runs each of `contenders` `runs` times, each rotation of their order twice, forward then
 * reversed, so that every contender is timed first in turn and follows each of its neighbours
 * (whose output was just deleted, or whose reads just filled the cache) as often as it precedes
 * them. With `warmup`, that many rounds run first and are not counted: the first contender after
 * the benchmark's own set-up otherwise runs in other conditions than all the rest (on this VM,
 * memory the set-up just freed is still fast to fill: one `curl -T` at ~1.2 GB/s where the others
 * ran at ~0.6). Returns each one's counted results.
 */
export async function rotate<T>(
  runs: number,
  contenders: readonly (() => Promise<T>)[],
  warmup = 0,
): Promise<T[][]> {
  const results: T[][] = contenders.map(() => []);
  const n = contenders.length;
  for (let i = 0; i < warmup + runs; i++) {
    const order = Array.from({ length: n }, (_, k) => (Math.floor(i / 2) + k) % n);
    if (i % 2 === 1) order.reverse();
    for (const c of order) {
      const result = await contenders[c]!();
      if (i >= warmup) results[c]!.push(result);
    }
  }
  return results;
}

/** Builds dist/odt.mjs (`npm run build`): the `odt` the benchmarks time. Returns its path. */
export async function buildOdt(): Promise<string> {
  await sh(process.execPath, [join(repo, 'scripts/build.mjs')]);
  return join(repo, 'dist', 'odt.mjs');
}

export interface BundleRun {
  /** Wall clock of the whole process, ms. */
  ms: number;
  /** Peak RSS of the process, bytes. */
  rss: number;
}

/**
 * Runs the bundle `entry` with `args` and max-rss.mjs preloaded, the vCenter password in
 * ODT_VCENTER_PASSWORD; `onLine` sees each line it prints on stdout, as it comes. Rejects with
 * its stderr unless it exits 0 and reports its peak RSS.
 */
export function runBundle(
  entry: string,
  args: readonly string[],
  password: string,
  onLine: (line: string) => void = () => undefined,
): Promise<BundleRun> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', maxRss, entry, ...args], {
      env: { ...process.env, ODT_VCENTER_PASSWORD: password },
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: repo,
    });
    let err = '';
    let buf = '';
    p.stdout.on('data', (c) => {
      buf += String(c);
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) onLine(l);
    });
    p.stderr.on('data', (c) => {
      err += String(c);
    });
    p.on('close', (code) => {
      const ms = performance.now() - t0;
      const m = /\{"maxRssBytes":(\d+)\}/.exec(err);
      if (code !== 0 || !m) reject(new Error(`odt ${args[0]} failed (${code}): ${err}`));
      else resolve({ ms, rss: Number(m[1]) });
    });
  });
}

/**
 * The parseArgs options both transfer benchmarks take, besides --size-gib: --rss-sizes (GiB sizes
 * to measure peak RSS at, default 1,4), --warmup (rounds of every contender run first and not
 * counted, see rotate; default 1) and --dir (where the work folder goes; default the temp dir).
 */
export const transferBenchOptions = {
  'rss-sizes': { type: 'string', default: '1,4' },
  warmup: { type: 'string', default: '1' },
  dir: { type: 'string' },
} as const;

/**
 * A new work folder (named prefix…, under dir or the temp dir) with an ODT node identity and an
 * export agent in it (initParties), and the bundle to time (buildOdt).
 */
export async function startBench(
  prefix: string,
  dir: string | undefined,
): Promise<{ work: string; entry: string; recipient: string }> {
  const work = await mkdtemp(join(dir ?? tmpdir(), prefix));
  const entry = await buildOdt();
  const recipient = await initParties(work);
  return { work, entry, recipient };
}

/** A vSphere simulator with one VM (DC0_C0_RP0_VM0), no vApps and no templates; opts add to that. */
export async function benchSimulator(opts: SimulatorOptions = {}): Promise<RunningSimulator> {
  // The simulator writes every VM's disk before it prints its URL: gigabytes of random bytes on a
  // busy machine take longer than the tests' 30 s.
  return startSimulator({
    binary: await buildSimulator(),
    apps: 0,
    templates: 0,
    vms: 1,
    startTimeoutMs: 300_000,
    ...opts,
  });
}

/** A session on a simulator, trusting any certificate (the benchmarks time data, not trust). */
export function connectInsecure(sim: RunningSimulator): Promise<VimClient> {
  return VimClient.connect({
    url: sim.url,
    username: sim.username,
    password: sim.password,
    trust: { kind: 'insecure' },
  });
}

/** A lease held ready for a curl reference: its disk's device URL and the cookie to send with it. */
export interface HeldLease {
  url: string;
  /** The session cookie where odt sends it (to the vCenter), '' for an ESXi host. */
  cookie: string;
  /** Stops the keep-alive, aborts the lease and logs the client out. */
  close(): Promise<void>;
}

/**
 * Waits for the lease to be ready and keeps it alive (HttpNfcLeaseProgress every 2 s) while a
 * curl reference uses its first disk's device URL (or its first device URL when none is a disk).
 */
export async function holdLease(client: VimClient, lease: NfcLease): Promise<HeldLease> {
  const info = await lease.waitReady();
  const device = info.deviceUrls.find((d) => d.disk) ?? info.deviceUrls[0];
  if (!device) throw new Error('the lease has no device URL');
  const keep = setInterval(() => void lease.progress(0).catch(() => undefined), 2000);
  return {
    url: device.url.href,
    cookie: client.deviceHosts.route(device).cookie ?? '',
    async close() {
      clearInterval(keep);
      await lease.abort().catch(() => undefined);
      await client.logout();
    },
  };
}
