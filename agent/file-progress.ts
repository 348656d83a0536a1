import type { ManifestItem } from './package/transfer-manifest.ts';

/** Progress of one file of one item, as export and import report it (and `--json` prints it). */
export interface FileProgress {
  readonly item: string;
  readonly file: string;
  readonly bytes: number;
  readonly total?: number;
  readonly done?: boolean;
  /** Complete from an earlier run: kept, not sent again. */
  readonly skipped?: boolean;
}

/** The whole transfer at one moment: what the overall line (terminal, `--json`, agent logs) shows. */
export interface OverallProgress {
  /** Bytes done over every file seen, kept files included. */
  readonly bytesDone: number;
  /**
   * Bytes of the whole transfer: the planned total when one was given (`plan`), else the sum of the
   * files seen so far when each has a size; absent when one does not (a stream of unknown length).
   */
  readonly bytesTotal?: number;
  /** Whether bytesTotal is the whole transfer (planned), not only the files seen so far. */
  readonly planned: boolean;
  /**
   * Whether part of a planned bytesTotal is an estimate: files not started yet, or of unknown
   * length, counted at their planned size (an export's disks: what they take in the datastore).
   */
  readonly estimated?: boolean;
  /** Rate of the bytes moved (not of kept files) over the last `windowMs`. */
  readonly bytesPerSecond: number;
  /** Seconds left at that rate, when the total is known and something moves. */
  readonly etaSeconds?: number;
  readonly files: number;
  readonly filesDone: number;
}

/**
 * Sums the progress of every file of a transfer into one line: bytes done of the total, the rate
 * over a sliding window (so a stall shows as a falling rate, not a long average), and the time
 * left. Fed from the same events as the per-file bars; sampling is the caller's (STYLE.md 9).
 * Defaults: `now` Date.now, `windowMs` 10 s.
 */
export class TransferProgress {
  readonly #files = new Map<string, { bytes: number; total?: number; done: boolean; kept: boolean }>();
  #planned: number | undefined;
  /** Files expected before they start, by key, with their estimated size (`planFiles`). */
  readonly #expected = new Map<string, number>();
  /** [time, moved bytes] samples, oldest first, for the windowed rate. */
  #samples: [number, number][] = [];
  #moved = 0;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly windowMs = 10_000,
  ) {}

  /** The whole transfer's size, when known before its files start (a signed manifest's sizes). */
  plan(totalBytes: number): void {
    this.#planned = totalBytes;
  }

  /**
   * The files the transfer will move, known before the first byte with an estimate of their size
   * (an export's disks, from the datastore): the total is then the whole transfer from the start,
   * each file counted at its estimate until its own length (or its end) is known. Keys as `note`'s.
   */
  planFiles(files: Iterable<{ readonly key: string; readonly bytes: number }>): void {
    for (const f of files) this.#expected.set(f.key, f.bytes);
  }

  /** One event of one file (keyed by `key`, default `item/file`). */
  note(p: FileProgress, key = `${p.item}/${p.file}`): void {
    const before = this.#files.get(key);
    const kept = p.skipped === true || before?.kept === true;
    // Kept files count as done, but not as moved: they do not make the rate look faster.
    if (!kept) this.#moved += Math.max(0, p.bytes - (before?.bytes ?? 0));
    this.#files.set(key, {
      bytes: p.bytes,
      ...(p.total !== undefined
        ? { total: p.total }
        : before?.total !== undefined
          ? { total: before.total }
          : {}),
      done: p.done === true || p.skipped === true,
      kept,
    });
    this.#sample();
  }

  snapshot(): OverallProgress {
    this.#sample();
    let bytesDone = 0;
    let seenTotal = 0;
    let known = true;
    let filesDone = 0;
    // With planned files: each counts at its own length once known, else at its estimate.
    let expectedTotal = 0;
    let estimated = false;
    for (const [key, f] of this.#files) {
      bytesDone += f.bytes;
      if (f.total === undefined) known = false;
      else seenTotal += f.total;
      if (f.done) filesDone++;
      const estimate = this.#expected.get(key);
      const length = f.done ? f.bytes : f.total;
      if (length !== undefined) expectedTotal += length;
      else {
        expectedTotal += Math.max(f.bytes, estimate ?? 0);
        estimated = true;
      }
    }
    for (const [key, bytes] of this.#expected) {
      if (this.#files.has(key)) continue;
      expectedTotal += bytes;
      estimated = true;
    }
    const filesPlanned = this.#expected.size > 0;
    const bytesTotal =
      this.#planned !== undefined
        ? Math.max(this.#planned, bytesDone)
        : filesPlanned
          ? Math.max(expectedTotal, bytesDone)
          : known
            ? seenTotal
            : undefined;
    const [t0, m0] = this.#samples[0]!;
    const [t1, m1] = this.#samples.at(-1)!;
    const bytesPerSecond = t1 > t0 ? Math.round(((m1 - m0) * 1000) / (t1 - t0)) : 0;
    const left = bytesTotal === undefined ? undefined : bytesTotal - bytesDone;
    return {
      bytesDone,
      ...(bytesTotal !== undefined ? { bytesTotal } : {}),
      planned: this.#planned !== undefined || filesPlanned,
      ...(this.#planned === undefined && filesPlanned && estimated ? { estimated: true } : {}),
      bytesPerSecond,
      ...(left !== undefined && (left === 0 || bytesPerSecond > 0)
        ? { etaSeconds: Math.ceil(left / Math.max(1, bytesPerSecond)) }
        : {}),
      files: this.#filesPlannedOrSeen(),
      filesDone,
    };
  }

  /** Files seen plus planned files not seen yet. */
  #filesPlannedOrSeen(): number {
    let n = this.#files.size;
    for (const key of this.#expected.keys()) if (!this.#files.has(key)) n++;
    return n;
  }

  #sample(): void {
    const t = this.now();
    const last = this.#samples.at(-1);
    if (last && last[0] === t) last[1] = this.#moved;
    else this.#samples.push([t, this.#moved]);
    // Keep one sample at or before the window's start, so the window is always full once it can be.
    while (this.#samples.length > 2 && this.#samples[1]![0] <= t - this.windowMs) this.#samples.shift();
  }
}

/**
 * What an import will upload of a verified manifest's items, for `TransferProgress.planFiles`: each
 * item's disks and other files (not its descriptor or `.mf`), at their signed sizes, keyed
 * `item/file` as the import's progress events.
 */
export function importPlan(
  items: readonly Pick<ManifestItem, 'id' | 'files'>[],
): { readonly key: string; readonly item: string; readonly file: string; readonly bytes: number }[] {
  return items.flatMap((item) =>
    item.files
      .filter((f) => f.role === 'disk' || f.role === 'file')
      .map((f) => ({ key: `${item.id}/${f.name}`, item: item.id, file: f.name, bytes: f.size })),
  );
}

const units = ['B', 'kB', 'MB', 'GB', 'TB'] as const;
/** 1234567 → "1.2 MB" (decimal units, as disk sizes are sold). */
export function formatBytes(n: number): string {
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** 3725 → "1h02m05s"; 65 → "1m05s"; 9 → "9s". */
export function formatSeconds(s: number): string {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  const two = (n: number) => String(n).padStart(2, '0');
  if (h > 0) return `${h}h${two(m)}m${two(sec)}s`;
  if (m > 0) return `${m}m${two(sec)}s`;
  return `${sec}s`;
}

/**
 * The overall line in words: `overall 1.2 GB of 4.0 GB (30%) 110.0 MB/s ETA 26s, 3 of 7 files`;
 * `of ≥4.0 GB` when only the files seen so far are known, `of ~4.0 GB` when part is an estimate.
 */
export function overallLine(o: OverallProgress): string {
  const of =
    o.bytesTotal === undefined
      ? ''
      : ` of ${o.planned ? (o.estimated ? '~' : '') : '≥'}${formatBytes(o.bytesTotal)} (${o.bytesTotal > 0 ? Math.floor((100 * o.bytesDone) / o.bytesTotal) : 100}%)`;
  const eta = o.etaSeconds === undefined ? '' : ` ETA ${formatSeconds(o.etaSeconds)}`;
  return `overall ${formatBytes(o.bytesDone)}${of} ${formatBytes(o.bytesPerSecond)}/s${eta}, ${o.filesDone} of ${o.files} file(s) done`;
}
