import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CodedError, errnoOf } from '../core/errors.ts';

/** The admin token of a state folder (created on first use, mode 0600). */
export function adminToken(stateDir: string): string {
  const file = join(stateDir, 'admin-token');
  if (!existsSync(file)) {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    writeFileSync(file, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  return readFileSync(file, 'utf8').trim();
}

/**
 * The admin token of a state folder that `odt serve` made, for the CLI: never created here, so a
 * mistyped --state-dir is refused instead of holding a token no serve accepts.
 */
export function readAdminToken(stateDir: string): string {
  try {
    return readFileSync(join(stateDir, 'admin-token'), 'utf8').trim();
  } catch (error) {
    const why = errnoOf(error) === 'EACCES' ? 'is not readable by this user' : 'is missing';
    throw new CodedError(
      'NO_CONTROL_PLANE',
      `the admin token of ${stateDir} ${why}: run the CLI as the user of odt serve, with its --state-dir`,
      { cause: error },
    );
  }
}
