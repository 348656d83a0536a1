import { readdir } from 'node:fs/promises';
import type { Command } from 'commander';
import { checkWritable, describeNas, inspectNas, type NasInfo } from '../../agent/nas/nas-check.ts';
import { NasError } from '../../agent/nas/nas-error.ts';
import { describeMarker, nasMarkerFile, nasNameSchema, writeNasMarker } from '../../agent/nas/nas-marker.ts';
import { formatBytes } from '../../agent/nas/space-check.ts';
import { parseOrThrow } from '../../core/index.ts';
import type { Io } from '../io.ts';

/** One line on the NAS's file system: `ext4, 1.2 GiB free of 2.0 GiB, a mount point`. */
export const nasFsLine = (nas: NasInfo): string =>
  `${nas.fs.name}, ${formatBytes(nas.fs.freeBytes)} free of ${formatBytes(nas.fs.totalBytes)}, ${nas.mountPoint ? 'a mount point' : 'not a mount point'}${nas.fs.maxFileBytes !== undefined ? `, files up to ${formatBytes(nas.fs.maxFileBytes + 1)} less a byte` : ''}${nas.fs.caseInsensitive ? ', names not case-sensitive' : ''}`;

/** `odt nas init` and `odt nas show`: mark a NAS once, so that exports know it and the ODT node can name it. */
export function registerNas(program: Command, io: Io): void {
  const nas = program.command('nas').description('the NAS: mark a new one, show which one is mounted');

  nas
    .command('init <dir>')
    .description(
      `mark the NAS mounted at <dir> (writes ${nasMarkerFile}: name, id, created-at); odt export writes only to a marked NAS`,
    )
    .option('--name <label>', 'what people call this NAS (the label on the box)')
    .option(
      '--plain-folder',
      'mark a folder where nothing is mounted (labs, the sandbox): by default <dir> must be a mount point',
    )
    .option('--json', 'the marker and the file system as JSON')
    .action(async (dir: string, o: { name?: string; plainFolder?: boolean; json?: boolean }) => {
      const name = o.name === undefined ? undefined : parseOrThrow(nasNameSchema, o.name, '--name');
      const info = await inspectNas(dir, 'the folder');
      if (info.marker) {
        io.err.write(
          `odt: kept the existing marker: ${describeMarker(info.marker)}, made ${info.marker.createdAt}${name && name !== info.marker.name ? ` (not renamed to '${name}': a NAS keeps its id and name)` : ''}\n`,
        );
        write(io, info, o.json);
        return;
      }
      if (!info.mountPoint && !o.plainFolder) {
        throw new NasError(
          'NAS_NOT_MOUNTED',
          `${dir} is not a mount point (it is on the file system of its parent folder): mount the NAS there first, then run odt nas init again; to mark a plain folder (labs), add --plain-folder.`,
        );
      }
      await checkWritable(info.path, 'the folder');
      const marker = await writeNasMarker(info.path, {
        name: name ?? `nas-${new Date().toISOString().slice(0, 10)}`,
        plainFolder: !info.mountPoint,
      });
      write(io, { ...info, marker }, o.json);
    });

  nas
    .command('show <dir>')
    .description('which NAS is mounted at <dir>: its marker, file system, free space and transfers')
    .option('--json', 'as JSON')
    .action(async (dir: string, o: { json?: boolean }) => {
      const info = await inspectNas(dir, 'the folder');
      write(io, info, o.json, await transfersOn(info.path));
    });
}

async function transfersOn(dir: string): Promise<string[]> {
  return (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isDirectory() && e.name.startsWith('tr-'))
    .map((e) => e.name)
    .sort();
}

function write(io: Io, info: NasInfo, json: boolean | undefined, transfers?: readonly string[]): void {
  if (json) {
    io.out.write(
      `${JSON.stringify({ path: info.path, marker: info.marker ?? null, mountPoint: info.mountPoint, fs: info.fs, ...(transfers ? { transfers } : {}) }, null, 2)}\n`,
    );
    return;
  }
  io.out.write(`${describeNas(info)}\n`);
  io.out.write(`  ${nasFsLine(info)}\n`);
  if (transfers) io.out.write(`  transfers: ${transfers.length > 0 ? transfers.join(', ') : 'none'}\n`);
}
