import { randomUUID } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { NasError } from './nas-error.ts';

/** The marker's file name, at the root of the NAS (the folder given as `--nas`). */
export const nasMarkerFile = '.sneakernet-nas.json';
export const nasMarkerFormat = 'sneakernet-nas/1';

const markerSchema = z.object({
  format: z.literal(nasMarkerFormat),
  /** What people call this NAS (a label on the box, an asset tag). */
  name: z.string().min(1).max(64),
  /** Made by `odt nas init`: tells one NAS from another even when two share a name. */
  id: z.string().regex(/^nas-[0-9a-f-]{36}$/),
  createdAt: z.iso.datetime(),
  /** Written on a folder that was not a mount point (`--plain-folder`): a lab or the sandbox. */
  plainFolder: z.boolean().optional(),
});
export type NasMarker = z.infer<typeof markerSchema>;

/** A NAS name: printable, no path separators, short enough for a label and a log line. */
export const nasNameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]*$/, 'letters, digits, space, dot, dash, underscore');

/** How a NAS is named in messages: `NAS 'name' (nas-…)`. */
export const describeMarker = (m: NasMarker): string => `NAS '${m.name}' (${m.id})`;

/**
 * The marker of the NAS at `dir`, or undefined when there is none. A marker that is there but not
 * one (another program's file, a damaged write) is refused rather than ignored.
 */
export async function readNasMarker(dir: string): Promise<NasMarker | undefined> {
  const path = join(dir, nasMarkerFile);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const parsed = markerSchema.safeParse(json);
  if (!parsed.success) {
    throw new NasError(
      'NAS_MARKER_INVALID',
      `${path} is not a NAS marker of this odt (want format ${nasMarkerFormat}); move it away and run \`odt nas init ${dir}\` again.`,
    );
  }
  return parsed.data;
}

/** Writes a new marker (atomically: `.partial`, then rename) and returns it. */
export async function writeNasMarker(
  dir: string,
  options: { name: string; plainFolder: boolean; now?: Date },
): Promise<NasMarker> {
  const marker: NasMarker = {
    format: nasMarkerFormat,
    name: options.name,
    id: `nas-${randomUUID()}`,
    createdAt: (options.now ?? new Date()).toISOString(),
    ...(options.plainFolder ? { plainFolder: true } : {}),
  };
  const path = join(dir, nasMarkerFile);
  await writeFile(`${path}.partial`, `${JSON.stringify(marker, null, 2)}\n`);
  await rename(`${path}.partial`, path);
  return marker;
}
