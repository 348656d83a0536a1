import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoOf } from '../../core/errors.ts';
import type { Moref } from '../vsphere/wire/serialize.ts';

export interface ImportRecord {
  readonly itemId: string;
  /** Name given to the VM (or vApp) in vCenter. */
  readonly name: string;
  /** The VM (for a vApp: its first member). */
  readonly entity: Moref;
  /** For a vApp: every member VM, in descriptor order. */
  readonly members?: readonly { readonly name: string; readonly vmName: string; readonly entity: Moref }[];
  readonly importedAt: string;
  /** Set once vCloud Director took the VM, with what it became. */
  readonly onboarded?: {
    /** The vApp's (or catalog template's, and its vApp's) name in vCloud Director. */
    readonly name?: string;
    readonly vappHref?: string;
    readonly vmHref?: string;
    readonly templateHref?: string;
    /** A template's vApp: deployed (a rerun then has nothing left to do unless it must power on). */
    readonly deployed?: boolean;
    readonly poweredOn?: boolean;
  };
}

/**
 * On the ODT node, the items of a transfer already imported into vCenter (and onboarded into
 * vCloud Director): a rerun skips them. Also the VM names whose import began and was not
 * recorded: a VM of such a name that a rerun finds was left by a crash here, even before the
 * import lease handed it over and it could be marked (import-mark.ts), and is removed.
 */
export class ImportJournal {
  private writes: Promise<void> = Promise.resolve();

  private constructor(
    private readonly path: string,
    private readonly records: Map<string, ImportRecord>,
    private readonly begun: Map<string, readonly string[]>,
  ) {}

  static async open(stateDir: string, transferId: string): Promise<ImportJournal> {
    const dir = join(stateDir, 'imports');
    await mkdir(dir, { recursive: true }).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOTDIR' && error.code !== 'EEXIST') throw error;
      throw Object.assign(
        new Error(
          `${stateDir} is not a folder (a file is in the way of ${dir}): the ODT node keeps its journal of imports in its state folder (--state-dir); give a folder.`,
          { cause: error },
        ),
        { code: 'STATE_DIR_NOT_A_FOLDER' },
      );
    });
    const path = join(dir, `${transferId}.json`);
    const records = new Map<string, ImportRecord>();
    const begun = new Map<string, readonly string[]>();
    try {
      const saved = JSON.parse(await readFile(path, 'utf8')) as
        | ImportRecord[]
        | { imported: ImportRecord[]; begun?: Record<string, string[]> };
      // An array: a journal written before it kept the imports begun.
      for (const r of Array.isArray(saved) ? saved : saved.imported) records.set(r.itemId, r);
      if (!Array.isArray(saved))
        for (const [id, names] of Object.entries(saved.begun ?? {})) begun.set(id, names);
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') throw error;
    }
    return new ImportJournal(path, records, begun);
  }

  get(itemId: string): ImportRecord | undefined {
    return this.records.get(itemId);
  }

  /** The VM names of an item whose import began here and was not recorded. */
  begunNames(itemId: string): readonly string[] {
    return this.begun.get(itemId) ?? [];
  }

  /** Notes, before the first call that creates a VM, the names the item's VMs get. */
  begin(itemId: string, names: readonly string[]): Promise<void> {
    this.begun.set(itemId, names);
    return this.write();
  }

  record(r: ImportRecord): Promise<void> {
    this.records.set(r.itemId, r);
    this.begun.delete(r.itemId);
    return this.write();
  }

  private write(): Promise<void> {
    const write = async () => {
      const saved = { imported: [...this.records.values()], begun: Object.fromEntries(this.begun) };
      await writeFile(`${this.path}.partial`, `${JSON.stringify(saved, null, 2)}\n`);
      await rename(`${this.path}.partial`, this.path);
    };
    this.writes = this.writes.then(write, write);
    return this.writes;
  }
}
