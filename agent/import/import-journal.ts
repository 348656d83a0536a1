import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
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
 * vCloud Director): a rerun skips them. A VM that exists in vCenter without a record here is a
 * half-import from a crash and is removed before the item is imported again.
 */
export class ImportJournal {
  private writes: Promise<void> = Promise.resolve();

  private constructor(
    private readonly path: string,
    private readonly records: Map<string, ImportRecord>,
  ) {}

  static async open(stateDir: string, transferId: string): Promise<ImportJournal> {
    const dir = join(stateDir, 'imports');
    await mkdir(dir, { recursive: true });
    const path = join(dir, `${transferId}.json`);
    const records = new Map<string, ImportRecord>();
    try {
      for (const r of JSON.parse(await readFile(path, 'utf8')) as ImportRecord[]) records.set(r.itemId, r);
    } catch (error) {
      if ((error as { code?: string }).code !== 'ENOENT') throw error;
    }
    return new ImportJournal(path, records);
  }

  get(itemId: string): ImportRecord | undefined {
    return this.records.get(itemId);
  }

  record(r: ImportRecord): Promise<void> {
    this.records.set(r.itemId, r);
    const write = async () => {
      await writeFile(`${this.path}.partial`, `${JSON.stringify([...this.records.values()], null, 2)}\n`);
      await rename(`${this.path}.partial`, this.path);
    };
    this.writes = this.writes.then(write, write);
    return this.writes;
  }
}
