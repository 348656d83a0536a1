import { errnoOf } from '../core/errors.ts';

/** What to do about the system errors people hit most, keyed by errno code. */
export const systemHints: Record<string, string> = {
  ENOSPC: 'the target file system is full; free space or use a larger NAS, then run the same command again',
  EDQUOT: 'the disk quota is exhausted; raise it, then run the same command again',
  EACCES: 'permission denied; check the folder is writable by this user',
  EROFS: 'the file system is read-only; remount the NAS read-write',
  ENOENT: 'a file or folder does not exist; check the path',
  ENOTDIR:
    'a path that should be a folder is a file; check --nas (the mount point of the NAS), --dir or --state-dir',
  EEXIST:
    'a path that should be a folder is a file; check --nas (the mount point of the NAS), --dir or --state-dir',
  ECONNREFUSED: 'nothing listens there; check the URL and that the service runs',
};

/** The error's message, with what to do when it is a known system error. */
export function withHint(error: Error): string {
  const code = errnoOf(error);
  const hint = code === undefined ? undefined : systemHints[code];
  return hint ? `${error.message} (${hint})` : error.message;
}
