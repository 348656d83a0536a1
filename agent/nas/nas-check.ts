import { constants } from 'node:fs';
import { access, readFile, realpath, stat, statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { NasError } from './nas-error.ts';
import { describeMarker, type NasMarker, nasMarkerFile, readNasMarker } from './nas-marker.ts';

/** What the NAS's file system allows, read from statfs (f_type) before any byte is written. */
export interface NasFileSystem {
  /** statfs f_type, e.g. 0x4d44 for FAT (vfat). */
  readonly type: number;
  /** A name for people: `vfat (FAT32)`, `ext4/ext3/ext2`, `nfs`, … or `0x…` when unknown. */
  readonly name: string;
  /** Bytes this user may still write (f_bavail × f_bsize). */
  readonly freeBytes: number;
  readonly totalBytes: number;
  /** The largest file it holds, when it has a limit below what a disk can be (FAT: 4 GiB - 1). */
  readonly maxFileBytes?: number;
  /** Names that differ only in case are the same file (FAT, exFAT, SMB). */
  readonly caseInsensitive: boolean;
}

/** What a file system type is (Linux magic numbers of statfs f_type, from linux/magic.h). */
export function fileSystemOf(type: number): Pick<NasFileSystem, 'name' | 'maxFileBytes' | 'caseInsensitive'> {
  switch (type) {
    case 0x4d44:
      // vfat/msdos: FAT32 stores a file's size in 32 bits.
      return { name: 'vfat (FAT32)', maxFileBytes: 2 ** 32 - 1, caseInsensitive: true };
    case 0x2011bab0:
      return { name: 'exfat', caseInsensitive: true };
    case 0xff534d42:
      return { name: 'cifs (SMB)', caseInsensitive: true };
    case 0xfe534d42:
      return { name: 'smb2', caseInsensitive: true };
    case 0x5346544e:
      return { name: 'ntfs', caseInsensitive: true };
    case 0x7366746e:
      return { name: 'ntfs3', caseInsensitive: true };
    case 0x6969:
      return { name: 'nfs', caseInsensitive: false };
    case 0xef53:
      return { name: 'ext4/ext3/ext2', caseInsensitive: false };
    case 0x58465342:
      return { name: 'xfs', caseInsensitive: false };
    case 0x9123683e:
      return { name: 'btrfs', caseInsensitive: false };
    case 0x2fc12fc1:
      return { name: 'zfs', caseInsensitive: false };
    case 0x01021994:
      return { name: 'tmpfs', caseInsensitive: false };
    case 0x794c7630:
      return { name: 'overlay', caseInsensitive: false };
    case 0x65735546:
      // FUSE: the file system behind it is not known here (ntfs-3g, sshfs, …).
      return { name: 'fuse', caseInsensitive: false };
    default:
      return { name: `0x${type.toString(16)}`, caseInsensitive: false };
  }
}

export interface NasInfo {
  /** The folder given as `--nas`, resolved (symbolic links followed). */
  readonly path: string;
  /** The NAS marker at its root (`odt nas init`), when it has one. */
  readonly marker?: NasMarker;
  /** Another file system is mounted at `path` (not the one of its parent folder). */
  readonly mountPoint: boolean;
  readonly fs: NasFileSystem;
}

/** `NAS 'name' (nas-…) at /mnt/nas`, or `the plain folder /tmp/x` when it carries no marker. */
export const describeNas = (nas: NasInfo): string =>
  nas.marker
    ? `${describeMarker(nas.marker)} at ${nas.path}`
    : `the plain folder ${nas.path} (no NAS marker)`;

/** Mount points of this process's mount namespace (/proc/self/mountinfo), unescaped. */
async function mountPoints(): Promise<ReadonlySet<string>> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  return new Set(
    text
      .split('\n')
      .map((line) => line.split(' ')[4])
      .filter((p): p is string => p !== undefined)
      // The kernel escapes space, tab, newline and backslash as \ooo.
      .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)))),
  );
}

/**
 * Whether a file system is mounted at `dir`: its device differs from its parent's (or it is `/`),
 * or mountinfo lists it (a bind mount of a folder of the same device).
 */
export async function isMountPoint(dir: string): Promise<boolean> {
  const real = await realpath(dir);
  if (real === '/') return true;
  const [self, parent] = await Promise.all([stat(real), stat(dirname(real))]);
  if (self.dev !== parent.dev) return true;
  return (await mountPoints()).has(real);
}

const errnoOf = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | undefined)?.code;

/**
 * Reads what can be known of `dir` as a NAS without writing anything: it must exist and be a
 * folder; its marker, whether it is a mount point, and its file system's type and free space.
 */
export async function inspectNas(dir: string, flag = '--nas'): Promise<NasInfo> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(dir);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT')
      throw new NasError(
        'NAS_MISSING',
        `${flag} ${dir} does not exist: mount the NAS there (or give the folder where it is mounted); nothing was created.`,
        { cause: error },
      );
    if (errnoOf(error) === 'EACCES' || errnoOf(error) === 'EPERM')
      throw notWritable(dir, flag, error, 'reach');
    throw error;
  }
  if (!info.isDirectory())
    throw new NasError(
      'NAS_NOT_A_FOLDER',
      `${flag} ${dir} is a file, not a folder: give the NAS's mount point.`,
    );
  const path = await realpath(dir);
  const [marker, mountPoint, fsInfo] = await Promise.all([
    readNasMarker(path).catch((error: unknown) => {
      if (errnoOf(error) === 'EACCES' || errnoOf(error) === 'EPERM')
        throw notWritable(dir, flag, error, 'read');
      throw error;
    }),
    isMountPoint(path),
    statfs(path),
  ]);
  const type = Number(fsInfo.type);
  return {
    path,
    ...(marker ? { marker } : {}),
    mountPoint,
    fs: {
      type,
      ...fileSystemOf(type),
      freeBytes: Number(fsInfo.bavail) * Number(fsInfo.bsize),
      totalBytes: Number(fsInfo.blocks) * Number(fsInfo.bsize),
    },
  };
}

const notWritable = (dir: string, flag: string, cause: unknown, what: 'write' | 'read' | 'reach') =>
  new NasError(
    'NAS_NOT_WRITABLE',
    `${flag} ${dir}: permission denied, this user (uid ${process.getuid?.() ?? '?'}) may not ${what} it (${errnoOf(cause)}): run odt as the user who owns the NAS's files, or give that user write access (for NFS, check the export's squash options).`,
    { cause },
  );

/** Refuses a folder that cannot take a byte: read-only (EROFS) or not this user's to write (EACCES). */
export async function checkWritable(dir: string, flag = '--nas'): Promise<void> {
  try {
    // access(2) answers EROFS for a read-only mount and EACCES for permissions, without writing.
    await access(dir, constants.W_OK | constants.X_OK);
  } catch (error) {
    if (errnoOf(error) === 'EROFS')
      throw new NasError(
        'NAS_READ_ONLY',
        `${flag} ${dir} is on a read-only file system (EROFS): remount the NAS read-write (e.g. \`mount -o remount,rw ${dir}\`), or check the NFS export is rw.`,
        { cause: error },
      );
    if (errnoOf(error) === 'EACCES' || errnoOf(error) === 'EPERM')
      throw notWritable(dir, flag, error, 'write');
    throw error;
  }
}

export interface NasRequirement {
  /**
   * Accept a folder without the NAS marker (`--nas-plain-folder`): labs, tests, a disk of this
   * machine. Default false: only a NAS that `odt nas init` marked.
   */
  readonly plainFolder?: boolean;
  /** The flag that named the folder, for messages. Default `--nas`. */
  readonly flag?: string;
  /** The flag that allows a plain folder, for messages. Default `--nas-plain-folder`. */
  readonly plainFolderFlag?: string;
}

/**
 * The NAS an export may write to, checked without writing anything: it exists, is a folder,
 * carries the marker of `odt nas init` (unless `plainFolder`), and is writable by this user.
 */
export async function checkExportNas(dir: string, req: NasRequirement = {}): Promise<NasInfo> {
  const flag = req.flag ?? '--nas';
  const nas = await inspectNas(dir, flag);
  if (!nas.marker && !req.plainFolder) {
    const where = nas.mountPoint
      ? `a file system is mounted there (${nas.fs.name}), but it carries no NAS marker (${nasMarkerFile})`
      : `it is not a mount point (the same file system as ${dirname(nas.path)}: is the NAS mounted?) and carries no NAS marker (${nasMarkerFile})`;
    throw new NasError(
      'NAS_NOT_INITIALIZED',
      `${flag} ${dir} is not a NAS that odt knows: ${where}. Mount the NAS there; on a new NAS run \`odt nas init ${dir} --name <label>\` once; for a plain folder (labs) add ${req.plainFolderFlag ?? '--nas-plain-folder'}.`,
    );
  }
  await checkWritable(nas.path, flag);
  return nas;
}
