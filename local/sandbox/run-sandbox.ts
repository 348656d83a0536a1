import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { initAgentIdentity } from '../../agent/identity/agent-identity.ts';
import { initNodeIdentity } from '../../agent/identity/node-identity.ts';
import { describeMarker, writeNasMarker } from '../../agent/nas/nas-marker.ts';
import { exportRole, importRole } from '../../agent/runtime/roles.ts';
import { runAgent } from '../../agent/runtime/run-agent.ts';
import { CodedError } from '../../core/errors.ts';
import type { Transfer, TransferRequest } from '../../core/index.ts';
import { silentLogger } from '../../core/ports/logger.ts';
import { keyDestroyed } from '../../core/service/transfer-service.ts';
import { poll, sleep } from '../../core/wait.ts';
import { type RunningFakeVcd, startFakeVcd } from '../../test/peers/vcd/fake-vcd.ts';
import { buildSimulator, type RunningSimulator, startSimulator } from '../../test/peers/vsphere/simulator.ts';
import { type ControlPlane, startControlPlane } from '../control-plane.ts';

export interface SandboxOptions {
  /** Where state, logs and the NAS folder go; emptied first. Default `./.odt/sandbox`. */
  readonly dir?: string;
  /** Size of each disk in the customer's simulator. Default 64 MiB. */
  readonly diskSize?: string;
  readonly out: NodeJS.WritableStream;
  readonly signal?: AbortSignal;
  /**
   * Default true: the transfer is wiped at the end, and the ODT node destroys its key. False
   * (`odt sandbox --keep-key`): it stops after the report, with the key in
   * `odt-node/transfer-keys/`, so that a package can be opened by hand (docs/package-format.md).
   */
  readonly wipe?: boolean;
  /** Called after the report, before the wipe, with the transfer and the sandbox folder (tests). */
  readonly beforeWipe?: (t: Transfer, dir: string) => Promise<void>;
}

export interface SandboxResult {
  readonly transfer: Transfer;
  readonly dir: string;
  readonly bytes: number;
  readonly exportSeconds: number;
  readonly importSeconds: number;
  readonly totalSeconds: number;
  /** What the fake vCloud Director holds at the end, seen from its side. */
  readonly vcd: {
    readonly vapps: readonly { name: string; deployed: boolean; poweredOn: boolean; connected: boolean }[];
    readonly templates: readonly { name: string; catalog: string }[];
  };
}

export class SandboxSetupError extends CodedError<'SANDBOX_SETUP'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SANDBOX_SETUP', message, options);
    this.name = 'SandboxSetupError';
  }
}

/**
 * The whole product on one machine: the control plane (workflow, store, agent API), two vSphere
 * simulators (customer and provider), the fake vCloud Director, a NAS folder, an export agent and
 * an ODT node enrolled with one-time codes, and one transfer of a VM with two disks, a template
 * and a vApp from request to wipe — moved only by the service layer Slack uses and the agents'
 * own polling.
 */
export async function runSandbox(options: SandboxOptions): Promise<SandboxResult> {
  const dir = resolve(options.dir ?? '.odt/sandbox');
  const say = (line: string) => options.out.write(`${line}\n`);
  const started = Date.now();
  const cleanups: (() => Promise<unknown>)[] = [];
  const stopAgents = new AbortController();
  const agentRuns: Promise<unknown>[] = [];
  try {
    let binary: string;
    try {
      binary = await buildSimulator();
    } catch (error) {
      throw new SandboxSetupError(
        'The vSphere simulator cannot be built here. Install Go and the govmomi source from Debian: ' +
          '`sudo apt-get install golang-go golang-github-vmware-govmomi-dev age` (or `sudo bash scripts/install-system-deps.sh`), then run `npm start` again.',
        { cause: error },
      );
    }
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const nas = join(dir, 'nas');
    await mkdir(nas);
    // As on a real site, the NAS is marked once (`odt nas init --plain-folder`: nothing is mounted
    // here); the export agent refuses a NAS folder without its marker.
    const marker = await writeNasMarker(nas, { name: 'sandbox-nas', plainFolder: true });
    say(`NAS folder ${nas} marked as ${describeMarker(marker)} (odt nas init ${nas} --plain-folder)`);
    say(
      'starting: customer vCenter, provider vCenter (vSphere simulators), vCloud Director (fake), control plane',
    );
    const customer: RunningSimulator = await startSimulator({
      binary,
      diskSize: options.diskSize ?? '64MiB',
      dataDir: join(dir, 'customer-vcenter'),
    });
    cleanups.push(() => customer.stop());
    const provider: RunningSimulator = await startSimulator({
      binary,
      apps: 0,
      templates: 0,
      dataDir: join(dir, 'provider-vcenter'),
    });
    cleanups.push(() => provider.stop());
    const vcd: RunningFakeVcd = await startFakeVcd({
      username: 'admin@System',
      password: 'sandbox-vcd',
      vcenter: { url: provider.url, username: provider.username, password: provider.password },
    });
    cleanups.push(() => vcd.stop());
    const plane: ControlPlane = await startControlPlane({
      stateDir: join(dir, 'state'),
      approvers: ['bob'],
      port: 0,
      heartbeatSeconds: 30,
    });
    cleanups.push(() => plane.close());

    // The node's long-term identity (for packages made by hand); each transfer gets its own key.
    await initNodeIdentity(join(dir, 'odt-node'));
    // The export agent pins the node's certificate on its own side: the recipient of each
    // transfer must be signed by it, whatever the control plane says (issue #18).
    const { identity: node } = await initAgentIdentity(join(dir, 'odt-node-agent'), {
      commonName: 'cloud-odt-node',
    });
    const acme = await plane.registry.issueCode('acme', 10 * 60_000, new Date());
    const cloud = await plane.registry.issueCode('cloud', 10 * 60_000, new Date());
    agentRuns.push(
      runAgent({
        server: plane.agentApi.url,
        dir: join(dir, 'export-agent'),
        code: acme.code,
        site: 'acme',
        name: 'acme-export-agent',
        signal: stopAgents.signal,
        pollMinMs: 100,
        pollMaxMs: 300,
        inventoryEveryMs: 0,
        log: silentLogger,
        role: exportRole({
          vcenter: {
            url: customer.url,
            username: customer.username,
            password: customer.password,
            trust: { kind: 'system' },
          },
          nas,
          nodeCertPem: node.certPem,
          dir: join(dir, 'export-agent'),
          parallel: 2,
        }),
      }),
      runAgent({
        server: plane.agentApi.url,
        dir: join(dir, 'odt-node-agent'),
        code: cloud.code,
        site: 'cloud',
        name: 'cloud-odt-node',
        signal: stopAgents.signal,
        pollMinMs: 100,
        pollMaxMs: 300,
        inventoryEveryMs: 0,
        log: silentLogger,
        role: importRole({
          vcenter: {
            url: provider.url,
            username: provider.username,
            password: provider.password,
            trust: { kind: 'system' },
          },
          nas,
          identityFile: join(dir, 'odt-node', 'identity.txt'),
          stateDir: join(dir, 'odt-node'),
          dir: join(dir, 'odt-node-agent'),
          vcd: { url: vcd.url, username: 'admin@System', password: 'sandbox-vcd', trust: { kind: 'system' } },
          parallel: 2,
        }),
      }),
    );
    cleanups.push(async () => {
      stopAgents.abort();
      await Promise.allSettled(agentRuns);
    });

    const request: TransferRequest = {
      site: 'acme',
      providerSite: 'cloud',
      requester: 'alice',
      items: [
        {
          kind: 'vm',
          source: 'DC0_H0_VM1',
          target: { vdc: 'acme-vdc', network: 'acme-net', deploy: true, powerOn: true },
        },
        {
          kind: 'template',
          source: 'DC0_C0_TPL0',
          // Into the catalog, and (deploy, powerOn) a vApp instantiated from it, running.
          target: {
            vdc: 'acme-vdc',
            placement: 'catalog',
            catalog: 'acme-catalog',
            network: 'acme-net',
            deploy: true,
            powerOn: true,
          },
        },
        {
          kind: 'vapp',
          source: 'DC0_C0_APP0',
          target: { vdc: 'acme-vdc', network: 'acme-net', deploy: true, powerOn: true },
        },
      ],
    };
    const svc = plane.service;
    let t = await svc.request(request);
    say(`alice requested ${t.id}: a VM with two disks, a template (to run from the catalog) and a vApp`);
    const watcher = watch(svc, t.id, say, options.signal);
    await svc.approve(t.id, 'bob');
    say('bob approved (four eyes: alice could not)');
    await svc.event(t.id, 'appliance-sent', 'bob');
    await svc.event(t.id, 'appliance-connected', 'alice');
    t = await waitFor(svc, t.id, (x) => x.phase === 'exported' || x.phase === 'failed', options.signal);
    watcher.render(t);
    if (t.phase === 'failed')
      throw new Error(
        `the export failed: ${t.items.map((i) => `${i.source}: ${i.result.reason ?? i.result.state}`).join('; ')}`,
      );
    await svc.event(t.id, 'shipped', 'alice', { carrier: 'DHL', tracking: 'JD014600006281230' });
    await svc.event(t.id, 'received', 'bob');
    t = await waitFor(
      svc,
      t.id,
      (x) => ['completed', 'completed-with-errors', 'failed'].includes(x.phase),
      options.signal,
    );
    watcher.render(t);
    await options.beforeWipe?.(t, dir);
    if (options.wipe !== false) {
      await svc.event(t.id, 'wiped', 'bob');
      say('bob confirmed the NAS erase; the ODT node destroys the transfer key');
    }
    // Wiped once the node has destroyed the transfer's key and signed that it did.
    if (options.wipe !== false)
      t = await waitFor(svc, t.id, (x) => x.phase === 'wiped' && keyDestroyed(x), options.signal);
    watcher.stop();
    watcher.render(t);
    const held = vcd.state();
    const seen: SandboxResult['vcd'] = {
      vapps: held.vapps.map((a) => ({
        name: a.name,
        deployed: a.deployed,
        poweredOn: a.vms.length > 0 && a.vms.every((v) => v.poweredOn),
        connected: a.vms.every((v) => v.nics.length > 0 && v.nics.every((n) => n.isConnected)),
      })),
      templates: held.templates.map((x) => ({ name: x.name, catalog: x.catalog })),
    };
    const phaseAt = (p: string) => Date.parse(t.history.find((h) => h.phase === p)?.at ?? '');
    const bytes = t.items.reduce((s, i) => s + i.result.bytes, 0);
    return {
      transfer: t,
      dir,
      bytes,
      exportSeconds: (phaseAt('exported') - phaseAt('exporting')) / 1000,
      importSeconds:
        (phaseAt('completed') - phaseAt('importing') ||
          phaseAt('completed-with-errors') - phaseAt('importing')) / 1000,
      totalSeconds: (Date.now() - started) / 1000,
      vcd: seen,
    };
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
}

/** The transfer once `done` holds, read every 100 ms; gives up after 10 minutes. */
function waitFor(
  svc: ControlPlane['service'],
  id: string,
  done: (t: Transfer) => boolean,
  signal?: AbortSignal,
): Promise<Transfer> {
  return poll({
    what: `transfer ${id} to get on (sandbox)`,
    until: async () => {
      const t = await svc.get(id);
      return done(t) ? t : undefined;
    },
    intervalMs: 100,
    timeoutMs: 10 * 60_000,
    signal,
  });
}

/**
 * Prints each phase and item state change as it happens (polled, and at each milestone). Phases
 * come from the transfer's history, so one that passed between two polls is printed too.
 */
function watch(
  svc: ControlPlane['service'],
  id: string,
  say: (l: string) => void,
  signal?: AbortSignal,
): { stop(): void; render(t: Transfer): void } {
  // History entries read so far, and the last phase printed (a note, such as a retry, keeps it).
  let read = 0;
  let last = '';
  const seen = new Map<string, string>();
  let stopped = false;
  const render = (t: Transfer) => {
    for (; read < t.history.length; read++) {
      const phase = t.history[read]!.phase;
      if (phase !== last) say(`  transfer → ${phase}`);
      last = phase;
    }
    for (const i of t.items) {
      const s = `${i.result.state}${i.result.reason ? ` (${i.result.reason})` : ''}`;
      if (seen.get(i.id) !== s) {
        seen.set(i.id, s);
        say(`    ${i.id} ${i.kind.padEnd(8)} ${i.source.padEnd(14)} ${s}`);
      }
    }
  };
  const stopping = new AbortController();
  const pause = signal ? AbortSignal.any([signal, stopping.signal]) : stopping.signal;
  void (async () => {
    while (!stopped && !pause.aborted) {
      const t = await svc.get(id).catch(() => undefined);
      if (t && !stopped) render(t);
      // Rejects when stopped or interrupted, which ends the loop.
      await sleep(100, pause).catch(() => undefined);
    }
  })();
  return {
    render,
    stop() {
      stopped = true;
      stopping.abort();
    },
  };
}
