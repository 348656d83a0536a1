/**
 * Throughput and peak RSS of the age codec against the `age` CLI on the same bytes.
 *
 *   npx tsx bench/age/bench-age.ts [sizeMiB=1024] [--reps N=3] [--only SUBSTRING]
 *
 * Each measurement runs in a fresh process (ours warm up on 16 MiB first),
 * repeated `--reps` times interleaved with the others; the table shows the median and the range.
 * MB/s = 10^6 bytes/s of plaintext. Files live in /dev/shm; reads and writes use 1 MiB buffers, as
 * the agents do. "+ SHA-256" hashes plaintext and ciphertext on the main thread, as the export does.
 */

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createDecryptStream, createEncryptStream } from '../../agent/package/age/encrypt.ts';
import { formatIdentityFile, generateIdentity, parseIdentityFile } from '../../agent/package/age/keys.ts';

const MiB = 1024 * 1024;
const writeBuffer = MiB;

interface Sample {
  readonly mbps: number;
  /** Peak resident set: GNU time's for the CLI, sampled every 10 ms during the run for ours. */
  readonly rssMB: number;
  /** Peak RSS above what the process held before the run (for runs that load their input). */
  readonly extraRssMB?: number;
}

interface Setup {
  readonly dir: string;
  readonly size: number;
  readonly plain: string;
  readonly cliAge: string;
  readonly identityFile: string;
  readonly recipient: string;
}

function nullSink(): Writable {
  return new Writable({
    highWaterMark: writeBuffer,
    write(_chunk, _encoding, callback) {
      callback();
    },
    writev(_chunks, callback) {
      callback();
    },
  });
}

function hashing(): Transform {
  const hash = createHash('sha256');
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
    flush(callback) {
      hash.digest();
      callback();
    },
  });
}

/** `size` bytes in 1 MiB writes, cycling a 16 MiB random pool (no I/O). */
function memorySource(size: number): Readable {
  const pool = randomBytes(16 * MiB);
  let sent = 0;
  return new Readable({
    highWaterMark: writeBuffer,
    read() {
      if (sent >= size) {
        this.push(null);
        return;
      }
      const n = Math.min(MiB, size - sent);
      const at = sent % pool.length;
      sent += n;
      this.push(pool.subarray(at, at + n));
    },
  });
}

/** One of our runs: MB/s, and the RSS (MB) it held before starting, if it loads its input. */
interface Run {
  readonly mbps: number;
  readonly heldMB?: number;
}

/** The scenarios a child process runs. */
const ours: Record<string, (s: Setup, worker: boolean) => Promise<Run>> = {
  async 'encrypt, in memory'(s, worker) {
    const start = performance.now();
    await pipeline(memorySource(s.size), createEncryptStream([s.recipient], { worker }), nullSink());
    return { mbps: s.size / 1e3 / (performance.now() - start) };
  },
  async 'decrypt, in memory'(s, worker) {
    const input = readFileSync(s.cliAge);
    const before = process.memoryUsage().rss / MiB;
    const source = Readable.from(
      (function* () {
        for (let at = 0; at < input.length; at += MiB) yield input.subarray(at, at + MiB);
      })(),
      { objectMode: false, highWaterMark: writeBuffer },
    );
    const identities = parseIdentityFile(readFileSync(s.identityFile, 'utf8'));
    const start = performance.now();
    await pipeline(source, createDecryptStream(identities, { worker }), nullSink());
    return { mbps: s.size / 1e3 / (performance.now() - start), heldMB: before };
  },
  async 'encrypt, file to file'(s, worker) {
    const start = performance.now();
    await pipeline(
      createReadStream(s.plain, { highWaterMark: MiB }),
      createEncryptStream([s.recipient], { worker }),
      createWriteStream(join(s.dir, 'ours.age'), { highWaterMark: writeBuffer }),
    );
    return { mbps: s.size / 1e3 / (performance.now() - start) };
  },
  async 'decrypt, file to file'(s, worker) {
    const identities = parseIdentityFile(readFileSync(s.identityFile, 'utf8'));
    const start = performance.now();
    await pipeline(
      createReadStream(s.cliAge, { highWaterMark: MiB }),
      createDecryptStream(identities, { worker }),
      createWriteStream(join(s.dir, 'ours.out'), { highWaterMark: writeBuffer }),
    );
    return { mbps: s.size / 1e3 / (performance.now() - start) };
  },
  async 'encrypt + SHA-256 of both sides, file to file'(s, worker) {
    const start = performance.now();
    await pipeline(
      createReadStream(s.plain, { highWaterMark: MiB }),
      hashing(),
      createEncryptStream([s.recipient], { worker }),
      hashing(),
      createWriteStream(join(s.dir, 'ours.age'), { highWaterMark: writeBuffer }),
    );
    return { mbps: s.size / 1e3 / (performance.now() - start) };
  },
  async 'decrypt + SHA-256 of both sides, file to file'(s, worker) {
    const identities = parseIdentityFile(readFileSync(s.identityFile, 'utf8'));
    const start = performance.now();
    await pipeline(
      createReadStream(s.cliAge, { highWaterMark: MiB }),
      hashing(),
      createDecryptStream(identities, { worker }),
      hashing(),
      createWriteStream(join(s.dir, 'ours.out'), { highWaterMark: writeBuffer }),
    );
    return { mbps: s.size / 1e3 / (performance.now() - start) };
  },
};

/**
 * Encrypts and decrypts 16 MiB first, so a run measures a long-running agent (compiled code, a
 * started worker, a grown heap) rather than process start-up.
 */
async function warmUp(s: Setup, worker: boolean): Promise<void> {
  const parts: Buffer[] = [];
  const collect = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      parts.push(chunk);
      callback();
    },
  });
  await pipeline(memorySource(16 * MiB), createEncryptStream([s.recipient], { worker }), collect);
  const identities = parseIdentityFile(readFileSync(s.identityFile, 'utf8'));
  await pipeline(
    Readable.from(parts, { objectMode: false }),
    createDecryptStream(identities, { worker }),
    nullSink(),
  );
}

/** Runs the `age` CLI under GNU time for its peak RSS. */
function runCli(s: Setup, args: readonly string[]): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn('/usr/bin/time', ['-f', '%M', 'age', ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const mbps = s.size / 1e3 / (performance.now() - start);
      if (code !== 0) reject(new Error(`age ${args.join(' ')} exited with ${code}: ${stderr}`));
      else resolve({ mbps, rssMB: Number(stderr.trim().split('\n').pop()) / 1024 });
    });
  });
}

const cli: Record<string, (s: Setup) => Promise<Sample>> = {
  'encrypt, file to file': (s) => runCli(s, ['-r', s.recipient, '-o', join(s.dir, 'cli-out.age'), s.plain]),
  'decrypt, file to file': (s) =>
    runCli(s, ['-d', '-i', s.identityFile, '-o', join(s.dir, 'cli.out'), s.cliAge]),
};

interface Case {
  readonly label: string;
  readonly run: () => Promise<Sample>;
}

function childCase(setup: Setup, scenario: string, worker: boolean): Case {
  return {
    label: `ours${worker ? ' (worker)' : ''}: ${scenario}`,
    run: () =>
      new Promise((resolve, reject) => {
        const args = [
          ...process.execArgv,
          // As odt runs: gc exposed, for the age streams' young-generation collections (encrypt.ts).
          '--expose-gc',
          fileURLToPath(import.meta.url),
          '--child',
          JSON.stringify({ setup, scenario, worker }),
        ];
        const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
        });
        child.on('error', reject);
        child.on('close', (code) => {
          if (code !== 0) reject(new Error(`${scenario} exited with ${code}`));
          else resolve(JSON.parse(out) as Sample);
        });
      }),
  };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

async function prepare(size: number): Promise<Setup> {
  const dir = `/dev/shm/age-bench-${process.pid}`;
  mkdirSync(dir, { recursive: true });
  const plain = join(dir, 'plain.bin');
  const out = createWriteStream(plain);
  for (let written = 0; written < size; written += MiB) {
    if (!out.write(randomBytes(Math.min(MiB, size - written))))
      await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) =>
    out.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
  const { identity, recipient } = generateIdentity();
  const identityFile = join(dir, 'identity.txt');
  writeFileSync(identityFile, formatIdentityFile(identity), { mode: 0o600 });
  const setup: Setup = { dir, size, plain, cliAge: join(dir, 'cli.age'), identityFile, recipient };
  // The decrypt runs read what the CLI wrote, which also checks interoperability at this size.
  await runCli(setup, ['-r', recipient, '-o', setup.cliAge, plain]);
  return setup;
}

async function main(argv: readonly string[]): Promise<void> {
  const childAt = argv.indexOf('--child');
  if (childAt >= 0) {
    const { setup, scenario, worker } = JSON.parse(argv[childAt + 1]!) as {
      setup: Setup;
      scenario: string;
      worker: boolean;
    };
    await warmUp(setup, worker);
    // Peak RSS of the run itself, sampled: the process's maxRSS would include the warm-up.
    let peak = 0;
    const sampleRss = () => {
      peak = Math.max(peak, process.memoryUsage.rss() / MiB);
    };
    sampleRss();
    const sampler = setInterval(sampleRss, 10);
    const run = await ours[scenario]!(setup, worker);
    clearInterval(sampler);
    sampleRss();
    const sample: Sample = {
      mbps: run.mbps,
      rssMB: peak,
      ...(run.heldMB === undefined ? {} : { extraRssMB: peak - run.heldMB }),
    };
    process.stdout.write(JSON.stringify(sample));
    return;
  }
  const flag = (name: string) => {
    const at = argv.indexOf(name);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  const positional = argv.find((a, i) => !a.startsWith('--') && !argv[i - 1]?.startsWith('--'));
  const sizeMiB = Number(positional ?? 1024);
  const reps = Number(flag('--reps') ?? 3);
  const only = flag('--only');
  if (!(sizeMiB > 0) || !(reps > 0))
    throw new Error('usage: bench-age.ts [sizeMiB] [--reps N] [--only SUBSTRING]');

  const setup = await prepare(sizeMiB * MiB);
  try {
    const cases: Case[] = [];
    for (const scenario of Object.keys(ours)) {
      const cliRun = cli[scenario];
      if (cliRun) cases.push({ label: `age CLI: ${scenario}`, run: () => cliRun(setup) });
      cases.push(childCase(setup, scenario, false), childCase(setup, scenario, true));
    }
    const selected = cases.filter((c) => only === undefined || c.label.includes(only));
    const samples = new Map<string, Sample[]>(selected.map((c) => [c.label, []]));
    for (let rep = 0; rep < reps; rep++) {
      for (const c of selected) samples.get(c.label)!.push(await c.run());
    }
    const size = statSync(setup.plain).size;
    console.log(`age codec, ${size / MiB} MiB of random data, ${reps} runs each (median [min–max])`);
    for (const c of selected) {
      const runs = samples.get(c.label)!;
      const mbps = runs.map((r) => r.mbps);
      const rss = median(runs.map((r) => r.rssMB));
      const extra =
        runs[0]?.extraRssMB === undefined
          ? ''
          : `, ${median(runs.map((r) => r.extraRssMB!)).toFixed(0)} MB above input`;
      console.log(
        `${c.label.padEnd(58)} ${median(mbps).toFixed(0).padStart(5)} MB/s [${Math.min(...mbps).toFixed(0)}–${Math.max(...mbps).toFixed(0)}]  peak RSS ${rss.toFixed(0)} MB${extra}`,
      );
    }
  } finally {
    rmSync(setup.dir, { recursive: true, force: true });
  }
}

await main(process.argv.slice(2));
