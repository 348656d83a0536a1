// Launcher of the vSphere test peer (test/peers/vsphere/vcsim, see README.md there).

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export type DiskContent = 'random' | 'pattern' | 'sparse' | 'zero';

/**
 * Where NFC is served (-nfc-host): 'separate' = a second listener on 127.0.0.2 with its own
 * certificate, named by the device URLs (vCenter handing out ESXi host URLs); 'direct' =
 * `https://*` device URLs served by the SDK listener (an ESXi host connected to directly).
 */
export type NfcHost = 'separate' | 'direct';
/** sslThumbprint of device URLs with TLS (-nfc-thumbprint). */
export type NfcThumbprint = 'right' | 'wrong' | 'none';
/** Framing of export downloads (-nfc-download). */
export type NfcDownload = 'length' | 'chunked' | 'close';

/**
 * The nfcHost used when a test does not choose one: 'separate', as a vCenter with ESXi hosts
 * (issue #17); keep it in step with defaultNFCHost in vcsim/main.go. VCSIM_NFC_HOST=direct
 * overrides it for a whole run.
 */
export const defaultNfcHost: NfcHost = 'separate';

function nfcHostDefault(): NfcHost {
  const env = process.env.VCSIM_NFC_HOST;
  if (env === undefined || env === '') return defaultNfcHost;
  if (env === 'separate' || env === 'direct') return env;
  throw new Error(`VCSIM_NFC_HOST must be 'separate' or 'direct', got '${env}'`);
}

/** One entry of GET /_test/nfc-requests. */
export interface NfcRequest {
  /** 'nfc' = the separate NFC listener; 'sdk' = an /nfc/ request to the SDK listener. */
  listener: 'nfc' | 'sdk';
  method: string;
  path: string;
  /** The request carried a vmware_soap_session cookie (the vCenter session). */
  sessionCookie: boolean;
}

export interface SimulatorOptions {
  /** A binary from buildSimulator(); built (or found in the cache) when omitted. */
  binary?: string;
  /** Login user name (default "user"); no other name is accepted. */
  username?: string;
  /** Login password (default "pass"). */
  password?: string;
  /** Serve https with a fresh self-signed certificate. */
  tls?: boolean;
  /** Directory for datastores, uploads and inventory.json; default a new temp dir, removed by stop(). */
  dataDir?: string;
  /** VMs per standalone host, per cluster root pool and per vApp (-vm, default 2). */
  vms?: number;
  /** vApps per cluster (-app, default 1). */
  apps?: number;
  /** Templates per cluster (-templates, default 1). */
  templates?: number;
  /** VM names left powered on; '*' = all (-powered-on, default ['DC0_H0_VM0']). */
  poweredOn?: string[] | '*';
  /** Powered-on VMs whose VMware Tools run, so a snapshot can be quiesced (-tools-running, default none). */
  toolsRunning?: string[] | '*';
  /** VMs whose quiesced snapshots fail with ApplicationQuiesceFault (-quiesce-fails). */
  quiesceFails?: string[];
  /** Privilege ids HasPrivilegeOnEntity answers false for (-deny-privileges). */
  denyPrivileges?: string[];
  /** Disks per VM (-disks-per-vm, default 2). */
  disksPerVm?: number;
  /** Size of each disk: bytes, or a string like "4MiB" (-disk-size, default 1MiB). */
  diskSize?: number | string;
  /** Disk content (-disk-content, default random). */
  diskContent?: DiskContent;
  /** Seed of random/sparse content (-seed, default 1). */
  seed?: number;
  /** NFC lease timeout in ms (-lease-timeout, default 300 s). */
  leaseTimeoutMs?: number;
  /** Time a new lease stays initializing, in ms (-lease-ready-delay, default 200). */
  leaseReadyDelayMs?: number;
  /** The server aborts any lease after this many NFC bytes (-abort-after-bytes). */
  abortAfterBytes?: number;
  /** At most this many NFC bytes per second per lease (-nfc-rate): a slow host or link. */
  nfcBytesPerSecond?: number;
  /** Where NFC is served (-nfc-host); default defaultNfcHost (or env VCSIM_NFC_HOST). */
  nfcHost?: NfcHost;
  /** sslThumbprint of device URLs with TLS (-nfc-thumbprint, default 'right'). */
  nfcThumbprint?: NfcThumbprint;
  /** Framing of export downloads (-nfc-download, default 'length'). */
  nfcDownload?: NfcDownload;
  /**
   * With nfcDownload chunked or close: each download ends the normal way after this many bytes,
   * the lease still ready (-nfc-short-body): a cut the client cannot tell from the end.
   */
  nfcShortBody?: number;
  /** false: WaitForUpdatesEx/WaitForUpdates answer MethodNotFound (-no-wait-for-updates). Default true. */
  waitForUpdates?: boolean;
  /** SOAP trace on the simulator's stderr. */
  trace?: boolean;
  /** Echo the simulator's stderr to this process's stderr (also: env VCSIM_LOG=1). */
  log?: boolean;
  /** How long to wait for the URL line (default 30 s). */
  startTimeoutMs?: number;
}

export interface InventoryDisk {
  key: number;
  /** HttpNfcLeaseDeviceUrl.key of this disk in an export lease, "/vm-42/disk:0". */
  deviceKey: string;
  fileName: string;
  /** Absolute path of the file an export of this disk serves. */
  path: string;
  size: number;
  capacityInKB: number;
  sha256: string;
}

export interface InventoryVm {
  moref: string;
  name: string;
  powerState: 'poweredOn' | 'poweredOff' | 'suspended';
  template: boolean;
  vApp?: string;
  disks: InventoryDisk[];
}

export interface Inventory {
  datastores: { name: string; path: string }[];
  vms: InventoryVm[];
  vApps: { moref: string; name: string; vms: string[] }[];
}

export interface RunningSimulator {
  /** SDK URL without credentials, e.g. http://127.0.0.1:40123/sdk. */
  url: string;
  /** The URL line as printed, with credentials. */
  urlWithCredentials: string;
  host: string;
  port: number;
  username: string;
  password: string;
  dataDir: string;
  inventoryPath: string;
  uploadsDir: string;
  /** SHA-256 of the certificate (colon hex, as tls getPeerCertificate().fingerprint256); TLS only. */
  thumbprint?: string;
  /** SHA-1 of the certificate, the form device URLs carry in sslThumbprint; TLS only. */
  thumbprintSha1?: string;
  /** Base URL of the separate NFC listener, e.g. https://127.0.0.2:40125; undefined in direct mode. */
  nfcUrl?: string;
  /** SHA-1 of the NFC listener's certificate (what sslThumbprint says with 'right'); separate mode with TLS. */
  nfcThumbprintSha1?: string;
  /** SHA-256 of the NFC listener's certificate (colon hex); separate mode with TLS. */
  nfcThumbprint?: string;
  pid: number;
  /** The NFC requests the simulator saw (GET /_test/nfc-requests), oldest first. */
  nfcRequests(): Promise<NfcRequest[]>;
  /** Forgets them (DELETE /_test/nfc-requests). */
  clearNfcRequests(): Promise<void>;
  readInventory(): Promise<Inventory>;
  /** The last lines the simulator wrote to stderr (its log). */
  logTail(): string;
  /** How the process ended, or undefined while it runs. */
  exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** SIGTERM, then wait for the exit (SIGKILL after 5 s); removes a data dir it created. */
  stop(): Promise<void>;
}

const building = new Map<string, Promise<string>>();

/** Runs scripts/build-vcsim.sh for one program (a no-op when current) and resolves with its path. */
function buildProgram(program: 'vcsim' | 'govmomi-client'): Promise<string> {
  let pending = building.get(program);
  if (pending) return pending;
  pending = new Promise<string>((resolvePath, reject) => {
    const child = spawn('bash', [join(repoRoot, 'scripts/build-vcsim.sh'), program], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (process.env.VCSIM_LOG) process.stderr.write(d);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const path = out.trim().split('\n').pop()?.trim();
      if (code === 0 && path) resolvePath(path);
      else reject(new Error(`scripts/build-vcsim.sh ${program} failed (exit ${code}):\n${err.trim()}`));
    });
  });
  building.set(program, pending);
  pending.catch(() => {
    building.delete(program);
  });
  return pending;
}

/**
 * Runs scripts/build-vcsim.sh (a no-op when the binary is current) and resolves with its path.
 * VCSIM_BINARY=/path/to/vcsim skips the build and uses that binary (e.g. one built with -race).
 */
export function buildSimulator(): Promise<string> {
  const override = process.env.VCSIM_BINARY;
  if (override) return Promise.resolve(resolve(override));
  return buildProgram('vcsim');
}

/**
 * Builds test/peers/vsphere/govmomi-client (the peer checked with govmomi's own client) and
 * resolves with its path; cached like the simulator.
 */
export function buildGovmomiClient(): Promise<string> {
  return buildProgram('govmomi-client');
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

function flagsFor(opts: SimulatorOptions, dataDir: string): string[] {
  const args = ['-listen', '127.0.0.1:0', '-data-dir', dataDir];
  const add = (flag: string, value: string | number | undefined) => {
    if (value !== undefined) args.push(flag, String(value));
  };
  add('-username', opts.username);
  add('-password', opts.password);
  if (opts.tls) args.push('-tls');
  add('-vm', opts.vms);
  add('-app', opts.apps);
  add('-templates', opts.templates);
  if (opts.poweredOn !== undefined)
    add('-powered-on', opts.poweredOn === '*' ? '*' : opts.poweredOn.join(','));
  if (opts.toolsRunning !== undefined)
    add('-tools-running', opts.toolsRunning === '*' ? '*' : opts.toolsRunning.join(','));
  if (opts.denyPrivileges !== undefined) add('-deny-privileges', opts.denyPrivileges.join(','));
  if (opts.quiesceFails !== undefined) add('-quiesce-fails', opts.quiesceFails.join(','));
  add('-disks-per-vm', opts.disksPerVm);
  add('-disk-size', opts.diskSize);
  add('-disk-content', opts.diskContent);
  add('-seed', opts.seed);
  if (opts.leaseTimeoutMs !== undefined) add('-lease-timeout', `${opts.leaseTimeoutMs}ms`);
  if (opts.leaseReadyDelayMs !== undefined) add('-lease-ready-delay', `${opts.leaseReadyDelayMs}ms`);
  add('-abort-after-bytes', opts.abortAfterBytes);
  add('-nfc-rate', opts.nfcBytesPerSecond);
  add('-nfc-host', opts.nfcHost ?? nfcHostDefault());
  add('-nfc-thumbprint', opts.nfcThumbprint);
  add('-nfc-download', opts.nfcDownload);
  add('-nfc-short-body', opts.nfcShortBody);
  if (opts.waitForUpdates === false) args.push('-no-wait-for-updates');
  if (opts.trace) args.push('-trace');
  return args;
}

interface InfoLine {
  dataDir: string;
  inventory: string;
  uploads: string;
  thumbprintSha1?: string;
  thumbprintSha256?: string;
  nfcUrl?: string;
  nfcThumbprintSha1?: string;
  nfcThumbprintSha256?: string;
}

/**
 * One request to the test control endpoint on the SDK listener. Over https the certificate must
 * be the one the simulator reported (pinSha256).
 */
function controlRequest(
  sdkUrl: string,
  method: string,
  path: string,
  pinSha256: string | undefined,
): Promise<{ status: number; body: string }> {
  const u = new URL(path, sdkUrl);
  const isTls = u.protocol === 'https:';
  return new Promise((resolveResponse, reject) => {
    const req = (isTls ? https : http).request(
      u,
      { method, agent: false, ...(isTls ? { rejectUnauthorized: false } : {}) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolveResponse({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (isTls) {
      req.on('socket', (socket) => {
        socket.on('secureConnect', () => {
          const seen = (socket as TLSSocket).getPeerCertificate().fingerprint256;
          if (seen !== pinSha256)
            req.destroy(
              new Error(`the simulator's certificate ${seen} is not the one it reported (${pinSha256})`),
            );
        });
      });
    }
    req.end();
  });
}

/** Starts a simulator on 127.0.0.1 with a free port and resolves once it serves. */
export async function startSimulator(opts: SimulatorOptions = {}): Promise<RunningSimulator> {
  const binary = opts.binary ?? (await buildSimulator());
  const ownDataDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'sneakernet-vcsim-')));
  const echo = opts.log ?? Boolean(process.env.VCSIM_LOG);

  const child = spawn(binary, flagsFor(opts, dataDir), { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  void exited.then(() => running.delete(child));

  // Keep draining stderr (the simulator logs every call) so the pipe never fills.
  const tail: string[] = [];
  createInterface({ input: child.stderr }).on('line', (line) => {
    tail.push(line);
    if (tail.length > 300) tail.shift();
    if (echo) process.stderr.write(`[vcsim ${child.pid}] ${line}\n`);
  });

  const lines: string[] = [];
  const stdout = createInterface({ input: child.stdout });
  const startTimeout = opts.startTimeoutMs ?? 30_000;
  const header = await new Promise<[string, InfoLine]>((resolveHeader, reject) => {
    const onError = (err: Error) => fail(err);
    const onExit = (code: number | null, signal: string | null) =>
      fail(new Error(`vcsim exited early (code ${code}, signal ${signal})`));
    const timer = setTimeout(
      () => fail(new Error(`vcsim printed no URL within ${startTimeout} ms`)),
      startTimeout,
    );
    const done = () => {
      clearTimeout(timer);
      child.off('error', onError);
      child.off('exit', onExit);
    };
    function fail(err: Error) {
      done();
      child.kill('SIGKILL');
      reject(new Error(`${err.message}\n${tail.slice(-20).join('\n')}`));
    }
    child.on('error', onError);
    child.on('exit', onExit);
    stdout.on('line', (line) => {
      lines.push(line);
      if (lines.length !== 2) return;
      done();
      try {
        resolveHeader([lines[0] ?? '', JSON.parse(lines[1] ?? '') as InfoLine]);
      } catch (err) {
        fail(err as Error);
      }
    });
  }).catch(async (err: unknown) => {
    await exited;
    if (ownDataDir) await rm(dataDir, { recursive: true, force: true });
    throw err;
  });

  const [urlLine, info] = header;
  const parsed = new URL(urlLine);
  const url = new URL(urlLine);
  url.username = '';
  url.password = '';

  let stopping: Promise<void> | undefined;
  return {
    url: url.toString(),
    urlWithCredentials: urlLine,
    host: parsed.hostname,
    port: Number(parsed.port),
    username: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    dataDir: info.dataDir,
    inventoryPath: info.inventory,
    uploadsDir: info.uploads,
    thumbprint: info.thumbprintSha256,
    thumbprintSha1: info.thumbprintSha1,
    nfcUrl: info.nfcUrl,
    nfcThumbprintSha1: info.nfcThumbprintSha1,
    nfcThumbprint: info.nfcThumbprintSha256,
    pid: child.pid ?? 0,
    nfcRequests: async () => {
      const res = await controlRequest(url.toString(), 'GET', '/_test/nfc-requests', info.thumbprintSha256);
      if (res.status !== 200) throw new Error(`GET /_test/nfc-requests: HTTP ${res.status} ${res.body}`);
      return JSON.parse(res.body) as NfcRequest[];
    },
    clearNfcRequests: async () => {
      const res = await controlRequest(
        url.toString(),
        'DELETE',
        '/_test/nfc-requests',
        info.thumbprintSha256,
      );
      if (res.status !== 204) throw new Error(`DELETE /_test/nfc-requests: HTTP ${res.status} ${res.body}`);
    },
    readInventory: async () => JSON.parse(await readFile(info.inventory, 'utf8')) as Inventory,
    logTail: () => tail.join('\n'),
    exitStatus: () =>
      child.exitCode === null && child.signalCode === null
        ? undefined
        : { code: child.exitCode, signal: child.signalCode },
    stop: () => {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
          await exited;
          clearTimeout(timer);
        }
        if (ownDataDir) await rm(dataDir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

/** What a test needs of a simulator that may be shared (see sharedSimulator). */
export interface SimulatorHandle {
  url: string;
  username: string;
  password: string;
  dataDir: string;
  inventoryPath: string;
  /** Base URL of the separate NFC listener; undefined when NFC is served directly (see NfcHost). */
  nfcUrl?: string;
  /** True when this is the globalSetup's simulator. */
  shared: boolean;
  readInventory(): Promise<Inventory>;
  /** Stops a simulator started for the caller; does nothing to the shared one. */
  stop(): Promise<void>;
}

/** The values global-setup.ts provides; pass inject(...) of each. */
export interface ProvidedSimulator {
  url?: string;
  username?: string;
  password?: string;
  dataDir?: string;
  inventoryPath?: string;
  /** '' or undefined when the shared simulator serves NFC directly. */
  nfcUrl?: string;
  binary?: string;
}

/**
 * The globalSetup's shared simulator when its values were provided; otherwise (globalSetup not
 * configured, e.g. a single file run with another config) a fresh one with the same default
 * model, so a test file never depends on how it was started.
 */
export async function sharedSimulator(provided: ProvidedSimulator): Promise<SimulatorHandle> {
  const { url, username, password, dataDir, inventoryPath } = provided;
  if (url && username && password && dataDir && inventoryPath) {
    return {
      url,
      username,
      password,
      dataDir,
      inventoryPath,
      nfcUrl: provided.nfcUrl || undefined,
      shared: true,
      readInventory: async () => JSON.parse(await readFile(inventoryPath, 'utf8')) as Inventory,
      stop: async () => {},
    };
  }
  const sim = await startSimulator({ binary: provided.binary });
  return {
    url: sim.url,
    username: sim.username,
    password: sim.password,
    dataDir: sim.dataDir,
    inventoryPath: sim.inventoryPath,
    nfcUrl: sim.nfcUrl,
    shared: false,
    readInventory: sim.readInventory,
    stop: sim.stop,
  };
}
