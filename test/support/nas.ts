import { mkdir } from 'node:fs/promises';
import { type NasMarker, readNasMarker, writeNasMarker } from '../../agent/nas/nas-marker.ts';

/**
 * Makes `dir` a NAS as `odt nas init --plain-folder` does (the folder, then the marker; an existing
 * marker is kept), so that tests of agents export to it as to a marked NAS.
 */
export async function markNas(dir: string, name = 'test-nas'): Promise<NasMarker> {
  await mkdir(dir, { recursive: true });
  return (await readNasMarker(dir)) ?? (await writeNasMarker(dir, { name, plainFolder: true }));
}
