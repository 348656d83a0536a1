/**
 * Issue 18, agent API: the signature headers, the clock window and the agent are checked before
 * any of the body is read; bodies are limited per call (local/agent-api `agentBodyLimits`); a 413
 * and every refusal made before the body say `Connection: close` and close the connection. Raw
 * TCP, so that the test controls how much of a body is sent and when.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentIdentity, initAgentIdentity } from '../../agent/identity/agent-identity.ts';
import { AgentApiClient } from '../../agent/runtime/api-client.ts';
import { type ControlPlane, startControlPlane } from '../../local/control-plane.ts';
import { agentBodyLimits } from '../../shared/agent-api.ts';

let plane: ControlPlane;
let dir: string;
let identity: AgentIdentity;
let agent: AgentApiClient;
let revoked: AgentApiClient;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'odt-admission-'));
  plane = await startControlPlane({ stateDir: dir, approvers: ['bob'] });
  const keys = await mkdtemp(join(tmpdir(), 'odt-admission-keys-'));
  const [a, b] = await Promise.all(
    ['a', 'b'].map(async (n) => (await initAgentIdentity(join(keys, n), { commonName: n })).identity),
  );
  await rm(keys, { recursive: true, force: true });
  identity = a!;
  const enrolled = async (id: AgentIdentity) => {
    const client = new AgentApiClient({ server: plane.agentApi.url, keyPem: id.keyPem });
    await client.enroll((await plane.registry.issueCode('acme', 60_000, new Date())).code, id.certPem, 'x');
    return client;
  };
  agent = await enrolled(identity);
  revoked = await enrolled(b!);
  await plane.registry.revoke(revoked.id!, new Date());
}, 120_000);

afterAll(async () => {
  await plane?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** Body bytes the client had written when the answer's head arrived. */
  readonly sentBeforeAnswer: number;
  /** The server closed the connection after answering. */
  readonly closedByServer: boolean;
}

/**
 * Sends the request head, then the body in 64 KiB pieces (chunked when `chunked`), up to `total`
 * bytes or until the server answers, whichever comes first; after the first `pauseAfter` bytes it
 * waits for an answer for a while before it sends more (so a server that does not wait for the
 * body has answered by then).
 */
function rawRequest(
  path: string,
  headers: Record<string, string>,
  {
    total,
    chunked = false,
    pauseAfter = 64 << 10,
  }: { total: number; chunked?: boolean; pauseAfter?: number },
): Promise<RawAnswer> {
  const { port, hostname } = new URL(plane.agentApi.url);
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(Number(port), hostname);
    let received = Buffer.alloc(0);
    let sent = 0;
    let sentBeforeAnswer = -1;
    // Set when the client gives up (5 s after it stopped sending): the server did not close.
    let gaveUp = false;
    const headOf = () => {
      const end = received.indexOf('\r\n\r\n');
      return end < 0 ? undefined : end;
    };
    socket.on('data', (c: Buffer) => {
      received = Buffer.concat([received, c]);
      if (sentBeforeAnswer < 0 && headOf() !== undefined) sentBeforeAnswer = sent;
    });
    socket.on('error', () => {
      // A reset after the server closed: what was received is the answer.
    });
    socket.on('close', () => {
      const end = headOf();
      if (end === undefined) return reject(new Error(`no answer; sent ${sent} bytes`));
      const [statusLine, ...lines] = received.subarray(0, end).toString('latin1').split('\r\n');
      const h = Object.fromEntries(
        lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
      );
      resolve({
        status: Number(statusLine!.split(' ')[1]),
        headers: h,
        body: received.subarray(end + 4).toString('utf8'),
        sentBeforeAnswer,
        closedByServer: !gaveUp,
      });
    });
    const head = [
      `POST ${path} HTTP/1.1`,
      `Host: ${hostname}:${port}`,
      'Content-Type: application/json',
      chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${total}`,
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      '',
      '',
    ].join('\r\n');
    const piece = Buffer.alloc(64 << 10, 0x20);
    const answered = () => sentBeforeAnswer >= 0 || socket.destroyed;
    const write = (b: Buffer) =>
      new Promise<void>((done) => {
        const frame = chunked
          ? Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')])
          : b;
        if (socket.write(frame)) done();
        else socket.once('drain', done);
      });
    socket.once('connect', async () => {
      socket.write(head);
      try {
        while (sent < total && !answered()) {
          const n = Math.min(piece.length, total - sent);
          await write(piece.subarray(0, n));
          sent += n;
          if (sent === pauseAfter) {
            for (let i = 0; i < 40 && !answered(); i++) await new Promise((r) => setTimeout(r, 50));
          }
        }
        if (!answered() && chunked) socket.write('0\r\n\r\n');
      } catch {
        // The server closed while we wrote: the answer is in.
      }
      // A server still waiting for the body would leave this open: give it 5 s, then give up.
      setTimeout(() => {
        gaveUp = true;
        socket.destroy();
      }, 5000).unref();
    });
  });
}

const big = 50 << 20;

describe('the agent API checks the head before the body', () => {
  it('refuses a request without signature headers before reading its 50 MB body, and closes', async () => {
    const r = await rawRequest('/agent/tasks', {}, { total: big });
    expect(r.status).toBe(401);
    expect(JSON.parse(r.body)).toMatchObject({ code: 'UNAUTHORIZED' });
    expect(r.headers.connection).toBe('close');
    // Answered after the first 64 KiB, the client still holding the rest.
    expect(r.sentBeforeAnswer).toBe(64 << 10);
    expect(r.closedByServer).toBe(true);
  });

  it('refuses an unknown agent, a revoked one and a stale timestamp the same way', async () => {
    const signed = agent.signHeaders('POST', '/agent/inventory', '');
    const cases: [Record<string, string>, RegExp][] = [
      [{ ...signed, 'x-odt-agent': 'agt-000000000000' }, /unknown agent/],
      [revoked.signHeaders('POST', '/agent/inventory', ''), /was revoked/],
      [
        agent.signHeaders('POST', '/agent/inventory', '', undefined, Date.now() - 10 * 60_000),
        /outside ±5 minutes/,
      ],
      [{ 'x-odt-agent': agent.id! }, /missing x-odt-timestamp/],
    ];
    for (const [headers, why] of cases) {
      const r = await rawRequest('/agent/inventory', headers, { total: big });
      expect(r.status, String(why)).toBe(401);
      expect(JSON.parse(r.body).error).toMatch(why);
      expect(r.headers.connection).toBe('close');
      expect(r.sentBeforeAnswer).toBe(64 << 10);
    }
  });

  it('refuses an unsigned enrollment and an admin call without the token before their bodies', async () => {
    for (const path of ['/agents/enroll', '/admin/enrollments']) {
      const r = await rawRequest(path, {}, { total: big });
      expect(r.status, path).toBe(401);
      expect(r.headers.connection).toBe('close');
      expect(r.sentBeforeAnswer).toBe(64 << 10);
    }
  });
});

describe('the agent API limits bodies', () => {
  it('answers 413 with Connection: close to a declared length over the limit, before the body', async () => {
    const headers = agent.signHeaders('POST', '/agent/tasks/t-1/heartbeat', '');
    const r = await rawRequest('/agent/tasks/t-1/heartbeat', headers, { total: agentBodyLimits.task + 1 });
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body)).toMatchObject({ code: 'TOO_LARGE' });
    expect(JSON.parse(r.body).error).toContain(`over ${agentBodyLimits.task} bytes`);
    expect(r.headers.connection).toBe('close');
    expect(r.sentBeforeAnswer).toBe(64 << 10);
    expect(r.closedByServer).toBe(true);
  });

  it('answers 413 with Connection: close once a chunked body passes the limit, and closes', async () => {
    const headers = agent.signHeaders('POST', '/agent/tasks/t-1/complete', '');
    const r = await rawRequest('/agent/tasks/t-1/complete', headers, {
      total: 8 << 20,
      chunked: true,
      pauseAfter: 0,
    });
    expect(r.status).toBe(413);
    expect(r.headers.connection).toBe('close');
    expect(r.closedByServer).toBe(true);
  });

  it('fits the largest legitimate calls: 200 items of results or progress, a large inventory', async () => {
    const names = Array.from({ length: 10 }, (_, i) => `${'v'.repeat(250)}-${i}`);
    const outcomes = Array.from({ length: 200 }, (_, i) => ({
      itemId: `item-${i + 1}`,
      ok: false,
      reason: 'r'.repeat(1000),
      code: 'IMPORT_FAILED',
      bytes: 1e12,
      state: 'powered-on',
      names: { vcenter: names, vcd: 'x'.repeat(255) },
    }));
    const progress = Array.from({ length: 200 }, (_, i) => ({
      itemId: `item-${i + 1}`,
      bytesDone: 1e12,
      bytesTotal: 2e12,
      bytesPerSecond: 1e9,
      stage: 'verifying',
    }));
    const complete = JSON.stringify({ outcomes }).length;
    const heartbeat = JSON.stringify({ progress }).length;
    expect(complete).toBeLessThan(agentBodyLimits.task);
    expect(heartbeat).toBeLessThan(agentBodyLimits.task);

    // An inventory of 5,000 VMs, sent signed, is taken.
    const items = Array.from({ length: 5000 }, (_, i) => ({
      kind: 'vm',
      name: `vm-${i}`,
      path: `/DC0/vm/team-${i % 50}/vm-${i}`,
      ref: { type: 'VirtualMachine', value: `vm-${1000 + i}` },
      powerState: 'poweredOff',
      guest: 'Ubuntu Linux (64-bit)',
      disks: [
        { label: 'Hard disk 1', capacityBytes: 42949672960, fileName: `[datastore1] vm-${i}/vm-${i}.vmdk` },
      ],
      sizeBytes: 42949672960,
      networks: ['VM Network'],
    }));
    const inventory = JSON.stringify({ items }).length;
    expect(inventory).toBeGreaterThan(agentBodyLimits.task);
    expect(inventory).toBeLessThan(agentBodyLimits.inventory);
    await agent.reportInventory(items);
    expect((await plane.registry.getInventory('acme'))?.items).toHaveLength(5000);
    console.info(
      `largest legitimate bodies: complete ${complete} B, heartbeat ${heartbeat} B (limit ${agentBodyLimits.task}); inventory of 5,000 VMs ${inventory} B (limit ${agentBodyLimits.inventory})`,
    );
  });
});
