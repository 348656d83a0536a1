// nfcPut with a pulled body (what the import's AgeFileReader gives it), against Node's own HTTP
// server: the bytes arrive whole and in order, each chunk is handed back only once the socket is
// done with it, and a body that fails mid-way cuts the request and fails the upload.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { NfcTransferError, nfcPut, type PulledBody } from '../../../agent/vsphere/nfc.ts';

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

interface Received {
  method?: string;
  type?: string;
  sha256?: string;
  bytes: number;
  aborted: boolean;
}

/** A device URL that takes an upload, slowly if asked (so the client's socket fills up). */
async function device(options: { slow?: boolean } = {}): Promise<{ url: URL; received: Promise<Received> }> {
  let done: (r: Received) => void = () => undefined;
  const received = new Promise<Received>((resolve) => {
    done = resolve;
  });
  const server = http.createServer((req, res) => {
    const hash = createHash('sha256');
    const r: Received = { method: req.method, type: req.headers['content-type'], bytes: 0, aborted: false };
    req.on('data', (c: Buffer) => {
      hash.update(c);
      r.bytes += c.length;
      if (options.slow) {
        req.pause();
        setTimeout(() => req.resume(), 2);
      }
    });
    req.on('end', () => {
      r.sha256 = hash.digest('hex');
      res.end();
      done(r);
    });
    req.on('aborted', () => done({ ...r, aborted: true }));
    req.on('error', () => done({ ...r, aborted: true }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => server.close());
  const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/nfc/lease-1/disk-0.vmdk`);
  return { url, received };
}

/** A pulled body over `data` in `size` pieces, each in a buffer of its own, recording releases. */
function pulled(data: Buffer, size: number, failAt?: number) {
  const out: Buffer[] = [];
  const released: Buffer[] = [];
  let at = 0;
  const body: PulledBody = {
    async next() {
      await new Promise((r) => setImmediate(r));
      if (failAt !== undefined && at >= failAt) throw new Error('payload chunk 20 does not authenticate');
      if (at >= data.length) return undefined;
      const chunk = Buffer.from(data.subarray(at, at + size));
      at += chunk.length;
      out.push(chunk);
      return chunk;
    },
    release(chunk) {
      // Handed back only once sent: scribbling on it now must not change what the server gets.
      chunk.fill(0);
      released.push(chunk);
    },
  };
  return { body, out, released };
}

const agent = new http.Agent({ keepAlive: true });
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('nfcPut with a pulled body', () => {
  it('sends every byte in order as a disk stream, handing each chunk back once written', async () => {
    const data = randomBytes(24 * 1024 * 1024 + 5);
    const { url, received } = await device({ slow: true });
    const { body, out, released } = pulled(data, 1024 * 1024);

    await nfcPut({ url, agent, body, size: data.length, disk: true });

    const r = await received;
    expect(r).toMatchObject({
      method: 'POST',
      type: 'application/x-vnd.vmware-streamVmdk',
      bytes: data.length,
    });
    // Released chunks are zeroed: had one been handed back before the socket was done, the
    // server would have seen zeros.
    expect(r.sha256).toBe(sha256(data));
    expect(released.length).toBe(out.length);
    expect(new Set(released)).toEqual(new Set(out));
  });

  it('fails the upload with the body’s error and cuts the request, so the server never sees a whole file', async () => {
    const data = randomBytes(8 * 1024 * 1024);
    const { url, received } = await device();
    const { body } = pulled(data, 1024 * 1024, 3 * 1024 * 1024);

    const upload = nfcPut({ url, agent, body, size: data.length, disk: false });

    // The body's own error, not a transfer error wrapping it: the caller tells a damaged file
    // from a failed network by it.
    await expect(upload).rejects.not.toBeInstanceOf(NfcTransferError);
    await expect(upload).rejects.toThrow(/^payload chunk 20 does not authenticate$/);
    const r = await received;
    expect(r.aborted).toBe(true);
    expect(r.bytes).toBeLessThanOrEqual(3 * 1024 * 1024);
  });

  it.each([
    ['shorter', -1, /the file ended after 4194303 of the 4194304 bytes announced/],
    ['longer', +1, /the file is longer than the 4194304 bytes announced/],
  ])('refuses a body %s than its Content-Length, cutting the request', async (_name, delta, message) => {
    const size = 4 * 1024 * 1024;
    const data = randomBytes(size + delta);
    const { url, received } = await device();
    const { body } = pulled(data, 1024 * 1024);

    const upload = nfcPut({ url, agent, body, size, disk: true });

    await expect(upload).rejects.toThrow(message);
    const r = await received;
    expect(r.aborted).toBe(true);
    expect(r.bytes).toBeLessThan(size);
  });

  it('holds back the last bytes until the body has ended: a body failing after them fails the upload, the file one chunk short', async () => {
    const size = 4 * 1024 * 1024;
    const data = randomBytes(size);
    const { url, received } = await device();
    const { body } = pulled(data, 1024 * 1024, size);

    const upload = nfcPut({ url, agent, body, size, disk: true });

    await expect(upload).rejects.toThrow(/^payload chunk 20 does not authenticate$/);
    const r = await received;
    expect(r.aborted).toBe(true);
    expect(r.bytes).toBeLessThanOrEqual(size - 1024 * 1024);
  });

  /**
   * A device URL that answers 200 at the first bytes of an upload and reads on, keeping the
   * connection open (a plain socket: Node's HTTP server would close it, hiding a client that
   * goes on sending).
   */
  async function earlyAnswer(when?: Promise<void>): Promise<{ url: URL; cut: Promise<string> }> {
    const sockets = new Set<net.Socket>();
    let cut: (how: string) => void = () => undefined;
    const closed = new Promise<string>((r) => {
      cut = r;
    });
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => cut('connection closed'));
      socket.once('data', async () => {
        await when;
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly');
      });
      socket.on('error', () => undefined);
      socket.resume();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => {
      for (const s of sockets) s.destroy();
      server.close();
    });
    const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/nfc/lease-1/disk-0.vmdk`);
    return { url, cut: closed };
  }

  it('fails when the server answers before the whole file was sent, cuts the request and pulls no more of the body', async () => {
    const { url, cut } = await earlyAnswer();
    // 1 GiB announced, pulled 1 MiB at a time (one buffer): at loopback speed all of it within a second.
    const size = 1024 * 1024 * 1024;
    const piece = Buffer.alloc(1024 * 1024);
    let pulls = 0;
    const body: PulledBody = {
      async next() {
        await new Promise((r) => setImmediate(r));
        return pulls++ * piece.length < size ? piece : undefined;
      },
      release() {},
    };

    const upload = nfcPut({ url, agent, body, size, disk: true });

    await expect(upload).rejects.toThrow(/answered HTTP 200 before the whole file was sent/);
    const atAnswer = pulls;
    await new Promise((r) => setTimeout(r, 300));
    expect(pulls - atAnswer).toBeLessThanOrEqual(1);
    expect(pulls).toBeLessThan(512);
    // Cut, not left open half-sent on the agent's socket.
    const timeout = new Promise<string>((r) => setTimeout(() => r('still open'), 1000));
    expect(await Promise.race([cut, timeout])).toBe('connection closed');
  });

  it('stops, handing its last chunk back, when the server answers while it waits for the end of the body', async () => {
    // The server answers once the look-ahead after the last chunk is out, and the look-ahead
    // returns only once the upload has failed: the answer comes while it is out.
    let answer: () => void = () => undefined;
    const { url } = await earlyAnswer(
      new Promise<void>((r) => {
        answer = r;
      }),
    );
    const chunks = [randomBytes(256 * 1024), randomBytes(256 * 1024)];
    const released: Buffer[] = [];
    let pulls = 0;
    let failed: Promise<unknown> = Promise.resolve();
    let lookedAhead: () => void = () => undefined;
    const lookAhead = new Promise<void>((r) => {
      lookedAhead = r;
    });
    const body: PulledBody = {
      async next() {
        const i = pulls++;
        if (i === chunks.length) {
          answer();
          await failed;
          lookedAhead();
        }
        return chunks[i];
      },
      release(chunk) {
        released.push(chunk);
      },
    };

    const upload = nfcPut({ url, agent, body, size: 512 * 1024, disk: true });
    failed = upload.catch(() => undefined);

    await expect(upload).rejects.toThrow(/answered HTTP 200 before the whole file was sent/);
    await lookAhead;
    await new Promise((r) => setTimeout(r, 50));
    // Not written to the destroyed request (where it would have waited for a drain that never
    // comes), but handed back.
    expect(released).toContain(chunks[1]);
    expect(pulls).toBe(3);
  });

  it('fails, not hangs, when the answer is cut off after its head', async () => {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(500, { 'Content-Length': '100' });
        res.write('0123456789');
        setTimeout(() => res.socket?.destroy(), 20);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => server.close());
    const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/nfc/lease-1/disk-0.vmdk`);
    const data = randomBytes(1024 * 1024);
    const { body } = pulled(data, 256 * 1024);

    await expect(nfcPut({ url, agent, body, size: data.length, disk: true })).rejects.toThrow(
      /its answer \(HTTP 500\) was cut off/,
    );
  });
});
