// nfcGet reads device URLs with its own HTTP/1.1 response framing (socket `onread` into 1 MiB
// buffers). Here it reads from Node's own HTTP server, which frames bodies by Content-Length,
// chunked, or by closing (HTTP/1.0 style), and from raw sockets that misbehave; over TLS through
// the same agents the vim25 client uses, a pinned thumbprint included.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { encryptRunBytes } from '../../../agent/package/age/encrypt.ts';
import { NfcTransferError, nfcGet } from '../../../agent/vsphere/nfc.ts';
import { createHttpAgent } from '../../../agent/vsphere/wire/tls.ts';

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

async function serve(handler: http.RequestListener): Promise<URL> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => server.close());
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/nfc/lease-1/disk-0.vmdk`);
}

/** A server that answers every connection with `raw` bytes, then does what `after` says. */
async function rawServer(raw: Buffer, after: 'close' | 'hang'): Promise<URL> {
  const server = net.createServer((socket) => {
    socket.once('data', () => {
      socket.write(raw);
      if (after === 'close') socket.end();
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => server.close());
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/x`);
}

async function drain(body: Readable): Promise<{ bytes: Buffer; chunks: number[] }> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(Buffer.from(c as Buffer));
  return { bytes: Buffer.concat(parts), chunks: parts.map((p) => p.length) };
}

/** A throwaway P-256 certificate from the openssl CLI, and its SHA-256 thumbprint. */
function selfSignedCertificate(): { key: Buffer; cert: Buffer; thumbprint: string } {
  const dir = mkdtempSync(join(tmpdir(), 'nfc-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-subj',
        '/CN=esxi.test',
        '-days',
        '1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const cert = readFileSync(join(dir, 'cert.pem'));
    return {
      key: readFileSync(join(dir, 'key.pem')),
      cert,
      thumbprint: new X509Certificate(cert).fingerprint256,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const agent = new http.Agent();
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('nfcGet', () => {
  const data = randomBytes(3 * encryptRunBytes + 12345);

  it('reads a Content-Length body whole, in full 1 MiB buffers, and sends the cookie', async () => {
    let cookie: string | undefined;
    const url = await serve((req, res) => {
      cookie = req.headers.cookie;
      res.writeHead(200, { 'Content-Length': data.length });
      res.end(data);
    });
    const { body, length } = await nfcGet({ url, agent, cookie: 'vmware_soap_session="abc"' });
    const got = await drain(body);

    expect(length).toBe(data.length);
    expect(sha(got.bytes)).toBe(sha(data));
    expect(got.chunks.slice(0, 3)).toEqual([encryptRunBytes, encryptRunBytes, encryptRunBytes]);
    expect(cookie).toBe('vmware_soap_session="abc"');
  });

  it('reads a chunked body (many small chunks, chunk extensions, a trailer)', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', Trailer: 'X-Digest' });
      for (let at = 0; at < data.length; at += 7_777) res.write(data.subarray(at, at + 7_777));
      res.addTrailers({ 'X-Digest': 'none' });
      res.end();
    });
    const { body, length } = await nfcGet({ url, agent });
    const got = await drain(body);

    expect(length).toBeUndefined();
    expect(sha(got.bytes)).toBe(sha(data));
  });

  it('reads a body that ends when the server closes (no length, no chunking)', async () => {
    const url = await rawServer(
      Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n'), data]),
      'close',
    );
    const { body, length } = await nfcGet({ url, agent });

    expect(length).toBeUndefined();
    expect(sha((await drain(body)).bytes)).toBe(sha(data));
  });

  it('sends Range for an offset and wants 206', async () => {
    let range: string | undefined;
    const url = await serve((req, res) => {
      range = req.headers.range;
      res.writeHead(206, { 'Content-Length': data.length - 100 });
      res.end(data.subarray(100));
    });
    const { body } = await nfcGet({ url, agent, offset: 100 });

    expect(sha((await drain(body)).bytes)).toBe(sha(data.subarray(100)));
    expect(range).toBe('bytes=100-');
  });

  it('refuses an error status by its code', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(404, { 'Content-Length': 9 });
      res.end('not found');
    });

    await expect(nfcGet({ url, agent })).rejects.toThrow(/answered HTTP 404.*lease/);
  });

  it('fails the body, naming it, when the server closes before Content-Length bytes', async () => {
    const url = await rawServer(
      Buffer.concat([
        Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${data.length}\r\n\r\n`),
        data.subarray(0, 2 * encryptRunBytes + 5),
      ]),
      'close',
    );
    const { body } = await nfcGet({ url, agent });
    const error = await drain(body).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(NfcTransferError);
    expect((error as Error).message).toBe('/x: the server closed the connection mid-body');
  });

  it('fails a chunked body cut before its last chunk, and malformed chunking', async () => {
    const cut = await rawServer(
      Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nwor'),
      'close',
    );
    const cutError = await drain((await nfcGet({ url: cut, agent })).body).catch((e: unknown) => e);
    expect((cutError as Error).message).toMatch(/closed the connection mid-body/);

    const bad = await rawServer(
      Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'),
      'hang',
    );
    const badError = await drain((await nfcGet({ url: bad, agent })).body).catch((e: unknown) => e);
    expect((badError as Error).message).toMatch(/malformed chunk size 'zz'/);
  });

  it('refuses an answer that is not HTTP, and a connection closed before any answer', async () => {
    const notHttp = await rawServer(Buffer.from('SSH-2.0-OpenSSH_9.2\r\n\r\n'), 'close');
    await expect(nfcGet({ url: notHttp, agent })).rejects.toThrow(/not HTTP\/1.1/);

    const silent = await rawServer(Buffer.alloc(0), 'close');
    await expect(nfcGet({ url: silent, agent })).rejects.toThrow(/closed the connection before answering/);
  });

  it('stops at once when its signal aborts mid-body', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Length': data.length * 10 });
      res.write(data);
    });
    const controller = new AbortController();
    const { body } = await nfcGet({ url, agent, signal: controller.signal });
    const reading = drain(body).catch((e: unknown) => e);
    controller.abort(new Error('cancelled by the operator'));

    expect(((await reading) as Error).message).toBe('cancelled by the operator');
  });

  it('stops listening to its signal when the download ends, or when its consumer tears the body down', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Length': data.length * 10 });
      res.write(data);
    });
    const controller = new AbortController();
    // A whole download, then one whose reader gives up (a full disk, a failed pipeline).
    const whole = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Length': data.length });
      res.end(data);
    });
    await drain((await nfcGet({ url: whole, agent, signal: controller.signal })).body);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    const { body } = await nfcGet({ url, agent, signal: controller.signal });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    const failed = new Promise((resolve) => body.once('error', resolve));
    body.destroy(new Error('the NAS is full'));
    expect(((await failed) as Error).message).toBe('the NAS is full');
    await new Promise((resolve) => setImmediate(resolve));
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('reads over TLS through the pinned-thumbprint agent, and never sends the request to another certificate', async () => {
    const { key, cert, thumbprint } = selfSignedCertificate();
    let requests = 0;
    const server = https.createServer({ key, cert }, (_req, res) => {
      requests++;
      res.writeHead(200, { 'Content-Length': data.length });
      res.end(data);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => server.close());
    const url = new URL(`https://127.0.0.1:${(server.address() as AddressInfo).port}/nfc/l/disk-0.vmdk`);

    const pinned = createHttpAgent(url, { kind: 'thumbprint', thumbprint });
    const { body } = await nfcGet({ url, agent: pinned });
    expect(sha((await drain(body)).bytes)).toBe(sha(data));

    const wrong = createHttpAgent(url, { kind: 'thumbprint', thumbprint: 'AB'.repeat(32) });
    await expect(nfcGet({ url, agent: wrong })).rejects.toThrow(/not the pinned/);
    expect(requests).toBe(1);

    const insecure = createHttpAgent(url, { kind: 'insecure' });
    expect(sha((await drain((await nfcGet({ url, agent: insecure })).body)).bytes)).toBe(sha(data));
  });

  it('sends nothing on a pinned TLS connection whose handshake ends after the download was aborted', async () => {
    const { key, cert, thumbprint } = selfSignedCertificate();
    let requested!: () => void;
    const request = new Promise<void>((resolve) => {
      requested = resolve;
    });
    const server = https.createServer({ key, cert }, (_req, res) => {
      requested();
      res.end();
    });
    let closed!: () => void;
    const serverSocketClosed = new Promise<void>((resolve) => {
      closed = resolve;
    });
    // The TCP connection, not the TLS one: a client that closes at once may not finish its side.
    server.on('connection', (socket: net.Socket) => socket.on('close', closed));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => server.close());
    // Between the two, a proxy that holds the server's handshake bytes back until released.
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let clientArrived!: () => void;
    const arrived = new Promise<void>((resolve) => {
      clientArrived = resolve;
    });
    const proxy = net.createServer((client) => {
      const upstream = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
      client.pipe(upstream);
      upstream.on('data', (c: Buffer) => void released.then(() => client.write(c)));
      upstream.on('end', () => void released.then(() => client.end()));
      for (const s of [client, upstream]) s.on('error', () => undefined);
      client.on('close', () => upstream.destroy());
      clientArrived();
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    closers.push(() => proxy.close());
    const url = new URL(`https://127.0.0.1:${(proxy.address() as AddressInfo).port}/nfc/l/disk-0.vmdk`);

    const controller = new AbortController();
    const getting = nfcGet({
      url,
      agent: createHttpAgent(url, { kind: 'thumbprint', thumbprint }),
      signal: controller.signal,
    });
    await arrived;
    controller.abort(new Error('cancelled during the handshake'));
    await expect(getting).rejects.toThrow('cancelled during the handshake');
    // The handshake completes now, with the right certificate: the socket must be closed unused.
    release();
    await Promise.race([serverSocketClosed, request]);
    let asked = false;
    void request.then(() => {
      asked = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(asked).toBe(false);
  });
});
