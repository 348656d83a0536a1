import { AgentError } from '../errors.ts';

/** Why a folder was refused as the NAS, or the NAS as the place for this transfer. */
export const nasErrorCodes = [
  /** `--nas` does not exist (the NAS is not mounted, or the path is wrong): nothing was created. */
  'NAS_MISSING',
  /** `--nas` is a file, not a folder. */
  'NAS_NOT_A_FOLDER',
  /** `--nas` carries no NAS marker (`odt nas init`), and no flag allows a plain folder. */
  'NAS_NOT_INITIALIZED',
  /** `odt nas init` of a folder where nothing is mounted, without `--plain-folder`. */
  'NAS_NOT_MOUNTED',
  /** The marker is there but cannot be read as one. */
  'NAS_MARKER_INVALID',
  /** The file system of `--nas` is mounted read-only (EROFS). */
  'NAS_READ_ONLY',
  /** This user may not write (or read) `--nas` (EACCES, EPERM). */
  'NAS_NOT_WRITABLE',
  /** The free space of the NAS is clearly less than the selected items need. */
  'NAS_TOO_SMALL',
  /** A file of the package would pass the file system's largest file (FAT32: 4 GiB - 1). */
  'NAS_FILE_TOO_LARGE',
  /** Two files of the package would be one on a file system that ignores case (FAT, exFAT, SMB). */
  'NAS_NAME_CLASH',
] as const;
export type NasErrorCode = (typeof nasErrorCodes)[number];

/** A refusal of the NAS: raised before any byte is written, so nothing needs undoing. */
export class NasError extends AgentError<NasErrorCode> {
  constructor(code: NasErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'NasError';
  }
}
