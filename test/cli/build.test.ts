import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';
import { startSimulator } from '../peers/vsphere/simulator.ts';
import { exportArgs, initParties, repoRoot } from '../support/cli.ts';

const exec = promisify(execFile);
const dist = join(repoRoot, 'dist/odt.mjs');

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
});
