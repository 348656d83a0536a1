import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Issue 22, "One writer", when serves start at the same moment (a service manager restarting one
// while an operator starts another): of several processes that find the same stale lock (its pid
// is gone), exactly one may take the folder. Each child takes the lock at one agreed instant and
// holds it a while, so the others see a live holder.

const lockModule = resolve(import.meta.dirname, '..', '..', 'local', 'state-lock.ts');
const contenders = 6;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'odt-state-lock-race-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function contend(dir: string, at: number): Promise<string> {
  const script = `
    const { lockStateDir } = await import(${JSON.stringify(lockModule)});
    while (Date.now() < ${at}) {}
    try { lockStateDir(${JSON.stringify(dir)}); console.log('got'); await new Promise((r) => setTimeout(r, 1500)); }
    catch (e) { console.log(e.code ?? String(e)); }`;
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c) => (out += String(c)));
    child.on('error', fail);
    child.on('close', () => done(out.trim()));
  });
}

describe('the state folder lock, contended', () => {
  it('lets exactly one of several serves starting at once take over a stale lock', async () => {
    for (let round = 0; round < 3; round++) {
      const dir = join(work, `r${round}`);
      await rm(dir, { recursive: true, force: true });
      const { mkdir } = await import('node:fs/promises');
      await mkdir(dir);
      // pid 2^22 + 1 is above Linux's pid_max: no such process.
      await writeFile(
        join(dir, 'serve.lock'),
        `${JSON.stringify({ pid: 4194305, host: hostname(), since: 'x' })}\n`,
      );
      const at = Date.now() + 2500;
      const results = await Promise.all(Array.from({ length: contenders }, () => contend(dir, at)));
      expect(
        results.filter((r) => r === 'got'),
        results.join(', '),
      ).toHaveLength(1);
      expect(
        results.filter((r) => r !== 'got').every((r) => r === 'STATE_LOCKED'),
        results.join(', '),
      ).toBe(true);
    }
  }, 60_000);
});
