import { readFile } from 'node:fs/promises';
import { OdtError } from '../core/index.ts';

/**
 * Reads the file a flag names, failing with the flag, the path and what the file should be
 * instead of a bare errno message: `--identity /x: no such file; pass the ODT node's identity …`.
 */
export async function readFlagFile(flag: string, path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'a folder, not a file'
          : code === 'EACCES' || code === 'EPERM'
            ? 'not readable by this user'
            : (error as Error).message;
    throw new OdtError('VALIDATION_FAILED', `${flag} ${path}: ${why}; pass ${what}.`, { cause: error });
  }
}

export const identityFileHelp =
  "the ODT node's age identity file (`odt node init --dir <dir>` wrote <dir>/identity.txt)";
export const agentCertHelp =
  "the exporting agent's certificate (`odt agent init --dir <dir>` wrote <dir>/agent.crt.pem)";
