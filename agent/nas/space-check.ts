import type { NasFileSystem } from './nas-check.ts';
import { NasError } from './nas-error.ts';

/** One file the export will write, with the two sizes known before it starts. */
export interface PlannedFile {
  /** `item-1/web-01-disk-0.vmdk`: where it goes under the transfer folder (before `.age`). */
  readonly path: string;
  /** The disk's capacity: the most its streamOptimized copy can hold. */
  readonly provisionedBytes: number;
  /** What is written in the datastore for it (thin disks: used space), capped by provisioned. */
  readonly estimatedBytes: number;
}

export interface SpaceNeed {
  readonly files: readonly PlannedFile[];
  /** Bytes already on the NAS for this transfer (complete files a rerun keeps). */
  readonly keptBytes: number;
}

/**
 * Bytes on the NAS for `n` bytes of plaintext in age (16 bytes of tag per 64 KiB chunk), and 1 MiB
 * more for the headers, descriptors, `.mf` files, journals and transfer.json.
 */
export const onNasBytes = (n: number): number => n + Math.ceil(n / 65536) * 16 + 1024 * 1024;

/** Below this share of margin over the estimate, free space is called tight. */
const tightMargin = 0.1;

export const formatBytes = (n: number): string => {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
};

export interface SpaceReport {
  readonly provisionedBytes: number;
  readonly estimatedBytes: number;
  /** What the NAS still needs for the estimate: estimate on the NAS less what is kept. */
  readonly neededBytes: number;
  readonly freeBytes: number;
  /** Warnings to show (tight space, a file that may pass the file system's limit). */
  readonly warnings: readonly string[];
}

/**
 * Checks the NAS's file system against the files an export will write, before any byte:
 * refuses (NAS_TOO_SMALL) when the estimate does not fit in the free space, warns when the
 * provisioned size does not or the margin is under 10 %; refuses (NAS_FILE_TOO_LARGE) a file whose
 * estimate passes the file system's largest file (FAT32), warns when only its capacity does; and
 * refuses names that a case-insensitive file system would take for one.
 */
export function checkSpace(fs: NasFileSystem, need: SpaceNeed, where: string): SpaceReport {
  const provisionedBytes = need.files.reduce((s, f) => s + f.provisionedBytes, 0);
  const estimatedBytes = need.files.reduce((s, f) => s + f.estimatedBytes, 0);
  const onNas = (n: number) => Math.max(0, onNasBytes(n) - need.keptBytes);
  const neededBytes = onNas(estimatedBytes);
  const neededProvisioned = onNas(provisionedBytes);
  const sizes = `estimated ${formatBytes(estimatedBytes)} (what the disks hold), provisioned ${formatBytes(provisionedBytes)} (their capacity)${need.keptBytes > 0 ? `, ${formatBytes(need.keptBytes)} of it already on the NAS from an earlier run` : ''}`;
  const warnings: string[] = [];
  if (fs.freeBytes < neededBytes) {
    throw new NasError(
      'NAS_TOO_SMALL',
      `${where} has ${formatBytes(fs.freeBytes)} free, and the items need about ${formatBytes(neededBytes)} more: ${sizes}. Free space on the NAS, use a larger one, or export fewer items; nothing was written.`,
    );
  }
  if (fs.freeBytes < neededProvisioned) {
    warnings.push(
      `space is tight: ${where} has ${formatBytes(fs.freeBytes)} free; the items need about ${formatBytes(neededBytes)} but up to ${formatBytes(neededProvisioned)} if their disks are full (${sizes}).`,
    );
  } else if (fs.freeBytes < neededBytes * (1 + tightMargin)) {
    warnings.push(
      `space is tight: ${where} has ${formatBytes(fs.freeBytes)} free for about ${formatBytes(neededBytes)} (${sizes}).`,
    );
  }
  if (fs.maxFileBytes !== undefined) {
    const max = fs.maxFileBytes;
    const tooLarge = need.files.filter((f) => onNasBytes(f.estimatedBytes) > max);
    if (tooLarge.length > 0) {
      throw new NasError(
        'NAS_FILE_TOO_LARGE',
        `${where} is ${fs.name}, whose files hold at most ${formatBytes(max + 1)} less a byte, and ${tooLarge.map((f) => `${f.path} (about ${formatBytes(f.estimatedBytes)})`).join(', ')} would not fit in one file: reformat the NAS as ext4, XFS or exFAT (or export over NFS); nothing was written.`,
      );
    }
    const mayBe = need.files.filter((f) => onNasBytes(f.provisionedBytes) > max);
    if (mayBe.length > 0)
      warnings.push(
        `${where} is ${fs.name} (at most ${formatBytes(max + 1)} less a byte per file): ${mayBe.map((f) => f.path).join(', ')} could pass that if the disk fills up before export.`,
      );
  }
  if (fs.caseInsensitive) {
    const seen = new Map<string, string>();
    for (const f of need.files) {
      const folded = f.path.toLowerCase();
      const other = seen.get(folded);
      if (other !== undefined && other !== f.path)
        throw new NasError(
          'NAS_NAME_CLASH',
          `${where} is ${fs.name}, which does not tell upper from lower case, and ${other} and ${f.path} would be one file: rename one of the VMs.`,
        );
      seen.set(folded, f.path);
    }
  }
  return { provisionedBytes, estimatedBytes, neededBytes, freeBytes: fs.freeBytes, warnings };
}
