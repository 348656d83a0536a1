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
    for (const f of this.#files.values()) {
      bytesDone += f.bytes;
      if (f.total === undefined) known = false;
      else seenTotal += f.total;
      if (f.done) filesDone++;
    }
    const bytesTotal =
      this.#planned !== undefined ? Math.max(this.#planned, bytesDone) : known ? seenTotal : undefined;
    const [t0, m0] = this.#samples[0]!;
    const [t1, m1] = this.#samples.at(-1)!;
    const bytesPerSecond = t1 > t0 ? Math.round(((m1 - m0) * 1000) / (t1 - t0)) : 0;
    const left = bytesTotal === undefined ? undefined : bytesTotal - bytesDone;
    return {
      bytesDone,
      ...(bytesTotal !== undefined ? { bytesTotal } : {}),
      planned: this.#planned !== undefined,
      bytesPerSecond,
      ...(left !== undefined && (left === 0 || bytesPerSecond > 0)
        ? { etaSeconds: Math.ceil(left / Math.max(1, bytesPerSecond)) }
        : {}),
      files: this.#files.size,
      filesDone,
    };
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

/** The overall line in words: `overall 1.2 GB of 4.0 GB (30%) 110.0 MB/s ETA 26s, 3 of 7 files`. */
export function overallLine(o: OverallProgress): string {
  const of =
    o.bytesTotal === undefined
      ? ''
      : ` of ${o.planned ? '' : '≥'}${formatBytes(o.bytesTotal)} (${o.bytesTotal > 0 ? Math.floor((100 * o.bytesDone) / o.bytesTotal) : 100}%)`;
  const eta = o.etaSeconds === undefined ? '' : ` ETA ${formatSeconds(o.etaSeconds)}`;
  return `overall ${formatBytes(o.bytesDone)}${of} ${formatBytes(o.bytesPerSecond)}/s${eta}, ${o.filesDone} of ${o.files} file(s) done`;
}
