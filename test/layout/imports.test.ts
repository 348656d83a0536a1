import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

// Issue #22's layout rule, checked on the import graph: the AWS engine (functions/, infra/) and
// the on-prem agent take nothing from the embedded engine (local/); what both engines run lives
// in shared/; and the cli imports run one way (only the entry point imports cli/main.ts).
const root = resolve(import.meta.dirname, '..', '..');

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.(ts|mts|mjs)$/.test(f))
    .map((f) => join(dir, f));
}

/** Every relative import of a file, resolved to a path from the repository's root. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  const specs = [...text.matchAll(/(?:from\s+|import\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g)].map(
    (m) => m[1] ?? '',
  );
  return specs.map((s) => relative(root, resolve(root, dirname(file), s)));
}

function offenders(dirs: string[], bad: (target: string, file: string) => boolean): string[] {
  return dirs.flatMap((d) =>
    sources(d).flatMap((f) =>
      importsOf(f)
        .filter((t) => bad(t, f))
        .map((t) => `${f} → ${t}`),
    ),
  );
}

describe('layout', () => {
  it('functions/, infra/, shared/, core/ and agent/ import nothing from local/ (the embedded engine)', () => {
    expect(
      offenders(['functions', 'infra', 'shared', 'core', 'agent'], (t) => t.startsWith('local/')),
    ).toEqual([]);
  });

  it('shared/ holds what both engines run: the Lambda and odt serve take the agent API handler from there', () => {
    expect(importsOf('functions/agent-api.ts')).toContain('shared/agent-api.ts');
    expect(importsOf('local/control-plane.ts')).toContain('shared/agent-api.ts');
    expect(importsOf('infra/sneakernet-stack.ts')).toContain('shared/workflow-definition.ts');
  });

  it('only the entry points (bin/odt.mjs, cli/entry.ts) import cli/main.ts', () => {
    expect(
      offenders(['cli', 'bin'], (t, f) => t === 'cli/main.ts' && f !== 'cli/entry.ts' && f !== 'bin/odt.mjs'),
    ).toEqual([]);
  });
});
