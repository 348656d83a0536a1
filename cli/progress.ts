import { type FileProgress, overallLine, TransferProgress } from '../agent/file-progress.ts';

export interface ProgressSink {
  update(p: FileProgress): void;
  /** The whole transfer's size, when known before its files start: the overall line's total. */
  plan?(totalBytes: number): void;
  /**
   * The files the transfer will move, with an estimate of each (`item/file` keys, as `update`'s),
   * known before the first byte (an export's disks): the overall line's total from the start.
   */
  planFiles?(files: readonly { readonly key: string; readonly bytes: number }[]): void;
  end(): void;
}

/** How often the overall line is written with `--json` (and at the end). */
const overallEveryMs = 1000;

/**
 * One JSON line per progress event, for the control plane and scripts (`--json`): `progress` for
 * data moved, `verify` for a file of a transfer checked before an import.
 */
export function jsonProgress(
  out: NodeJS.WritableStream,
  now: () => number = Date.now,
  event: 'progress' | 'verify' = 'progress',
): ProgressSink {
  const started = new Map<string, number>();
  let last = 0;
  const overall = new TransferProgress(now);
  let overallAt: number | undefined;
  // One line for the whole transfer (issue #19): `overall`, or `verify-overall` for the check of a NAS.
  const writeOverall = () => {
    overallAt = now();
    const o = overall.snapshot();
    out.write(
      `${JSON.stringify({ event: event === 'verify' ? 'verify-overall' : 'overall', bytes: o.bytesDone, total: o.bytesTotal ?? null, planned: o.planned, estimated: o.estimated ?? false, bytesPerSecond: o.bytesPerSecond, etaSeconds: o.etaSeconds ?? null, files: o.files, filesDone: o.filesDone })}\n`,
    );
  };
  return {
    // A plan is written at once: a script knows the whole transfer's size before its first byte.
    plan(totalBytes) {
      overall.plan(totalBytes);
      writeOverall();
    },
    planFiles(files) {
      overall.planFiles(files);
      writeOverall();
    },
    update(p) {
      overall.note(p);
      if (overallAt === undefined) overallAt = now();
      else if (now() - overallAt >= overallEveryMs) writeOverall();
      const key = `${p.item}/${p.file}`;
      const first = !started.has(key);
      if (first) started.set(key, now());
      const t = now();
      // Chunks arrive every few hundred microseconds: sample, but always show a file's first and last event.
      if (!first && !p.done && t - last < 500) return;
      last = t;
      const secs = Math.max(0.001, (t - started.get(key)!) / 1000);
      out.write(
        `${JSON.stringify({ event, item: p.item, file: p.file, bytes: p.bytes, total: p.total ?? null, bytesPerSecond: Math.round(p.bytes / secs), done: p.done ?? false, skipped: p.skipped ?? false })}\n`,
      );
    },
    end() {
      if (overallAt !== undefined) writeOverall();
    },
  };
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

/**
 * Progress bars on a terminal: one line per file in flight and, under them, one for the whole
 * transfer (bytes done of the total, rate, ETA); redrawn at most 5 times a second.
 */
export function ttyProgress(out: NodeJS.WriteStream, now: () => number = Date.now): ProgressSink {
  const files = new Map<string, { p: FileProgress; start: number }>();
  const overall = new TransferProgress(now);
  let drawn = 0;
  let last = 0;
  const draw = (force: boolean) => {
    const t = now();
    if (!force && t - last < 200) return;
    last = t;
    if (drawn > 0) out.write(`\x1b[${drawn}A`);
    const lines = [...files.entries()].map(([key, { p, start }]) => {
      const secs = Math.max(0.001, (t - start) / 1000);
      const rate = p.bytes / secs;
      const total = p.total ?? 0;
      const frac = total > 0 ? Math.min(1, p.bytes / total) : p.done ? 1 : 0;
      const width = 24;
      const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
      const eta =
        total > 0 && rate > 0 && !p.done
          ? `ETA ${Math.ceil((total - p.bytes) / rate)}s`
          : p.skipped
            ? 'kept'
            : p.done
              ? 'done'
              : '';
      return `\x1b[2K${key.padEnd(36).slice(0, 36)} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${mb(p.bytes).padStart(10)} ${`${mb(rate)}/s`.padStart(12)} ${eta}`;
    });
    lines.push(`\x1b[2K${overallLine(overall.snapshot())}`);
    out.write(`${lines.join('\n')}\n`);
    drawn = lines.length;
  };
  return {
    plan(totalBytes) {
      overall.plan(totalBytes);
    },
    planFiles(files) {
      overall.planFiles(files);
    },
    update(p) {
      overall.note(p);
      const key = `${p.item}/${p.file}`;
      const entry = files.get(key);
      files.set(key, { p, start: entry?.start ?? now() });
      draw(p.done === true);
    },
    end() {
      draw(true);
    },
  };
}
