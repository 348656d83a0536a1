// `npm pack` runs this (prepack, and postpack with --remove): the release tarball carries
// npm-shrinkwrap.json, package-lock.json's exact versions, so `npm install -g` of the tarball
// installs what CI tested, not the newest in each range. Each entry also gets the address npm
// fetches it from (the lockfile leaves them out: omit-lockfile-registry-resolved), so an install
// from npm's cache alone (--offline) finds every package by its integrity without asking the
// registry for its versions.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const target = join(root, 'npm-shrinkwrap.json');
if (process.argv.includes('--remove')) {
  rmSync(target, { force: true });
  process.exit(0);
}
const registry = (
  process.env.npm_config_registry ||
  execFileSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8' }).trim()
).replace(/\/?$/, '/');
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
for (const [path, entry] of Object.entries(lock.packages)) {
  if (path === '' || entry.link || entry.resolved || !entry.version || !entry.integrity) continue;
  const name = entry.name ?? path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
  const base = name.split('/').at(-1);
  entry.resolved = `${registry}${name}/-/${base}-${entry.version}.tgz`;
}
writeFileSync(target, `${JSON.stringify(lock, null, 2)}\n`);
