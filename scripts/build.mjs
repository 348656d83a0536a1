// Bundles the `odt` CLI into dist/odt.mjs (esbuild, ESM, Node 20) for installing agents and
// ODT nodes without a TypeScript toolchain. The age worker's plain-JS files ship beside it.
import { cp, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
await mkdir(join(root, 'dist'), { recursive: true });
await build({
  entryPoints: [join(root, 'cli/entry.ts')],
  outfile: join(root, 'dist/odt.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __odtRequire } from 'node:module'; const require = __odtRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
for (const f of ['payload-worker.mjs', 'payload-chunks.mjs']) {
  await cp(join(root, 'agent/package/age', f), join(root, 'dist', f));
}
console.log('built dist/odt.mjs');
