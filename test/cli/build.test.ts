import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../support/cli.ts';

const exec = promisify(execFile);

describe('npm run build', () => {
  it('bundles a dist/odt.mjs that runs without the TypeScript toolchain', async () => {
    await exec('node', [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
    const work = await mkdtemp(join(tmpdir(), 'odt-dist-'));
    try {
      const { stdout } = await exec('node', [
        join(repoRoot, 'dist/odt.mjs'),
        'node',
        'init',
        '--dir',
        join(work, 'n'),
      ]);
      expect(stdout.trim().split('\n').at(-1)).toMatch(/^age1[02-9ac-hj-np-z]{58}$/);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
