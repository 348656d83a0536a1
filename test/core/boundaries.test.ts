import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return /\.(ts|mts|js|mjs)$/.test(name) ? [path] : [];
  });
}

/** Every module specifier a file imports, statically or dynamically. */
function specifiers(code: string): string[] {
  const found: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\b[^;]*?\bfrom\s+['"]([^'"]+)['"]/gm,
    /\bimport\s*\(\s*['"]([^'"]+)['"]/g,
    /^\s*import\s+['"]([^'"]+)['"]/gm,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) found.push(m[1]!);
  return found;
}

// core/ is the domain: it may use zod and Node's built-ins, nothing of Slack, AWS or vSphere,
// and nothing of the adapters around it (STYLE.md 1).
const allowed = (spec: string): boolean => spec === 'zod' || spec.startsWith('node:') || spec.startsWith('.');

describe('core/ boundaries', () => {
  const files = sources(join(root, 'core'));

  it('has sources to check', () => {
    expect(files.length).toBeGreaterThan(3);
  });

  it('imports no Slack, AWS, vSphere or adapter code', () => {
    const offenders: string[] = [];
    for (const file of files) {
      for (const spec of specifiers(readFileSync(file, 'utf8'))) {
        const escapes = spec.startsWith('.') && !join(file, '..', spec).startsWith(join(root, 'core'));
        if (!allowed(spec) || escapes) offenders.push(`${relative(root, file)} imports ${spec}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('would catch an offending import (the checker itself works)', () => {
    const code = "import { App } from '@slack/bolt';\nconst s = await import('@aws-sdk/client-sfn');";
    expect(specifiers(code).filter((s) => !allowed(s))).toEqual(['@slack/bolt', '@aws-sdk/client-sfn']);
  });
});
