// Issue 3 (the export's NAS file): a pipeline that fails while the file sink has a write under
// way (a download cut mid-disk) must not close the sink's descriptor before that write is done
// with it: the number could meanwhile be given to another file, and the write land there.
// node:fs's write is slowed here for the sink's file, so the failure always finds one under way.
import { randomBytes } from 'node:crypto';
import type * as fs from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { generateIdentity } from '../../../agent/package/age/keys.ts';
import { writeEncryptedFile } from '../../../agent/package/encrypted-file.ts';

/** What happened to the descriptors of `.partial` files, in order. */
const log: string[] = [];
const partials = new Set<number>();
/** Called when a write to a `.partial` file starts. */
let onPartialWrite: (() => void) | undefined;

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof fs>();
  const open = ((path: fs.PathLike, flags: fs.OpenMode, cb: (e: Error | null, fd: number) => void) =>
    real.open(path, flags, (error, fd) => {
      if (!error && String(path).endsWith('.partial')) partials.add(fd);
      cb(error, fd);
    })) as typeof real.open;
  const write = ((fd: number, buffer: Buffer, offset: number, length: number, position: null, cb: never) => {
    if (!partials.has(fd)) return real.write(fd, buffer, offset, length, position, cb);
    log.push(`write ${fd}`);
    onPartialWrite?.();
    // Slow, like a NAS over the network: the write is done 100 ms from now.
    setTimeout(
      () =>
        real.write(fd, buffer, offset, length, position, (error, n) => {
          log.push(`written ${fd}`);
          (cb as (e: Error | null, n: number) => void)(error, n);
        }),
      100,
    );
  }) as typeof real.write;
  const close = ((fd: number, cb: (e: Error | null) => void) => {
    if (partials.has(fd)) log.push(`close ${fd}`);
    return real.close(fd, cb);
  }) as typeof real.close;
  return { ...real, default: { ...real, open, write, close }, open, write, close };
});

const keys = generateIdentity();
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'file-sink-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('the NAS file of writeEncryptedFile', () => {
  it('closes its descriptor only after the write under way when the source fails, and leaves no file', async () => {
    const source = new Readable({ read() {} });
    source.push(randomBytes(4 * 1024 * 1024));
    // The download fails once the first write to the NAS file is under way.
    onPartialWrite = () => {
      onPartialWrite = undefined;
      setImmediate(() => source.destroy(new Error('the device URL closed the connection')));
    };

    await expect(
      writeEncryptedFile({
        source,
        root: dir,
        path: 'disk-0.vmdk.age',
        name: 'disk-0.vmdk',
        recipients: [keys.recipient],
      }),
    ).rejects.toThrow(/the device URL closed the connection/);

    const fd = [...partials][0]!;
    // The sink closes its file on its own time, once the write under way is done.
    await vi.waitFor(() => expect(log).toContain(`close ${fd}`), { timeout: 2000 });
    const mine = log.filter((l) => l.endsWith(` ${fd}`));
    expect(mine[0]).toBe(`write ${fd}`);
    expect(mine.filter((l) => l.startsWith('close'))).toEqual([`close ${fd}`]);
    // Every write started was done before the close.
    const closedAt = mine.indexOf(`close ${fd}`);
    expect(mine.slice(closedAt + 1)).toEqual([]);
    expect(mine.filter((l) => l.startsWith('write')).length).toBe(
      mine.filter((l) => l.startsWith('written')).length,
    );
    expect(await readdir(dir)).toEqual([]);
  });
});
