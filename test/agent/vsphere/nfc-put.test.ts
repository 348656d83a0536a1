// nfcPut with a pulled body (what the import's AgeFileReader gives it), against Node's own HTTP
// server: the bytes arrive whole and in order, each chunk is handed back only once the socket is
// done with it, and a body that fails mid-way cuts the request and fails the upload.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
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

  it('fails, not hangs, when the server answers before the whole file was sent and stops reading', async () => {
    const server = http.createServer((req, res) => {
      req.once('data', () => {
        req.pause();
        res.end('early');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => {
      server.closeAllConnections();
      server.close();
    });
    const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/nfc/lease-1/disk-0.vmdk`);
    const data = randomBytes(64 * 1024 * 1024);
    const { body, out } = pulled(data, 1024 * 1024);

    const upload = nfcPut({ url, agent, body, size: data.length, disk: true });

    await expect(upload).rejects.toThrow(/answered HTTP 200 before the whole file was sent/);
    // It stopped pulling: the rest of the body was never read.
    await new Promise((r) => setTimeout(r, 50));
    expect(out.length).toBeLessThan(64);
  });
});
