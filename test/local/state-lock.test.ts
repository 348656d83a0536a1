import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockStateDir, StateLockedError } from '../../local/state-lock.ts';

// Issue 22, "One writer": the lock of odt serve's state folder, in process. A lock file left by a
// power cut names a pid that, after the reboot, may be another process's, or odt serve's own
// (services start in the same order at every boot): the lock records the boot it was taken in,
// and one of an earlier boot is taken over instead of refusing for ever.

const bootFile = '/proc/sys/kernel/random/boot_id';
const boot = existsSync(bootFile) ? readFileSync(bootFile, 'utf8').trim() : undefined;
const earlierBoot = '00000000-0000-4000-8000-000000000000';
let work: string;
let n = 0;

async function lockedBy(holder: Record<string, unknown>): Promise<string> {
  const dir = join(work, `s${n++}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir);
  await writeFile(
    join(dir, 'serve.lock'),
    `${JSON.stringify({ host: hostname(), since: 'x', ...holder })}\n`,
  );
  return dir;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'odt-state-lock-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('the state folder lock', () => {
  it('refuses a folder held by a live process of this boot, naming its pid', async () => {
    const dir = await lockedBy({ pid: process.ppid, ...(boot ? { boot } : {}) });
    expect(() => lockStateDir(dir)).toThrow(StateLockedError);
    expect(() => lockStateDir(dir)).toThrow(`in use by odt serve pid ${process.ppid}`);
  });

  it('refuses a lock without a boot id (an older serve) whose pid is alive, as before', async () => {
    const dir = await lockedBy({ pid: process.ppid });
    expect(() => lockStateDir(dir)).toThrow(StateLockedError);
  });

  it.skipIf(!boot)(
    'takes over a lock of an earlier boot, even when its pid is alive now or is its own',
    async () => {
      for (const pid of [process.ppid, process.pid]) {
        const dir = await lockedBy({ pid, boot: earlierBoot });
        const lock = lockStateDir(dir);
        const now = JSON.parse(await readFile(join(dir, 'serve.lock'), 'utf8')) as {
          pid: number;
          boot: string;
        };
        expect(now).toMatchObject({ pid: process.pid, boot });
        lock.release();
        expect(existsSync(join(dir, 'serve.lock'))).toBe(false);
      }
    },
  );

  it('takes over a lock whose process is gone, and records this boot', async () => {
    const { spawnSync } = await import('node:child_process');
    const gone = spawnSync(process.execPath, ['-e', '']).pid;
    const dir = await lockedBy({ pid: gone, ...(boot ? { boot } : {}) });
    const lock = lockStateDir(dir);
    const now = JSON.parse(await readFile(join(dir, 'serve.lock'), 'utf8')) as { pid: number; boot?: string };
    expect(now.pid).toBe(process.pid);
    expect(now.boot).toBe(boot);
    // A second lock in the same process is refused (it is held).
    expect(() => lockStateDir(dir)).toThrow(StateLockedError);
    lock.release();
  });
});
