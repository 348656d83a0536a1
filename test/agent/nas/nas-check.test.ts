// Issue #19, "The NAS must be the NAS" and "Before any byte": what a folder must be before an
// export writes to it, read without writing anything.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkExportNas,
  checkWritable,
  fileSystemOf,
  inspectNas,
  isMountPoint,
  type NasFileSystem,
} from '../../../agent/nas/nas-check.ts';
import { nasMarkerFile, readNasMarker, writeNasMarker } from '../../../agent/nas/nas-marker.ts';
import { checkSpace, type PlannedFile } from '../../../agent/nas/space-check.ts';

const sh = promisify(execFile);
const MiB = 2 ** 20;
const GiB = 2 ** 30;

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'odt-nas-'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** A tmpfs of `size` mounted at a fresh folder under `work` (tests run as root, as CI does). */
async function tmpfs(name: string, options: string): Promise<{ dir: string; umount: () => Promise<void> }> {
  const dir = join(work, name);
  await mkdir(dir);
  await sh('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
  return { dir, umount: () => sh('umount', [dir]).then(() => undefined) };
}

describe('a folder refused as the NAS', () => {
  it('that does not exist: NAS_MISSING, and nothing is created', async () => {
    const missing = join(work, 'no-such-nas');
    await expect(checkExportNas(missing)).rejects.toMatchObject({
      code: 'NAS_MISSING',
      message: expect.stringContaining('mount the NAS there'),
    });
    expect(await readdir(work)).not.toContain('no-such-nas');
  });

  it('that is a file: NAS_NOT_A_FOLDER', async () => {
    const file = join(work, 'a-file');
    await writeFile(file, 'x');
    await expect(checkExportNas(file)).rejects.toMatchObject({ code: 'NAS_NOT_A_FOLDER' });
  });

  it('that is a plain folder without the marker: NAS_NOT_INITIALIZED, saying it is not a mount point', async () => {
    const plain = join(work, 'plain');
    await mkdir(plain);
    const refused = checkExportNas(plain);
    await expect(refused).rejects.toMatchObject({ code: 'NAS_NOT_INITIALIZED' });
    await expect(refused).rejects.toThrow(/not a mount point .*is the NAS mounted\?/);
    await expect(refused).rejects.toThrow(/odt nas init .* --name <label>.*--nas-plain-folder/);
    // …and with the lab flag, it is accepted as it is.
    const lab = await checkExportNas(plain, { plainFolder: true });
    expect(lab.marker).toBeUndefined();
    expect(lab.mountPoint).toBe(false);
  });

  it('that is a mount point without the marker: NAS_NOT_INITIALIZED, saying what is mounted', async () => {
    const m = await tmpfs('unmarked', 'size=1m');
    try {
      expect(await isMountPoint(m.dir)).toBe(true);
      await expect(checkExportNas(m.dir)).rejects.toThrow(/a file system is mounted there \(tmpfs\)/);
    } finally {
      await m.umount();
    }
  });

  it('a bind mount of a folder of the same device is a mount point too (mountinfo), even with a space in its path', async () => {
    const source = join(work, 'bind source');
    const target = join(work, 'bind target');
    await mkdir(source);
    await mkdir(target);
    expect(await isMountPoint(target)).toBe(false);
    await sh('mount', ['--bind', source, target]);
    try {
      // Same st_dev as its parent: only /proc/self/mountinfo (which escapes the space) tells.
      expect(await isMountPoint(target)).toBe(true);
    } finally {
      await sh('umount', [target]);
    }
  });

  it('on a read-only file system: NAS_READ_ONLY names EROFS (not ENOENT)', async () => {
    const m = await tmpfs('ro', 'size=1m');
    try {
      await writeNasMarker(m.dir, { name: 'ro-nas', plainFolder: false });
      await sh('mount', ['-o', 'remount,ro', m.dir]);
      const refused = checkExportNas(m.dir);
      await expect(refused).rejects.toMatchObject({ code: 'NAS_READ_ONLY' });
      await expect(refused).rejects.toThrow(/read-only file system \(EROFS\): remount the NAS read-write/);
    } finally {
      await m.umount();
    }
  });

  it('that this user may not write: NAS_NOT_WRITABLE names the permission problem', async () => {
    // Root passes access(2) everywhere: the check is made as `nobody`, in a process of its own.
    const locked = join(work, 'locked');
    await mkdir(locked, { mode: 0o755 });
    const script = `import('${join(import.meta.dirname, '../../../agent/nas/nas-check.ts')}').then((m) => m.checkWritable(${JSON.stringify(locked)})).then(() => console.log('writable'), (e) => console.log(e.code, e.message))`;
    const tsx = join(import.meta.dirname, '../../../node_modules/tsx/dist/cli.mjs');
    const { stdout } = await sh('setpriv', [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      process.execPath,
      tsx,
      '--eval',
      script,
    ]);
    expect(stdout).toMatch(/^NAS_NOT_WRITABLE .*permission denied.*\(EACCES\)/);
    // As root the same folder is writable: the refusal is about the user, not the folder.
    await expect(checkWritable(locked)).resolves.toBeUndefined();
  });
});

describe('a NAS that odt nas init marked', () => {
  it('is accepted, and names itself: the marker has name, id and created-at at the NAS root', async () => {
    const m = await tmpfs('marked', 'size=2m');
    try {
      const marker = await writeNasMarker(m.dir, { name: 'acme-box-1', plainFolder: false });
      expect(marker).toMatchObject({
        format: 'sneakernet-nas/1',
        name: 'acme-box-1',
        id: expect.stringMatching(/^nas-[0-9a-f-]{36}$/),
        createdAt: expect.any(String),
      });
      expect(await readdir(m.dir)).toEqual([nasMarkerFile]);
      const nas = await checkExportNas(m.dir);
      expect(nas.marker).toEqual(marker);
      expect(nas.mountPoint).toBe(true);
      expect(nas.fs.name).toBe('tmpfs');
      expect(nas.fs.freeBytes).toBeGreaterThan(MiB);
      expect(nas.fs.freeBytes).toBeLessThanOrEqual(2 * MiB);
    } finally {
      await m.umount();
    }
  });

  it('a marker that is not one is refused, not ignored', async () => {
    const dir = join(work, 'bad-marker');
    await mkdir(dir);
    await writeFile(join(dir, nasMarkerFile), '{"format":"something-else"}');
    await expect(readNasMarker(dir)).rejects.toMatchObject({ code: 'NAS_MARKER_INVALID' });
    await expect(inspectNas(dir)).rejects.toMatchObject({ code: 'NAS_MARKER_INVALID' });
  });
});

describe('the file system against the files, before any byte', () => {
  const fs = (over: Partial<NasFileSystem>): NasFileSystem => ({
    type: 0xef53,
    ...fileSystemOf(0xef53),
    freeBytes: 100 * GiB,
    totalBytes: 200 * GiB,
    ...over,
  });
  const disk = (path: string, provisioned: number, estimated = provisioned): PlannedFile => ({
    path,
    provisionedBytes: provisioned,
    estimatedBytes: estimated,
  });

  it('statfs types: FAT has a 4 GiB file limit and ignores case; ext4 neither', () => {
    expect(fileSystemOf(0x4d44)).toEqual({
      name: 'vfat (FAT32)',
      maxFileBytes: 2 ** 32 - 1,
      caseInsensitive: true,
    });
    expect(fileSystemOf(0x2011bab0)).toMatchObject({ name: 'exfat', caseInsensitive: true });
    expect(fileSystemOf(0xef53)).toEqual({ name: 'ext4/ext3/ext2', caseInsensitive: false });
    expect(fileSystemOf(0x1234).name).toBe('0x1234');
  });

  it('refuses when the estimate does not fit, saying both sizes and the free space', () => {
    expect(() =>
      checkSpace(
        fs({ freeBytes: 10 * GiB }),
        { files: [disk('item-1/a-disk-0.vmdk', 40 * GiB, 20 * GiB)], keptBytes: 0 },
        'NAS x',
      ),
    ).toThrow(
      expect.objectContaining({
        code: 'NAS_TOO_SMALL',
        message: expect.stringMatching(
          /NAS x has 10\.0 GiB free.*about 20\.0 GiB more: estimated 20\.0 GiB .*provisioned 40\.0 GiB/,
        ),
      }),
    );
  });

  it('warns when the estimate fits but the provisioned size does not', () => {
    const r = checkSpace(
      fs({ freeBytes: 30 * GiB }),
      { files: [disk('item-1/a-disk-0.vmdk', 40 * GiB, 20 * GiB)], keptBytes: 0 },
      'NAS x',
    );
    expect(r.warnings).toEqual([
      expect.stringMatching(/^space is tight: .*up to 40\.0 GiB if their disks are full/),
    ]);
    expect(r).toMatchObject({ estimatedBytes: 20 * GiB, provisionedBytes: 40 * GiB, freeBytes: 30 * GiB });
  });

  it('says nothing when there is room; counts what an earlier run kept', () => {
    expect(
      checkSpace(fs({}), { files: [disk('item-1/a-disk-0.vmdk', 40 * GiB)], keptBytes: 0 }, 'NAS x').warnings,
    ).toEqual([]);
    // 20 GiB needed, 15 of it already on the NAS: 6 GiB free is enough.
    const resumed = checkSpace(
      fs({ freeBytes: 6 * GiB }),
      { files: [disk('item-1/a-disk-0.vmdk', 20 * GiB)], keptBytes: 15 * GiB },
      'NAS x',
    );
    expect(resumed.neededBytes).toBeLessThan(6 * GiB);
  });

  it('refuses a file past FAT32 4 GiB, warns when only its capacity is', () => {
    const fat = fs({ type: 0x4d44, ...fileSystemOf(0x4d44) });
    expect(() =>
      checkSpace(fat, { files: [disk('item-1/a-disk-0.vmdk', 8 * GiB, 5 * GiB)], keptBytes: 0 }, 'NAS x'),
    ).toThrow(
      expect.objectContaining({
        code: 'NAS_FILE_TOO_LARGE',
        message: expect.stringContaining('item-1/a-disk-0.vmdk (about 5.0 GiB)'),
      }),
    );
    const r = checkSpace(
      fat,
      { files: [disk('item-1/a-disk-0.vmdk', 8 * GiB, 1 * GiB)], keptBytes: 0 },
      'NAS x',
    );
    expect(r.warnings).toEqual([expect.stringContaining('vfat (FAT32)')]);
    // The same disk on ext4: no limit, no warning.
    expect(
      checkSpace(fs({}), { files: [disk('item-1/a-disk-0.vmdk', 8 * GiB, 5 * GiB)], keptBytes: 0 }, 'NAS x')
        .warnings,
    ).toEqual([]);
  });

  it('refuses two names that a case-insensitive file system takes for one', () => {
    const fat = fs({ type: 0x4d44, ...fileSystemOf(0x4d44) });
    const files = [disk('item-1/Web-disk-0.vmdk', MiB), disk('item-1/web-disk-0.vmdk', MiB)];
    expect(() => checkSpace(fat, { files, keptBytes: 0 }, 'NAS x')).toThrow(
      expect.objectContaining({ code: 'NAS_NAME_CLASH' }),
    );
    expect(checkSpace(fs({}), { files, keptBytes: 0 }, 'NAS x').warnings).toEqual([]);
  });
});
