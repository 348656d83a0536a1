/** Where a command writes what a person sees: the process's streams, or a test's buffers. */
export interface Io {
  readonly out: NodeJS.WritableStream;
  readonly err: NodeJS.WritableStream;
}
