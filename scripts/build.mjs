// Bundles the `odt` CLI into dist/odt.mjs (esbuild, ESM, Node 24) for installing agents and
// ODT nodes without a TypeScript toolchain. The age worker's plain-JS files ship beside it.
import { cp, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
await rm(join(root, 'dist'), { recursive: true, force: true });
await mkdir(join(root, 'dist'), { recursive: true });
await build({
  entryPoints: [join(root, 'cli/entry.ts')],
  // Code splitting: a command loads only what it uses (`odt export` does not load Slack or the
  // control plane); the chunks live in dist/chunks/ beside dist/odt.mjs.
  outdir: join(root, 'dist'),
  entryNames: 'odt',
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunks/[name]-[hash]',
  splitting: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  sourcemap: true,
  // better-sqlite3 finds its compiled .node file from its own folder (the bindings package reads
  // the caller's file name off the stack): bundled, it would look beside dist/. It stays a
  // package, loaded from node_modules next to dist/ (the checkout's, or the installed release's).
  external: ['better-sqlite3'],
  // expose-gc.mjs (see there) is the first import of the entry and of every chunk (a banner goes
  // into each; the module runs once per folder), so gc is there before any code of odt runs.
  banner: {
    // CommonJS code inside the bundle may read require, __filename and __dirname: ESM has none.
    js: "#!/usr/bin/env node\nimport './expose-gc.mjs'; import { createRequire as __odtRequire } from 'node:module'; import { fileURLToPath as __odtPath } from 'node:url'; import { dirname as __odtDirname } from 'node:path'; const require = __odtRequire(import.meta.url); const __filename = __odtPath(import.meta.url); const __dirname = __odtDirname(__filename);",
  },
  logLevel: 'warning',
});
// The age worker is found beside the module that starts it (new URL(…, import.meta.url)): that
// module may be the entry or a chunk, so the worker's files go to both folders; so does the
// banner's expose-gc.mjs.
for (const dir of ['dist', 'dist/chunks']) {
  await mkdir(join(root, dir), { recursive: true });
  for (const f of ['payload-worker.mjs', 'payload-chunks.mjs', 'segment-hash.mjs']) {
    await cp(join(root, 'agent/package/age', f), join(root, dir, f));
  }
  await cp(join(root, 'bin/expose-gc.mjs'), join(root, dir, 'expose-gc.mjs'));
}
// The workflow definition is read at run time from ../infra/workflow/ of the module that loads it
// (shared/workflow-definition.ts), a chunk of dist/chunks/: the file goes where that points.
await mkdir(join(root, 'dist/infra/workflow'), { recursive: true });
await cp(join(root, 'infra/workflow/transfer.asl.json'), join(root, 'dist/infra/workflow/transfer.asl.json'));
console.log('built dist/odt.mjs');
