// Drives a Transform with chosen write sizes into a chosen sink, and collects what comes out.

import { Readable, type Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface DriveOptions {
  /** Sizes of successive writes, cycled; default one write of everything. */
  readonly writeSizes?: readonly number[];
  /** The sink's highWaterMark; with 1 it takes one buffer at a time. */
  readonly sinkHighWaterMark?: number;
  /** Make the sink finish each write on a later turn of the event loop. */
  readonly slowSink?: boolean;
}

function* slices(input: Buffer, sizes: readonly number[]): Generator<Buffer> {
  let at = 0;
  for (let i = 0; at < input.length; i++) {
    const n = sizes[i % sizes.length]!;
    // Fresh copies: the stream must not rely on the caller keeping a buffer unchanged.
    yield Buffer.from(input.subarray(at, at + n));
    at += n;
  }
}

/** Pipes `input` through `transform`; resolves with all output, rejects with the stream's error. */
export async function drive(
  transform: Transform,
  input: Buffer,
  options: DriveOptions = {},
): Promise<Buffer> {
  const parts: Buffer[] = [];
  const source = Readable.from(options.writeSizes ? slices(input, options.writeSizes) : [input], {
    objectMode: false,
  });
  const sink = new Writable({
    highWaterMark: options.sinkHighWaterMark ?? 16 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      parts.push(chunk);
      if (options.slowSink) setImmediate(callback);
      else callback();
    },
  });
  await pipeline(source, transform, sink);
  return Buffer.concat(parts);
}
