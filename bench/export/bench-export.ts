// bench/export: throughput of `odt export` against the physical limit measured in the same run.
//
//   npx tsx bench/export/bench-export.ts [--size-gib 2] [--rss-sizes 1,4] [--warmup 1] [--dir <folder>]
//   npx tsx bench/export/bench-export.ts --live [--size-gib 2] [--runs 3] [--warmup 1] [--dir <folder>]
//
// --live (issue #21) times `odt export` of a running VM (snapshot, linked clone, export of the
// clone, clean-up) against the same export of a powered-off VM with a disk of the same size, in
// one simulator, alternating (bench/support.ts, rotate), and prints the ratio. It runs the CLI
// from the checkout (bin/odt.mjs, through tsx) rather than the bundle, so as not to rebuild the
// shared dist/ mid-session: the start-up of tsx is in both arms and is printed, and the ratio is
// given with and without it.
//
// The export runs as agents run it: the bundle `npm run build` makes (dist/odt.mjs, built at the
// start), with max-rss.mjs preloaded to print the process's peak RSS as it exits, so the figure is
// the installed `odt`'s own and not tsx's TypeScript loading (~100 MB).
//
// One VM with one disk of random data in the vSphere simulator. For the same device URL, into the
// same folder, it times: `curl -o` (the user-space copy a transforming pipeline can hope to reach;
// see shared notes on why not cp); two standard-tool pipelines: the issue's
// `curl | tee >(sha256sum) | age -r` (plaintext hash and encryption), and the same with
// `| tee >(split -b 64M --filter=sha256sum)` after age, which does all of our job (transfer.json
// records the SHA-256 of each 64 MiB of each encrypted file too); and `odt export` (hash, age-encrypt, hash, write, fsync). Every one
// ends with its output flushed to disk; each starts with the page cache dropped, and the order
// rotates from run to run after one round that is not counted (bench/support.ts, rotate). Then peak RSS of the export process for each of
// --rss-sizes. Prints ratios, not only MB/s.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NfcLease } from '../../agent/vsphere/lease.ts';
import type { RunningSimulator } from '../../test/peers/vsphere/simulator.ts';
import { exportArgs, initParties, repoRoot as repo } from '../../test/support/cli.ts';
import {
  type BundleRun,
  bash,
  benchSimulator,
  connectInsecure,
  dropCaches,
  GiB,
  holdLease,
  mbps,
  median,
  rotate,
  runBundle,
  startBench,
  timed,
  transferBenchOptions,
} from '../support.ts';

const { values } = parseArgs({
  options: {
    'size-gib': { type: 'string', default: '2' },
    live: { type: 'boolean', default: false },
    runs: { type: 'string', default: '3' },
    ...transferBenchOptions,
  },
});

async function withSim<T>(sizeBytes: number, f: (sim: RunningSimulator) => Promise<T>): Promise<T> {
  const sim = await benchSimulator({ diskSize: sizeBytes, disksPerVm: 1, diskContent: 'random' });
  try {
    return await f(sim);
  } finally {
    await sim.stop();
  }
}

const runExport = (
  entry: string,
  sim: RunningSimulator,
  work: string,
  nas: string,
  recipient: string,
): Promise<BundleRun> =>
  runBundle(
    entry,
    exportArgs(sim, work, recipient, ['DC0_C0_RP0_VM0'], nas, `tr-bench-${Date.now()}`),
    sim.password,
  );

/** --live: the export of a running VM against the same export of a powered-off one. */
async function live(): Promise<void> {
  const size = Math.round(Number(values['size-gib']) * GiB);
  const runs = Number(values.runs);
  const work = await mkdtemp(join(values.dir ?? tmpdir(), 'odt-bench-live-'));
  const entry = join(repo, 'bin', 'odt.mjs');
  const recipient = await initParties(work);
  const nas = join(work, 'nas');
  await mkdir(nas, { recursive: true });
  const sim = await benchSimulator({
    diskSize: size,
    disksPerVm: 1,
    diskContent: 'random',
    vms: 2,
    poweredOn: ['DC0_C0_RP0_VM1'],
  });
  try {
    const once = async (vm: string): Promise<number> => {
      await dropCaches();
      const r = await runBundle(
        entry,
        exportArgs(sim, work, recipient, [vm], nas, `tr-bench-${Date.now()}`),
        sim.password,
      );
      await rm(nas, { recursive: true });
      await mkdir(nas);
      return r.ms;
    };
    const [cold, hot] = await rotate(
      runs,
      [() => once('DC0_C0_RP0_VM0'), () => once('DC0_C0_RP0_VM1')],
      Number(values.warmup),
    );
    // What tsx costs before the export starts: `odt --help` through the same entry, one at a time.
    const starts: number[] = [];
    for (let i = 0; i < 3; i++)
      starts.push((await timed(() => bash(`'${process.execPath}' '${entry}' --help > /dev/null`))).ms);
    const startMs = median(starts);
    const c = median(cold!);
    const h = median(hot!);
    console.log(
      `disk ${(size / GiB).toFixed(1)} GiB random, ${runs} runs each after ${values.warmup} uncounted, medians, MB = 10^6 bytes, odt from the checkout (tsx)`,
    );
    const each = (xs: number[]) => xs.map((ms) => (ms / 1000).toFixed(1)).join(', ');
    console.log(`each run, s: powered off ${each(cold!)}; running (live) ${each(hot!)}`);
    console.log(
      `odt export, powered off   ${(c / 1000).toFixed(1).padStart(6)} s  ${mbps(size, c).toFixed(0).padStart(5)} MB/s`,
    );
    console.log(
      `odt export, running (live) ${(h / 1000).toFixed(1).padStart(5)} s  ${mbps(size, h).toFixed(0).padStart(5)} MB/s`,
    );
    console.log(
      `live / powered off: ${(h / c).toFixed(3)} (start-up of the CLI, ${(startMs / 1000).toFixed(1)} s, taken out of both: ${((h - startMs) / (c - startMs)).toFixed(3)})`,
    );
  } finally {
    await sim.stop();
    await rm(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const size = Math.round(Number(values['size-gib']) * GiB);
  const { work, entry, recipient } = await startBench('odt-bench-', values.dir);
  const nas = join(work, 'nas');
  await mkdir(nas, { recursive: true });
  try {
    await withSim(size, async (sim) => {
      // A lease to read the device URL with curl, like a user would.
      const client = await connectInsecure(sim);
      const vm = (await sim.readInventory()).vms.find((v) => v.name === 'DC0_C0_RP0_VM0')!;
      const res = await client.invoke('ExportVm', { _this: { type: 'VirtualMachine', value: vm.moref } });
      const { url, cookie, close } = await holdLease(
        client,
        new NfcLease(client, res.child('returnval')!.moref),
      );
      const runs = 3;
      const ours: BundleRun[] = [];
      const pipe = async (script: string, output: string): Promise<number> => {
        await dropCaches();
        const { ms } = await timed(() => bash(`${script} && sync '${output}'`));
        await rm(output);
        return ms;
      };
      const get = `curl -sf -H 'Cookie: ${cookie}'`;
      const [curl, tools, toolsAll, oursMs] = await rotate(
        runs,
        [
          () => pipe(`${get} -o '${nas}/curl.bin' '${url}'`, `${nas}/curl.bin`),
          () =>
            pipe(
              `${get} '${url}' | tee >(sha256sum > '${nas}/tools.sha') | age -r ${recipient} > '${nas}/tools.age'`,
              `${nas}/tools.age`,
            ),
          () =>
            pipe(
              `${get} '${url}' | tee >(sha256sum > '${nas}/tools.sha') | age -r ${recipient} | tee >(split -b 64M --filter=sha256sum > '${nas}/tools.age.sha') > '${nas}/tools.age'`,
              `${nas}/tools.age`,
            ),
          async () => {
            await dropCaches();
            const r = await runExport(entry, sim, work, nas, recipient);
            await rm(nas, { recursive: true });
            await mkdir(nas);
            ours.push(r);
            return r.ms;
          },
        ],
        Number(values.warmup),
      );
      await close();
      const c = median(curl!);
      const t = median(tools!);
      const ta = median(toolsAll!);
      const o = median(oursMs!);
      console.log(
        `disk ${(size / GiB).toFixed(1)} GiB random, ${runs} runs each after ${values.warmup} uncounted, medians, MB = 10^6 bytes`,
      );
      const each = (xs: number[]) => xs.map((ms) => mbps(size, ms).toFixed(0)).join(', ');
      console.log(
        `each run, MB/s: curl -o ${each(curl!)}; tools ${each(tools!)}; tools, same work ${each(toolsAll!)}; odt export ${each(oursMs!)}`,
      );
      console.log(`curl -o (physical limit)         ${mbps(size, c).toFixed(0).padStart(5)} MB/s`);
      console.log(
        `curl | tee >(sha256sum) | age -r ${mbps(size, t).toFixed(0).padStart(5)} MB/s   ratio to curl ${(c / t).toFixed(2)}`,
      );
      console.log(
        `… | age -r | tee >(split … sha256sum) ${mbps(size, ta).toFixed(0).padStart(5)} MB/s   ratio to curl ${(c / ta).toFixed(2)}   (the same work as odt export)`,
      );
      console.log(
        `odt export                       ${mbps(size, o).toFixed(0).padStart(5)} MB/s   ratio to curl ${(c / o).toFixed(2)}   ratio to the tools: ${(t / o).toFixed(2)} (plaintext hash + age), ${(ta / o).toFixed(2)} (the same work)`,
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

await (values.live ? live() : main());
