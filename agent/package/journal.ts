import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errnoOf } from '../../core/errors.ts';
import { fileRecordSchema, type ManifestFile } from './transfer-manifest.ts';

/**
 * Per item, the files already complete on the NAS with their hashes, so that a second run after a
 * crash keeps them and re-sends only the rest. Written atomically after each completed file; an
 * entry whose file is missing or has another size, or that is not a valid record, is dropped on load.
 */
export class ItemJournal {
  private constructor(
    private readonly path: string,
    private readonly entries: Map<string, ManifestFile>,
  ) {}

  static async open(root: string, itemId: string): Promise<ItemJournal> {
    const path = join(root, itemId, '.journal.json');
    const entries = new Map<string, ManifestFile>();
    try {
      const saved = JSON.parse(await readFile(path, 'utf8')) as { files?: unknown[] };
      for (const entry of saved.files ?? []) {
        // An entry of another format (an older odt's) is dropped: its file is exported again.
        const parsed = fileRecordSchema.safeParse(entry);
        if (!parsed.success) continue;
        const f = parsed.data;
        const st = await stat(join(root, f.path)).catch(() => undefined);
        if (st?.isFile() && st.size === f.encryptedSize) entries.set(f.name, f);
      }
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') throw error;
    }
    await mkdir(dirname(path), { recursive: true });
    return new ItemJournal(path, entries);
  }

  get(name: string): ManifestFile | undefined {
    return this.entries.get(name);
  }

  get files(): ManifestFile[] {
    return [...this.entries.values()];
  }

  private writes: Promise<void> = Promise.resolve();

  /** Records a complete file; concurrent calls (parallel disks) are written one after another. */
  record(file: ManifestFile): Promise<void> {
    this.entries.set(file.name, file);
    const write = async () => {
      const tmp = `${this.path}.partial`;
      await writeFile(tmp, `${JSON.stringify({ files: this.files }, null, 2)}\n`);
      await rename(tmp, this.path);
    };
    this.writes = this.writes.then(write, write);
    return this.writes;
  }
}
