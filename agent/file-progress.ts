/** Progress of one file of one item, as export and import report it (and `--json` prints it). */
export interface FileProgress {
  readonly item: string;
  readonly file: string;
  readonly bytes: number;
  readonly total?: number;
  readonly done?: boolean;
  /** Complete from an earlier run: kept, not sent again. */
  readonly skipped?: boolean;
}
