/** Issue 23, point 2: one table of exit codes, derived from the errors' codes. */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { agentErrorCodes } from '../../agent/errors.ts';
import { TransferNotTrustedError } from '../../agent/import/import-transfer.ts';
import { AgentApiError } from '../../agent/runtime/api-client.ts';
import { VimSchemaError } from '../../agent/vsphere/wire/serialize.ts';
import { VimFaultError } from '../../agent/vsphere/wire/soap-connection.ts';
import { exitCodeByCode, exitCodeOf, exitCodes } from '../../cli/exit-codes.ts';
import { SignerNotPinnedError } from '../../cli/trusted-signer.ts';
import { errorCodes, NotFoundError } from '../../core/errors.ts';
import { enrollmentCodes } from '../../core/ports/agents.ts';
import { InterruptedError } from '../../core/wait.ts';
import { odt } from '../support/cli.ts';

const documented = new Set<number>(Object.values(exitCodes));

describe('the exit-code table', () => {
  it('gives every code of core and of the agents a documented exit code', () => {
    const table = exitCodeByCode as Record<string, number>;
    for (const code of [...errorCodes, ...agentErrorCodes, ...Object.values(enrollmentCodes)]) {
      expect(documented.has(table[code] ?? -1), code).toBe(true);
    }
  });

  it('is the table README lists', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const exit of documented) expect(readme, String(exit)).toMatch(new RegExp(`^\\| ${exit} \\|`, 'm'));
  });

  it('lists each code in README under the exit it gets (issue 22: one table for every command)', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.split('\n## Exit codes\n')[1]!.split('\n## ')[0]!;
    // Names given in full (`AGE_BAD_RECIPIENT`/`_IDENTITY` is two), and prefixes (`VCD_*`) that
    // cover the codes not named in full; `(but `_X`)` takes one out of a prefix.
    const exact = new Map<string, Set<number>>();
    const prefixes: { prefix: string; exit: number }[] = [];
    for (const row of section.matchAll(/^\| (\d+) \|[^|\n]*\|([^|\n]*)\|$/gm)) {
      const exit = Number(row[1]);
      let last = '';
      for (const t of row[2]!.matchAll(/(but )?`([A-Za-z0-9_*]+)`/g)) {
        const name = t[2]!;
        if (t[1]) continue;
        if (name.endsWith('_*')) prefixes.push({ prefix: name.slice(0, -1), exit });
        else {
          const full = name.startsWith('_') ? last.replace(/_[A-Z0-9]+$/, name) : name;
          last = full;
          exact.set(full, (exact.get(full) ?? new Set()).add(exit));
        }
      }
    }
    const table = exitCodeByCode as Record<string, number>;
    const wrong: string[] = [];
    for (const [code, exit] of Object.entries(table)) {
      const rows =
        exact.get(code) ?? new Set(prefixes.filter((p) => code.startsWith(p.prefix)).map((p) => p.exit));
      // INTERRUPTED: 130 or 143 by the signal, as exitCodeOf says.
      const expected = code === 'INTERRUPTED' ? [130, 143] : [exit];
      if ([...rows].sort().join() !== expected.join())
        wrong.push(`${code}: README ${[...rows]}, exit ${exit}`);
    }
    expect(wrong).toEqual([]);
  });

  it('derives the exit code from the error', () => {
    expect(exitCodeOf(new NotFoundError('Transfer', 'tr-1'))).toBe(2);
    expect(exitCodeOf(new SignerNotPinnedError('odt import'))).toBe(2);
    expect(exitCodeOf(new TransferNotTrustedError({ ok: false, problems: [] } as never))).toBe(4);
    expect(exitCodeOf(new VimFaultError('Login', 'InvalidLogin', 'bad', undefined))).toBe(6);
    expect(exitCodeOf(new AgentApiError(409, 'CONFLICT', 'x'))).toBe(6);
    expect(exitCodeOf(new InterruptedError('SIGINT'))).toBe(130);
    expect(exitCodeOf(new InterruptedError('SIGTERM'))).toBe(143);
    expect(exitCodeOf(Object.assign(new Error('no such file'), { code: 'ENOENT' }))).toBe(2);
    expect(exitCodeOf(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))).toBe(6);
    // A bug: ours (a call outside the vim25 schema) or anyone's.
    expect(exitCodeOf(new VimSchemaError('Login has no parameter x'))).toBe(1);
    expect(exitCodeOf(new TypeError('x is undefined'))).toBe(1);
  });
});

describe('one exit code per condition, whichever command meets it (issue 22)', () => {
  it('a transfer that is not on the NAS: `odt verify` and `odt import` both exit 2 with NOT_FOUND', async () => {
    const work = await mkdtemp(join(tmpdir(), 'odt-exit-same-'));
    try {
      const nas = join(work, 'nas');
      await mkdir(nas);
      const node = await odt(['node', 'init', '--dir', join(work, 'node')]);
      expect(node.code).toBe(0);
      const where = ['--nas', nas, '--transfer', 'tr-missing', '--trust-nas-signer'];
      const verify = await odt(['verify', ...where]);
      const imp = await odt(
        [
          'import',
          ...where,
          '--identity',
          join(work, 'node', 'identity.txt'),
          '--vcenter',
          'https://127.0.0.1:9',
          '--username',
          'u',
        ],
        { ODT_VCENTER_PASSWORD: 'p' },
      );
      for (const r of [verify, imp]) {
        expect(r.err).toContain('[NOT_FOUND]');
        expect(r.err).toContain('--transfer tr-missing');
      }
      expect([verify.code, imp.code]).toEqual([exitCodes.usage, exitCodes.usage]);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
