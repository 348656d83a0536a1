import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Every file under the `folders` of `root` that holds an age identity (`AGE-SECRET-KEY-1…`), in
 * whatever name or format: what a machine "still holds" to decrypt with (issue #18).
 */
export async function identityFiles(root: string, folders: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  for (const folder of folders) {
    const entries = await readdir(join(root, folder), { recursive: true, withFileTypes: true }).catch(
      () => [],
    );
    for (const e of entries) {
      if (!e.isFile()) continue;
      const path = join(e.parentPath, e.name);
      if ((await readFile(path)).includes('AGE-SECRET-KEY-1')) found.push(path);
    }
  }
  return found;
}
