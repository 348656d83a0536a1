/**
 * Flag parsers and help text shared by the commands: a bad value is refused by commander with the
 * flag's name (`error: option '--port <n>' argument 'abc' is invalid. …`, exit 2), durations are
 * read and shown as durations, and required flags say so in `--help`.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { siteRefusal } from '../core/model/enrollment.ts';
import { siteNameRule } from '../core/model/transfer.ts';
import { parseDuration } from '../core/ports/agents.ts';

/** A TCP port, 0 … 65535 (0: any free port). */
export function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n > 65_535)
    throw new InvalidArgumentError('use a port number from 0 to 65535 (0: any free port).');
  return n;
}

/** A duration such as `30s`, `15m`, `1h`, `2d` (or plain ms), in ms. */
export function parseDurationFlag(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw new InvalidArgumentError('use a duration such as 30s, 15m, 1h or 2d.');
  return ms;
}

/** A site name under the one site-name rule (core/model/transfer.ts), as serve and Slack apply it. */
export function parseSiteFlag(value: string): string {
  if (siteRefusal(value)) throw new InvalidArgumentError(`${siteNameRule}.`);
  return value;
}

/** A positive whole number. */
export function parseCount(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1) throw new InvalidArgumentError('use a whole number ≥ 1.');
  return n;
}

/** `900000` → `15m`, `90000` → `1m30s`, `0` → `0s`: the largest units that add up exactly. */
export function formatMs(ms: number): string {
  if (ms === 0) return '0s';
  const units: [string, number][] = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
    ['ms', 1],
  ];
  let rest = ms;
  let text = '';
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      text += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return text;
}

/**
 * Adds "(required)" to the help of every mandatory option of `program` and its subcommands
 * (commander enforces them but does not say so in `--help`).
 */
export function markRequiredOptions(program: Command): void {
  for (const option of program.options) {
    if (option.mandatory && !option.description.includes('(required')) option.description += ' (required)';
  }
  for (const sub of program.commands) markRequiredOptions(sub);
}
