// bench/export: throughput of `odt export` against the physical limit measured in the same run.
//
//   npx tsx bench/export/bench-export.ts [--size-gib 2] [--rss-sizes 1,4] [--dir <folder>]
//
// The export runs as agents run it: the bundle `npm run build` makes (dist/odt.mjs, built at the
// start), with max-rss.mjs preloaded to print the process's peak RSS as it exits, so the figure is
// the installed `odt`'s own and not tsx's TypeScript loading (~100 MB).
//
// One VM with one disk of random data in the vSphere simulator. For the same device URL, into the
// same folder, it times: `curl -o` (the user-space copy a transforming pipeline can hope to reach;
// see shared notes on why not cp), the standard-tool pipeline doing our job
// (`curl | tee >(sha256sum) | age -r`), and `odt export` (hash, age-encrypt, hash, write, fsync).
// Then peak RSS of the export process for each of --rss-sizes. Prints ratios, not only MB/s.
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { VimClient } from '../../agent/vsphere/client.ts';
import { NfcLease } from '../../agent/vsphere/lease.ts';
import { buildSimulator, type RunningSimulator, startSimulator } from '../../test/peers/vsphere/simulator.ts';

const sh = promisify(execFile);
const repo = join(import.meta.dirname, '..', '..');
const { values } = parseArgs({
  options: {
    'size-gib': { type: 'string', default: '2' },
    'rss-sizes': { type: 'string', default: '1,4' },
    dir: { type: 'string' },
  },
});
const GiB = 2 ** 30;
const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

async function timed<T>(f: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t = performance.now();
  const value = await f();
  return { ms: performance.now() - t, value };
}

function bash(script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('bash', ['-o', 'pipefail', '-c', script], { stdio: ['ignore', 'ignore', 'inherit'] });
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`bash exited ${code}: ${script}`))));
  });
}

async function dropCaches(): Promise<void> {
  await sh('sync');
  await sh('bash', ['-c', 'echo 1 > /proc/sys/vm/drop_caches']).catch(() => undefined);
}

async function withSim<T>(sizeBytes: number, f: (sim: RunningSimulator) => Promise<T>): Promise<T> {
  const sim = await startSimulator({
    binary: await buildSimulator(),
    diskSize: sizeBytes,
    disksPerVm: 1,
    vms: 1,
    apps: 0,
    templates: 0,
    diskContent: 'random',
  });
  try {
    return await f(sim);
  } finally {
    await sim.stop();
  }
}

/** Builds dist/odt.mjs (`npm run build`): the export process the benchmark times. Returns its path. */
async function buildOdt(): Promise<string> {
  await sh(process.execPath, [join(repo, 'scripts/build.mjs')]);
  return join(repo, 'dist', 'odt.mjs');
}

async function runExport(
  entry: string,
  sim: RunningSimulator,
  work: string,
  nas: string,
  recipient: string,
): Promise<{ ms: number; rss: number }> {
  return timed(
    () =>
      new Promise<number>((resolve, reject) => {
        const p = spawn(
          process.execPath,
          [
            '--import',
            join(import.meta.dirname, 'max-rss.mjs'),
            entry,
            'export',
            '--vcenter',
            sim.url,
            '--username',
            sim.username,
            '--item',
            'DC0_C0_RP0_VM0',
            '--nas',
            nas,
            '--recipient',
            recipient,
            '--transfer',
            `tr-bench-${Date.now()}`,
            '--agent-dir',
            join(work, 'agent'),
          ],
          {
            env: { ...process.env, ODT_VCENTER_PASSWORD: sim.password },
            stdio: ['ignore', 'ignore', 'pipe'],
            cwd: repo,
          },
        );
        let err = '';
        p.stderr.on('data', (c) => {
          err += String(c);
        });
        p.on('close', (code) => {
          const m = /\{"maxRssBytes":(\d+)\}/.exec(err);
          if (code !== 0 || !m) reject(new Error(`export failed (${code}): ${err}`));
          else resolve(Number(m[1]));
        });
      }),
  ).then(({ ms, value }) => ({ ms, rss: value }));
}

async function main(): Promise<void> {
  const size = Math.round(Number(values['size-gib']) * GiB);
  const work = await mkdtemp(join(values.dir ?? tmpdir(), 'odt-bench-'));
  const nas = join(work, 'nas');
  await mkdir(nas, { recursive: true });
  const entry = await buildOdt();
  const node = await sh(process.execPath, [
    join(repo, 'bin/odt.mjs'),
    'node',
    'init',
    '--dir',
    join(work, 'node'),
  ]);
  const recipient = node.stdout.trim().split('\n').at(-1)!;
  await sh(process.execPath, [join(repo, 'bin/odt.mjs'), 'agent', 'init', '--dir', join(work, 'agent')]);
  try {
    await withSim(size, async (sim) => {
      // A lease to read the device URL with curl, like a user would.
      const client = await VimClient.connect({
        url: sim.url,
        username: sim.username,
        password: sim.password,
        trust: { kind: 'insecure' },
      });
      const vm = (await sim.readInventory()).vms.find((v) => v.name === 'DC0_C0_RP0_VM0')!;
      const res = await client.invoke('ExportVm', { _this: { type: 'VirtualMachine', value: vm.moref } });
      const lease = new NfcLease(client, res.child('returnval')!.moref);
      const info = await lease.waitReady();
      const url = info.deviceUrls.find((d) => d.disk)!.url.href;
      const cookie = client.connection.sessionCookie ?? '';
      const keep = setInterval(() => void lease.progress(0).catch(() => undefined), 2000);
      const runs = 3;
      const curl: number[] = [];
      const tools: number[] = [];
      const ours: { ms: number; rss: number }[] = [];
      for (let i = 0; i < runs; i++) {
        await dropCaches();
        curl.push(
          (
            await timed(() =>
              bash(`curl -sf -H 'Cookie: ${cookie}' -o '${nas}/curl.bin' '${url}' && sync '${nas}/curl.bin'`),
            )
          ).ms,
        );
        await rm(join(nas, 'curl.bin'));
        await dropCaches();
        tools.push(
          (
            await timed(() =>
              bash(
                `curl -sf -H 'Cookie: ${cookie}' '${url}' | tee >(sha256sum > '${nas}/tools.sha') | age -r ${recipient} > '${nas}/tools.age' && sync '${nas}/tools.age'`,
              ),
            )
          ).ms,
        );
        await rm(join(nas, 'tools.age'));
        await dropCaches();
        ours.push(await runExport(entry, sim, work, nas, recipient));
        await rm(nas, { recursive: true });
        await mkdir(nas);
      }
      clearInterval(keep);
      await lease.abort();
      await client.logout();
      const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const c = med(curl);
      const t = med(tools);
      const o = med(ours.map((x) => x.ms));
      console.log(`disk ${(size / GiB).toFixed(1)} GiB random, ${runs} runs each, medians, MB = 10^6 bytes`);
      console.log(`curl -o (physical limit)         ${mbps(size, c).toFixed(0).padStart(5)} MB/s`);
      console.log(
        `curl | tee >(sha256sum) | age -r ${mbps(size, t).toFixed(0).padStart(5)} MB/s   ratio to curl ${(c / t).toFixed(2)}`,
      );
      console.log(
        `odt export                       ${mbps(size, o).toFixed(0).padStart(5)} MB/s   ratio to curl ${(c / o).toFixed(2)}   ratio to standard tools ${(t / o).toFixed(2)}`,
      );
      console.log(
        `odt export peak RSS (this size)  ${(Math.max(...ours.map((x) => x.rss)) / 1e6).toFixed(0)} MB`,
      );
    });
    for (const gib of (values['rss-sizes'] ?? '').split(',').filter(Boolean).map(Number)) {
      await withSim(gib * GiB, async (sim) => {
        const r = await runExport(entry, sim, work, nas, recipient);
        console.log(
          `odt export peak RSS, ${gib} GiB disk: ${(r.rss / 1e6).toFixed(0)} MB (${mbps(gib * GiB, r.ms).toFixed(0)} MB/s)`,
        );
        await rm(nas, { recursive: true });
        await mkdir(nas);
      });
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
