// `npm install` runs this (the package's install script): builds native/age_payload.c into
// build/Release/age_payload.node with node-gyp, against this Node's headers and its OpenSSL.
// The addon only makes the age payload faster (agent/package/age/payload-chunks.mjs falls back
// to Node's own ciphers without it, at about half its speed), so a failed build warns and does not
// fail the install.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
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
].find((p) => p !== undefined && existsSync(p));

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
  // This Node's own headers when it has them (Debian's and the official builds do), so that
  // node-gyp does not try to download them, whether npm runs this or a person does.
  const prefix = join(dirname(process.execPath), '..');
  const local = existsSync(join(prefix, 'include', 'node', 'node_api.h'));
  const nodedir = process.env.npm_config_nodedir || (local ? prefix : undefined);
  const args = [gyp, 'rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) warn(`node-gyp exited with ${r.status ?? r.signal}`);
}
