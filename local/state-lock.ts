import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CodedError, errnoOf } from '../core/errors.ts';

/**
 * One writer per state folder: `odt serve` holds `<state>/serve.lock` while it runs. The durable
 * runner and the stores assume they are the only writer of the SQLite file; a second serve on the
 * same folder would resume the same workflows twice.
 *
 * A lock file rather than an advisory lock: Node has no flock(2), and a file names its holder, so
 * the refusal can say which process to stop. The file is written whole under a name of its own and
 * then hard-linked into place (link(2) fails when the name exists), so no serve ever reads a
 * half-written lock; a stale one is taken over by renaming it away first, and only the serve
 * whose rename took the stale file itself goes on. A lock left by a
 * process that no longer exists on this host (kill -9, a crash, a power cut) is taken over, as is
 * one written before this host last booted: after a power cut the pid in it may belong to another
 * process (or to this one: services start in the same order at every boot).
 */
export class StateLockedError extends CodedError<'STATE_LOCKED'> {
  constructor(
    readonly stateDir: string,
    readonly holder: LockHolder,
  ) {
    super(
      'STATE_LOCKED',
      `the state folder ${stateDir} is in use by odt serve pid ${holder.pid}` +
        `${holder.host !== hostname() ? ` on host ${holder.host}` : ''} (since ${holder.since}); ` +
        'stop that one first, or give this one another --state-dir',
    );
    this.name = 'StateLockedError';
  }
}

export interface LockHolder {
  readonly pid: number;
  readonly host: string;
  readonly since: string;
  /** The kernel's id of the boot the holder ran in (Linux); absent in older lock files. */
  readonly boot?: string;
}

/** This boot's id (Linux: /proc/sys/kernel/random/boot_id), or undefined where there is none. */
function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

export interface StateLock {
  readonly file: string;
  /** Removes the lock file if it is still ours. Idempotent. */
  release(): void;
}

/** True unless the process is known to be gone (ESRCH); EPERM means it exists under another user. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoOf(error) !== 'ESRCH';
  }
}

function readHolder(file: string): LockHolder | undefined {
  try {
    const h = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockHolder>;
    if (typeof h.pid === 'number' && typeof h.host === 'string')
      return {
        pid: h.pid,
        host: h.host,
        since: String(h.since ?? 'unknown'),
        ...(typeof h.boot === 'string' ? { boot: h.boot } : {}),
      };
  } catch {
    // Unreadable or half written: nobody can be named, it is treated as stale.
  }
  return undefined;
}

/**
 * Takes the state folder's lock for this process, or throws StateLockedError naming the holder.
 * A holder on another host (a state folder on a network share) is never taken over: its liveness
 * cannot be checked from here.
 */
export function lockStateDir(stateDir: string): StateLock {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const file = join(stateDir, 'serve.lock');
  const boot = bootId();
  const me: LockHolder = {
    pid: process.pid,
    host: hostname(),
    since: new Date().toISOString(),
    ...(boot ? { boot } : {}),
  };
  const mine = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(mine, `${JSON.stringify(me)}\n`, { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        linkSync(mine, file);
      } catch (error) {
        if (errnoOf(error) !== 'EEXIST') throw error;
        const holder = readHolder(file);
        // Written in an earlier boot of this host: whatever has its pid now, it is not the holder.
        const earlierBoot = holder?.host === me.host && !!holder.boot && !!me.boot && holder.boot !== me.boot;
        if (holder && !earlierBoot) {
          if (holder.host !== me.host || (holder.pid !== me.pid && alive(holder.pid)))
            throw new StateLockedError(stateDir, holder);
          if (holder.pid === me.pid) throw new StateLockedError(stateDir, holder);
        }
        // Stale (its process is gone, or its boot is over) or unreadable: take it over.
        takeOver(file, holder);
        continue;
      }
      let released = false;
      return {
        file,
        release() {
          if (released) return;
          released = true;
          if (readHolder(file)?.pid === me.pid) rmSync(file, { force: true });
        },
      };
    }
  } finally {
    rmSync(mine, { force: true });
  }
  throw new StateLockedError(stateDir, readHolder(file) ?? { pid: 0, host: me.host, since: 'unknown' });
}

/**
 * Moves a stale lock out of the way. Two serves may both find the same stale lock: each renames
 * whatever is at the lock's name to a name of its own, and only the one that got the stale file
 * (the holder it judged) drops it; one that got a fresh lock instead (another serve took the stale
 * one over in between) puts it back, and both try again.
 */
function takeOver(file: string, stale: LockHolder | undefined): void {
  const aside = `${file}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    renameSync(file, aside);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return; // another serve moved it: try again
    throw error;
  }
  const got = readHolder(aside);
  const same = stale === undefined ? got === undefined : got !== undefined && sameHolder(got, stale);
  if (!same) {
    try {
      linkSync(aside, file);
    } catch (error) {
      if (errnoOf(error) !== 'EEXIST') throw error;
    }
  }
  rmSync(aside, { force: true });
}

function sameHolder(a: LockHolder, b: LockHolder): boolean {
  return a.pid === b.pid && a.host === b.host && a.since === b.since && a.boot === b.boot;
}
