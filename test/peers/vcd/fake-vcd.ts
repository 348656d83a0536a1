// A fake vCloud Director for tests: a node:http server that speaks the part of the vCloud API the
// ODT node uses, attached to a vSphere simulator whose VMs it imports.
//
// What each behaviour is written from (vCD API reference and Programming Guide, pyvcloud and
// go-vcloud-director files), what is simplified, and what is still assumed: README.md beside this file.

import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseVcdXml, type VcdNode } from '../../../agent/vcd/wire/xml.ts';
import { VimClient } from '../../../agent/vsphere/client.ts';
import { VimFaultError } from '../../../agent/vsphere/wire/soap-connection.ts';

const NS = {
  vcloud: 'http://www.vmware.com/vcloud/v1.5',
  vmext: 'http://www.vmware.com/vcloud/extension/v1.5',
  ovf: 'http://schemas.dmtf.org/ovf/envelope/1',
  versions: 'http://www.vmware.com/vcloud/versions',
};

export interface FakeVcdSeed {
  orgs: {
    name: string;
    vdcs: { name: string; networks?: string[] }[];
    catalogs?: string[];
  }[];
}

export interface FakeVcdOptions {
  port?: number;
  /** The provider administrator, `name@System`. */
  username: string;
  password: string;
  /** Tenant users: valid credentials, but not allowed on the provider login (403). */
  tenantUsers?: { username: string; password: string }[];
  /** The vSphere (simulator) attached to this vCD. */
  vcenter: { url: string; username: string; password: string; name?: string };
  seed?: FakeVcdSeed;
  apiVersions?: string[];
  /** Time a task spends in each of queued and running (default 30 ms). */
  taskStepMs?: number;
  /**
   * By operationName (e.g. `vdcImportVmAsVApp`), how long such a task stays running instead of
   * one task step; `Infinity`: until it is cancelled (POST {task}/action/cancel). A slow vCD, for
   * tests that interrupt a task wait. See README.md (Tasks).
   */
  taskRunningMs?: Readonly<Record<string, number>>;
  /** VM morefs whose import task ends in error. */
  failImportOf?: string[];
  /** Names of vApp templates whose instantiation task ends in error. */
  failInstantiateOf?: string[];
  /**
   * A second task started on every vApp or vApp template that an import or an instantiation
   * creates, embedded in the 201 answer next to the main one and ending after it (ten task steps
   * later); `fail` makes it end in error. Off by default. See README.md (Tasks).
   */
  companionTask?: { operationName: string; fail?: boolean };
}

export interface FakeNic {
  index: number;
  network: string;
  isConnected: boolean;
  allocation: string;
  ipAddress?: string;
  mac: string;
  adapterType: string;
}

interface Vm {
  id: string;
  name: string;
  moRef: string;
  parent: { kind: 'vapp' | 'template'; id: string };
  status: number;
  deployed: boolean;
  nics: FakeNic[];
  primaryNic: number | undefined;
}

interface NetConfig {
  networkName: string;
  parentNetworkId?: string;
  fenceMode: string;
}

interface VApp {
  id: string;
  name: string;
  description?: string;
  vdcId: string;
  status: number;
  deployed: boolean;
  vmIds: string[];
  networks: NetConfig[];
}

interface Template {
  id: string;
  name: string;
  vdcId: string;
  catalogId: string;
  status: number;
  vmIds: string[];
}

interface Task {
  id: string;
  operation: string;
  operationName: string;
  status: 'queued' | 'running' | 'success' | 'error' | 'canceled';
  owner: { href: string; name: string; type: string };
  startTime: string;
  endTime?: string;
  error?: { major: number; minor: string; message: string };
  /** Set by a cancel: what the task had created is removed (as a failure would). */
  undo?: () => void;
}

/** One request as the fake received it, and the status it answered. */
export interface FakeVcdCall {
  method: string;
  /** Path and query after URL parsing (percent-escapes as sent). */
  path: string;
  /** The request-target exactly as it came on the request line. */
  target: string;
  status: number;
  contentType?: string;
  accept?: string;
  /** The request body, when there was one. */
  body?: string;
}

export interface FakeVcdState {
  sessions: number;
  vapps: {
    href: string;
    name: string;
    vdc: string;
    status: number;
    deployed: boolean;
    networks: { name: string; parent?: string; fenceMode: string }[];
    vms: FakeVmState[];
  }[];
  templates: {
    href: string;
    name: string;
    vdc: string;
    catalog: string;
    status: number;
    vms: FakeVmState[];
  }[];
  tasks: { href: string; operationName: string; status: string; owner: string; error?: string }[];
  calls: FakeVcdCall[];
}

export interface FakeVmState {
  href: string;
  name: string;
  moRef: string;
  status: number;
  deployed: boolean;
  poweredOn: boolean;
  nics: FakeNic[];
}

export interface RunningFakeVcd {
  url: string;
  vimServerId: string;
  state(): FakeVcdState;
  /** Replaces the option taskRunningMs for the tasks started from now on. */
  setTaskRunningMs(value: Readonly<Record<string, number>>): void;
  stop(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly minor: string,
    message: string,
  ) {
    super(message);
  }
}

const bad = (message: string, minor = 'BAD_REQUEST') => new HttpError(400, minor, message);
const forbidden = (what: string) =>
  new HttpError(
    403,
    'ACCESS_TO_RESOURCE_IS_FORBIDDEN',
    `Either you need some or all of the following rights [${what}] to perform operations or the entity does not exist.`,
  );

const STATUS_NAME: Record<number, string> = {
  [-1]: 'FAILED_CREATION',
  0: 'UNRESOLVED',
  1: 'RESOLVED',
  4: 'POWERED_ON',
  8: 'POWERED_OFF',
};

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const attrs = (a: Record<string, string | number | boolean | undefined>) =>
  Object.entries(a)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${esc(String(v))}"`)
    .join('');

// ---- schema sequences checked on request bodies ---------------------------------------------

type Particle = [name: string, min: number, max: number];
const ANY = Number.POSITIVE_INFINITY;

const SEQ: Record<string, Particle[]> = {
  ImportVmAsVAppParams: [
    ['VCloudExtension', 0, ANY],
    ['Description', 0, 1],
    ['VAppParent', 0, 1],
    ['InstantiationParams', 0, 1],
    ['VmName', 0, 1],
    ['VAppScopedLocalId', 0, 1],
    ['ComputerName', 0, 1],
    ['VmMoRef', 1, 1],
    ['VdcStorageProfile', 0, 1],
    ['Vdc', 1, 1],
    ['ImportedDisk', 0, ANY],
  ],
  ImportVmIntoExistingVAppParams: [
    ['VCloudExtension', 0, ANY],
    ['VmName', 0, 1],
    ['VmDescription', 0, 1],
    ['VAppScopedLocalId', 0, 1],
    ['ComputerName', 0, 1],
    ['VmMoRef', 1, 1],
    ['VdcStorageProfile', 0, 1],
    ['VApp', 1, 1],
    ['ImportedDisk', 0, ANY],
  ],
  ImportVmAsVAppTemplateParams: [
    ['VCloudExtension', 0, ANY],
    ['Description', 0, 1],
    ['VmName', 0, 1],
    ['VAppScopedLocalId', 0, 1],
    ['ComputerName', 0, 1],
    ['VmMoRef', 1, 1],
    ['Vdc', 1, 1],
    ['VdcStorageProfile', 0, 1],
    ['Catalog', 0, 1],
  ],
  NetworkConnectionSection: [
    ['Info', 1, 1],
    ['PrimaryNetworkConnectionIndex', 0, 1],
    ['NetworkConnection', 0, ANY],
    ['Link', 0, ANY],
  ],
  NetworkConnection: [
    ['VCloudExtension', 0, ANY],
    ['NetworkConnectionIndex', 1, 1],
    ['IpAddress', 0, 1],
    ['IpType', 0, 1],
    ['SecondaryIpAddress', 0, 1],
    ['SecondaryIpType', 0, 1],
    ['ExternalIpAddress', 0, 1],
    ['IsConnected', 0, 1],
    ['MACAddress', 0, 1],
    ['IpAddressAllocationMode', 1, 1],
    ['SecondaryIpAddressAllocationMode', 0, 1],
    ['NetworkAdapterType', 0, 1],
  ],
  NetworkConfigSection: [
    ['Info', 1, 1],
    ['Link', 0, ANY],
    ['NetworkConfig', 0, ANY],
  ],
  NetworkConfig: [
    ['VCloudExtension', 0, ANY],
    ['Link', 0, ANY],
    ['Description', 0, 1],
    ['Configuration', 1, 1],
    ['IsDeployed', 0, 1],
  ],
  Configuration: [
    ['VCloudExtension', 0, ANY],
    ['BackwardCompatibilityMode', 0, 1],
    ['IpScopes', 0, 1],
    ['ParentNetwork', 0, 1],
    ['FenceMode', 1, 1],
    ['RetainNetInfoAcrossDeployments', 0, 1],
    ['Features', 0, 1],
    ['SyslogServerSettings', 0, 1],
    ['RouterInfo', 0, 1],
    ['SubInterface', 0, 1],
    ['DistributedInterface', 0, 1],
    ['GuestVlanAllowed', 0, 1],
    ['Connected', 0, 1],
    ['DualStackNetwork', 0, 1],
  ],
  DeployVAppParams: [['VCloudExtension', 0, ANY]],
  InstantiateVAppTemplateParams: [
    ['VCloudExtension', 0, ANY],
    ['Description', 0, 1],
    ['VAppParent', 0, 1],
    ['InstantiationParams', 0, 1],
    ['Source', 1, 1],
    ['IsSourceDelete', 0, 1],
    ['SourcedItem', 0, ANY],
    ['AllEULAsAccepted', 0, 1],
    ['ComputePolicy', 0, 1],
  ],
};

/** The ovf:Section_Type elements an InstantiationParams of a vApp may hold (Programming Guide). */
const VAPP_INSTANTIATION_SECTIONS = new Set([
  'NetworkConfigSection',
  'LeaseSettingsSection',
  'StartupSection',
]);

/** Checks a node's children against its schema sequence, the way a validating parser would. */
function checkSequence(node: VcdNode): void {
  if (node.name === 'InstantiationParams') {
    for (const c of node.children) {
      if (c.name === 'VCloudExtension') continue;
      if (!VAPP_INSTANTIATION_SECTIONS.has(c.name)) {
        throw bad(
          `Bad request: ${c.name} is not a section a vApp's InstantiationParams can hold (${[...VAPP_INSTANTIATION_SECTIONS].join(', ')}).`,
        );
      }
      checkSequence(c);
    }
    return;
  }
  const seq = SEQ[node.name];
  if (!seq) return;
  let i = 0;
  const counts = new Map<string, number>();
  for (const c of node.children) {
    while (i < seq.length && seq[i]![0] !== c.name) {
      const [name, min] = seq[i]!;
      if ((counts.get(name) ?? 0) < min) {
        throw bad(`Bad request: element ${name} is required in ${node.name} before ${c.name}.`);
      }
      i++;
    }
    if (i >= seq.length) {
      const known = seq.some(([n]) => n === c.name);
      throw bad(
        known
          ? `Bad request: element ${c.name} is out of order in ${node.name}; the schema order is ${seq.map(([n]) => n).join(', ')}.`
          : `Bad request: unexpected element ${c.name} in ${node.name}.`,
      );
    }
    const n = (counts.get(c.name) ?? 0) + 1;
    if (n > seq[i]![2]) throw bad(`Bad request: element ${c.name} appears more than once in ${node.name}.`);
    counts.set(c.name, n);
    checkSequence(c);
  }
  for (; i < seq.length; i++) {
    const [name, min] = seq[i]!;
    if ((counts.get(name) ?? 0) < min) throw bad(`Bad request: element ${name} is required in ${node.name}.`);
  }
}

function countElements(node: VcdNode, depth = 1): { count: number; depth: number } {
  let count = 1;
  let max = depth;
  for (const c of node.children) {
    const r = countElements(c, depth + 1);
    count += r.count;
    max = Math.max(max, r.depth);
  }
  return { count, depth: max };
}

const cmpVersion = (a: string, b: string) => Number(a) - Number(b);

// ---- the query service's filter (FIQL) -----------------------------------------------------

/** A parsed filter: constraints joined by ; (AND) and , (OR). */
type Fiql =
  | { kind: 'and' | 'or'; parts: Fiql[] }
  | { kind: 'constraint'; field: string; op: string; value: string };

const FIQL_OPERATORS = new Set(['==', '!=', '=gt=', '=lt=', '=ge=', '=le=']);

/**
 * Parses a filter as vCD does once the query string has been decoded: `;` AND (binding tighter than
 * `,` OR, as in FIQL), parentheses group, and inside a value a backslash makes the next character
 * literal, which is how `( ) , ; \` are written in a value. Anything else is a 400.
 */
function parseFiql(text: string): Fiql {
  let i = 0;
  const fail = (why: string): never => {
    throw bad(`Cannot parse the supplied filter "${text}": ${why} at character ${i + 1}.`);
  };
  const orExpr = (): Fiql => {
    const parts = [andExpr()];
    while (text[i] === ',') {
      i++;
      parts.push(andExpr());
    }
    return parts.length === 1 ? parts[0]! : { kind: 'or', parts };
  };
  const andExpr = (): Fiql => {
    const parts = [primary()];
    while (text[i] === ';') {
      i++;
      parts.push(primary());
    }
    return parts.length === 1 ? parts[0]! : { kind: 'and', parts };
  };
  const primary = (): Fiql => {
    if (text[i] !== '(') return constraint();
    i++;
    const inner = orExpr();
    if (text[i] !== ')') fail('expected ")"');
    i++;
    return inner;
  };
  const constraint = (): Fiql => {
    const field = /^[A-Za-z][A-Za-z0-9_.@:-]*/.exec(text.slice(i))?.[0] ?? fail('expected an attribute name');
    i += field.length;
    const op = /^(==|!=|=[a-z]+=)/.exec(text.slice(i))?.[0] ?? fail(`expected an operator after ${field}`);
    if (!FIQL_OPERATORS.has(op)) fail(`unknown operator ${op}`);
    i += op.length;
    let value = '';
    while (i < text.length && !'(),;'.includes(text[i]!)) {
      if (text[i] === '\\') {
        if (i + 1 >= text.length) fail('a backslash ends the filter');
        value += text[i + 1];
        i += 2;
      } else {
        value += text[i];
        i++;
      }
    }
    if (value === '') fail(`expected a value after ${field}${op}`);
    return { kind: 'constraint', field, op, value };
  };
  const tree = orExpr();
  if (i < text.length) fail(`unexpected "${text[i]}"`);
  return tree;
}

const constraintsOf = (e: Fiql): Extract<Fiql, { kind: 'constraint' }>[] =>
  e.kind === 'constraint' ? [e] : e.parts.flatMap(constraintsOf);

function fiqlMatches(e: Fiql, row: Record<string, string | number | boolean>): boolean {
  if (e.kind !== 'constraint') {
    return e.kind === 'and'
      ? e.parts.every((p) => fiqlMatches(p, row))
      : e.parts.some((p) => fiqlMatches(p, row));
  }
  const actual = String(row[e.field] ?? '');
  if (e.op === '==') {
    if (!e.value.includes('*')) return actual === e.value;
    // Asterisks are wildcards, and make the comparison case-insensitive.
    const re = e.value
      .split('*')
      .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*');
    return new RegExp(`^${re}$`, 'i').test(actual);
  }
  if (e.op === '!=') return actual !== e.value;
  const a = Number(actual);
  const b = Number(e.value);
  if (e.op === '=gt=') return a > b;
  if (e.op === '=lt=') return a < b;
  if (e.op === '=ge=') return a >= b;
  return a <= b;
}

// ---- the server ---------------------------------------------------------------------------

export async function startFakeVcd(options: FakeVcdOptions): Promise<RunningFakeVcd> {
  const versions = options.apiVersions ?? ['36.0', '37.0', '38.0'];
  const stepMs = options.taskStepMs ?? 30;
  let taskRunningMs = options.taskRunningMs ?? {};
  const failImport = new Set(options.failImportOf ?? []);
  const failInstantiate = new Set(options.failInstantiateOf ?? []);
  const seed: FakeVcdSeed = options.seed ?? {
    orgs: [
      { name: 'acme', vdcs: [{ name: 'acme-vdc', networks: ['acme-net'] }], catalogs: ['acme-catalog'] },
    ],
  };
  const vimServerId = randomUUID();
  const vimServerName = options.vcenter.name ?? 'vc1';

  const orgs = new Map<string, { id: string; name: string }>();
  const vdcs = new Map<string, { id: string; name: string; orgId: string }>();
  const catalogs = new Map<string, { id: string; name: string; orgId: string }>();
  const networks = new Map<string, { id: string; name: string; vdcId: string }>();
  for (const o of seed.orgs) {
    const org = { id: randomUUID(), name: o.name };
    orgs.set(org.id, org);
    for (const v of o.vdcs) {
      const vdc = { id: randomUUID(), name: v.name, orgId: org.id };
      vdcs.set(vdc.id, vdc);
      for (const n of v.networks ?? []) {
        const net = { id: randomUUID(), name: n, vdcId: vdc.id };
        networks.set(net.id, net);
      }
    }
    for (const c of o.catalogs ?? []) {
      const cat = { id: randomUUID(), name: c, orgId: org.id };
      catalogs.set(cat.id, cat);
    }
  }
  const vapps = new Map<string, VApp>();
  const templates = new Map<string, Template>();
  const vms = new Map<string, Vm>();
  const tasks = new Map<string, Task>();
  const sessions = new Map<string, { id: string; user: string }>();
  const calls: FakeVcdCall[] = [];
  const timers = new Set<NodeJS.Timeout>();
  /** Morefs with an import in progress. */
  const pending = new Set<string>();
  let base = '';

  // -- hrefs
  const href = {
    vdc: (id: string) => `${base}/api/vdc/${id}`,
    catalog: (id: string) => `${base}/api/catalog/${id}`,
    network: (id: string) => `${base}/api/network/${id}`,
    vapp: (id: string) => `${base}/api/vApp/vapp-${id}`,
    vm: (id: string) => `${base}/api/vApp/vm-${id}`,
    template: (id: string) => `${base}/api/vAppTemplate/vappTemplate-${id}`,
    task: (id: string) => `${base}/api/task/${id}`,
    org: (id: string) => `${base}/api/org/${id}`,
  };
  const idFrom = (h: string | undefined, re: RegExp): string | undefined => {
    if (!h) return undefined;
    let path: string;
    try {
      path = new URL(h, base).pathname;
    } catch {
      return undefined;
    }
    return re.exec(path)?.[1];
  };

  // -- the attached vCenter
  let vim: Promise<VimClient> | undefined;
  const vimClient = () => {
    vim ??= VimClient.connect({
      url: options.vcenter.url,
      username: options.vcenter.username,
      password: options.vcenter.password,
      trust: { kind: 'insecure' },
    }).catch((e) => {
      vim = undefined;
      throw e;
    });
    return vim;
  };
  /** The VM as vCenter reports it, or undefined when vCenter has no such VM. */
  async function vcenterVm(
    moRef: string,
  ): Promise<{ name: string; nics: { mac: string; type: string }[] } | undefined> {
    let client: VimClient;
    try {
      client = await vimClient();
    } catch (e) {
      throw new HttpError(
        500,
        'INTERNAL_SERVER_ERROR',
        `vCenter ${vimServerName} is not reachable: ${(e as Error).message}`,
      );
    }
    try {
      const props = await client.properties({ type: 'VirtualMachine', value: moRef }, 'VirtualMachine', [
        'name',
        'config.hardware.device',
      ]);
      const name = props.get('name')?.text;
      if (name === undefined) return undefined;
      const devices = props.get('config.hardware.device')?.children ?? [];
      const nics = devices
        .filter((d) => /^Virtual(E1000e?|Vmxnet\d*|Pcnet32|SriovEthernetCard)$/.test(d.typeName))
        .map((d) => ({
          mac: d.str('macAddress') ?? '00:50:56:00:00:00',
          type: d.typeName.replace(/^Virtual/, '').toUpperCase(),
        }));
      return { name, nics };
    } catch (e) {
      if (e instanceof VimFaultError && e.faultType === 'ManagedObjectNotFound') return undefined;
      throw new HttpError(500, 'INTERNAL_SERVER_ERROR', `vCenter ${vimServerName}: ${(e as Error).message}`);
    }
  }

  // -- tasks
  function startTask(
    operationName: string,
    operation: string,
    owner: Task['owner'],
    complete: () => void | Promise<void>,
    failWith?: () => { minor: string; message: string } | undefined,
    /** Task steps it stays queued before it runs (default 1). */
    queuedSteps = 1,
    /** What a cancel undoes (what the request created before the task ran). */
    undo?: () => void,
  ): Task {
    const task: Task = {
      id: randomUUID(),
      operation,
      operationName,
      status: 'queued',
      owner,
      startTime: new Date().toISOString(),
      ...(undo ? { undo } : {}),
    };
    tasks.set(task.id, task);
    const later = (fn: () => void, ms: number) => {
      if (ms === Number.POSITIVE_INFINITY) return;
      const t = setTimeout(() => {
        timers.delete(t);
        // A cancelled task does nothing more.
        if (task.status !== 'canceled') fn();
      }, ms);
      timers.add(t);
    };
    later(() => {
      task.status = 'running';
      later(() => {
        void (async () => {
          const failure = failWith?.();
          try {
            if (failure) throw new HttpError(500, failure.minor, failure.message);
            await complete();
            task.status = 'success';
          } catch (e) {
            task.status = 'error';
            task.error =
              e instanceof HttpError
                ? { major: e.status, minor: e.minor, message: e.message }
                : { major: 500, minor: 'INTERNAL_SERVER_ERROR', message: (e as Error).message };
          }
          task.endTime = new Date().toISOString();
        })();
      }, taskRunningMs[operationName] ?? stepMs);
    }, stepMs * queuedSteps);
    return task;
  }

  /** The option companionTask: a second task on a newly created vApp or template, ending after the main one. */
  function startCompanionTask(owner: Task['owner']): void {
    const c = options.companionTask;
    if (!c) return;
    startTask(
      c.operationName,
      `${c.operationName} on ${owner.name}`,
      owner,
      () => undefined,
      () =>
        c.fail
          ? {
              minor: 'INTERNAL_SERVER_ERROR',
              message: `${c.operationName} on ${owner.name} failed (simulated failure of the second task).`,
            }
          : undefined,
      10,
    );
  }

  const taskXml = (t: Task, root = true): string =>
    `<Task${root ? ` xmlns="${NS.vcloud}"` : ''}${attrs({
      href: href.task(t.id),
      id: `urn:vcloud:task:${t.id}`,
      name: 'task',
      type: 'application/vnd.vmware.vcloud.task+xml',
      status: t.status,
      operation: t.operation,
      operationName: t.operationName,
      serviceNamespace: 'com.vmware.vcloud',
      startTime: t.startTime,
      endTime: t.endTime,
      cancelRequested: t.status === 'canceled',
    })}>${
      t.status === 'queued' || t.status === 'running'
        ? `<Link${attrs({ rel: 'task:cancel', href: `${href.task(t.id)}/action/cancel` })}/>`
        : ''
    }<Owner${attrs(t.owner)}/>${
      t.error
        ? `<Error${attrs({ majorErrorCode: t.error.major, minorErrorCode: t.error.minor, message: t.error.message })}/>`
        : ''
    }<Progress>${t.status === 'success' ? 100 : t.status === 'running' ? 50 : 0}</Progress></Task>`;

  const runningTasksOf = (ownerHref: string) => {
    const open = [...tasks.values()].filter(
      (t) => t.owner.href === ownerHref && (t.status === 'queued' || t.status === 'running'),
    );
    return open.length ? `<Tasks>${open.map((t) => taskXml(t, false)).join('')}</Tasks>` : '';
  };

  // -- entity documents
  const nicSectionXml = (vm: Vm) =>
    `<NetworkConnectionSection${attrs({
      href: `${href.vm(vm.id)}/networkConnectionSection/`,
      type: 'application/vnd.vmware.vcloud.networkConnectionSection+xml',
      'ovf:required': false,
    })}><ovf:Info>Specifies the available VM network connections</ovf:Info>${
      vm.primaryNic === undefined
        ? ''
        : `<PrimaryNetworkConnectionIndex>${vm.primaryNic}</PrimaryNetworkConnectionIndex>`
    }${vm.nics
      .map(
        (n) =>
          `<NetworkConnection${attrs({ network: n.network, needsCustomization: false })}><NetworkConnectionIndex>${n.index}</NetworkConnectionIndex>${
            n.ipAddress ? `<IpAddress>${esc(n.ipAddress)}</IpAddress>` : ''
          }<IsConnected>${n.isConnected}</IsConnected><MACAddress>${esc(n.mac)}</MACAddress><IpAddressAllocationMode>${n.allocation}</IpAddressAllocationMode><NetworkAdapterType>${esc(n.adapterType)}</NetworkAdapterType></NetworkConnection>`,
      )
      .join(
        '',
      )}<Link${attrs({ rel: 'edit', href: `${href.vm(vm.id)}/networkConnectionSection/`, type: 'application/vnd.vmware.vcloud.networkConnectionSection+xml' })}/></NetworkConnectionSection>`;

  const vmXml = (vm: Vm, root: boolean) => {
    const up =
      vm.parent.kind === 'vapp'
        ? { rel: 'up', href: href.vapp(vm.parent.id), type: 'application/vnd.vmware.vcloud.vApp+xml' }
        : {
            rel: 'up',
            href: href.template(vm.parent.id),
            type: 'application/vnd.vmware.vcloud.vAppTemplate+xml',
          };
    return `<Vm${root ? ` xmlns="${NS.vcloud}" xmlns:ovf="${NS.ovf}"` : ''}${attrs({
      href: href.vm(vm.id),
      id: `urn:vcloud:vm:${vm.id}`,
      name: vm.name,
      type: 'application/vnd.vmware.vcloud.vm+xml',
      status: vm.status,
      deployed: vm.deployed,
      needsCustomization: false,
    })}><Link${attrs(up)}/><Link${attrs({ rel: 'power:powerOn', href: `${href.vm(vm.id)}/power/action/powerOn` })}/><Link${attrs({ rel: 'deploy', href: `${href.vm(vm.id)}/action/deploy`, type: 'application/vnd.vmware.vcloud.deployVAppParams+xml' })}/>${runningTasksOf(href.vm(vm.id))}${nicSectionXml(vm)}<VAppScopedLocalId>${esc(vm.name)}</VAppScopedLocalId></Vm>`;
  };

  const netConfigXml = (a: VApp) =>
    `<NetworkConfigSection${attrs({
      href: `${href.vapp(a.id)}/networkConfigSection/`,
      type: 'application/vnd.vmware.vcloud.networkConfigSection+xml',
      'ovf:required': false,
    })}><ovf:Info>The configuration parameters for logical networks</ovf:Info><Link${attrs({ rel: 'edit', href: `${href.vapp(a.id)}/networkConfigSection/`, type: 'application/vnd.vmware.vcloud.networkConfigSection+xml' })}/>${a.networks
      .map(
        (n) =>
          `<NetworkConfig${attrs({ networkName: n.networkName })}><Configuration>${
            n.parentNetworkId
              ? `<ParentNetwork${attrs({ href: href.network(n.parentNetworkId), name: networks.get(n.parentNetworkId)?.name, type: 'application/vnd.vmware.admin.network+xml' })}/>`
              : ''
          }<FenceMode>${esc(n.fenceMode)}</FenceMode></Configuration><IsDeployed>${a.deployed}</IsDeployed></NetworkConfig>`,
      )
      .join('')}</NetworkConfigSection>`;

  const vappXml = (a: VApp) =>
    `<VApp xmlns="${NS.vcloud}" xmlns:ovf="${NS.ovf}"${attrs({
      href: href.vapp(a.id),
      id: `urn:vcloud:vapp:${a.id}`,
      name: a.name,
      type: 'application/vnd.vmware.vcloud.vApp+xml',
      status: a.status,
      deployed: a.deployed,
    })}><Link${attrs({ rel: 'up', href: href.vdc(a.vdcId), type: 'application/vnd.vmware.vcloud.vdc+xml' })}/><Link${attrs({ rel: 'power:powerOn', href: `${href.vapp(a.id)}/power/action/powerOn` })}/><Link${attrs({ rel: 'deploy', href: `${href.vapp(a.id)}/action/deploy`, type: 'application/vnd.vmware.vcloud.deployVAppParams+xml' })}/>${
      a.description === undefined ? '' : `<Description>${esc(a.description)}</Description>`
    }${runningTasksOf(href.vapp(a.id))}${netConfigXml(a)}${
      a.vmIds.length ? `<Children>${a.vmIds.map((id) => vmXml(vms.get(id)!, false)).join('')}</Children>` : ''
    }</VApp>`;

  const templateXml = (t: Template) =>
    `<VAppTemplate xmlns="${NS.vcloud}" xmlns:ovf="${NS.ovf}"${attrs({
      href: href.template(t.id),
      id: `urn:vcloud:vapptemplate:${t.id}`,
      name: t.name,
      type: 'application/vnd.vmware.vcloud.vAppTemplate+xml',
      status: t.status,
      goldMaster: false,
    })}><Link${attrs({ rel: 'up', href: href.vdc(t.vdcId), type: 'application/vnd.vmware.vcloud.vdc+xml' })}/>${runningTasksOf(href.template(t.id))}${
      t.vmIds.length ? `<Children>${t.vmIds.map((id) => vmXml(vms.get(id)!, false)).join('')}</Children>` : ''
    }</VAppTemplate>`;

  // -- query service
  type Row = Record<string, string | number | boolean>;
  const queryTypes: Record<string, { record: string; rows: () => Row[] }> = {};
  const vdcRows = () =>
    [...vdcs.values()].map((v) => ({
      name: v.name,
      href: href.vdc(v.id),
      orgName: orgs.get(v.orgId)!.name,
      org: href.org(v.orgId),
      isEnabled: true,
      status: 1,
      numberOfVApps: [...vapps.values()].filter((a) => a.vdcId === v.id).length,
    }));
  const catalogRows = () =>
    [...catalogs.values()].map((c) => ({
      name: c.name,
      href: href.catalog(c.id),
      orgName: orgs.get(c.orgId)!.name,
      isPublished: false,
      numberOfVAppTemplates: [...templates.values()].filter((t) => t.catalogId === c.id).length,
    }));
  const networkRows = () =>
    [...networks.values()].map((n) => ({
      name: n.name,
      href: href.network(n.id),
      vdc: href.vdc(n.vdcId),
      vdcName: vdcs.get(n.vdcId)!.name,
      isShared: false,
      linkType: 1,
    }));
  const vappRows = () =>
    [...vapps.values()].map((a) => ({
      name: a.name,
      href: href.vapp(a.id),
      vdc: href.vdc(a.vdcId),
      vdcName: vdcs.get(a.vdcId)!.name,
      status: STATUS_NAME[a.status] ?? String(a.status),
      isDeployed: a.deployed,
      numberOfVMs: a.vmIds.length,
    }));
  const templateRows = () =>
    [...templates.values()].map((t) => ({
      name: t.name,
      href: href.template(t.id),
      vdc: href.vdc(t.vdcId),
      vdcName: vdcs.get(t.vdcId)!.name,
      catalogName: catalogs.get(t.catalogId)!.name,
      status: STATUS_NAME[t.status] ?? String(t.status),
    }));
  Object.assign(queryTypes, {
    adminOrgVdc: { record: 'AdminVdcRecord', rows: vdcRows },
    orgVdc: { record: 'OrgVdcRecord', rows: vdcRows },
    adminCatalog: { record: 'AdminCatalogRecord', rows: catalogRows },
    catalog: { record: 'CatalogRecord', rows: catalogRows },
    orgVdcNetwork: { record: 'OrgVdcNetworkRecord', rows: networkRows },
    adminOrgVdcNetwork: { record: 'AdminOrgVdcNetworkRecord', rows: networkRows },
    adminVApp: { record: 'AdminVAppRecord', rows: vappRows },
    vApp: { record: 'VAppRecord', rows: vappRows },
    adminVAppTemplate: { record: 'AdminVAppTemplateRecord', rows: templateRows },
    vAppTemplate: { record: 'VAppTemplateRecord', rows: templateRows },
  });

  function query(url: URL, version: string): string {
    const type = url.searchParams.get('type');
    if (!type) throw bad('Bad request: the query parameter "type" is required.');
    const qt = queryTypes[type];
    if (!qt) throw bad(`Bad request: unknown query type "${type}".`);
    const format = url.searchParams.get('format') ?? 'records';
    if (format !== 'records')
      throw bad(`Bad request: this server answers format=records only, not "${format}".`);
    let rows = qt.rows();
    // URL query parsing has decoded the filter once, as vCD's does; from here on it is FIQL text.
    const filter = url.searchParams.get('filter');
    if (filter) {
      const tree = parseFiql(filter);
      // Below API 35.0, filterEncoded=true asks vCD to decode each value a second time (pyvcloud
      // client.py _build_query_uri); from 35.0 on the parameter has no effect.
      const valuesEncoded =
        url.searchParams.get('filterEncoded') === 'true' && cmpVersion(version, '35.0') < 0;
      const sample = qt.rows()[0];
      for (const c of constraintsOf(tree)) {
        if (sample && !(c.field in sample)) {
          throw bad(`Bad request: "${c.field}" is not a field of query type ${type}.`);
        }
        if (valuesEncoded) {
          try {
            c.value = decodeURIComponent(c.value);
          } catch {
            throw bad(
              `Bad request: the filter "${filter}" has a value that is not percent-encoded: "${c.value}".`,
            );
          }
        }
        // A value still percent-encoded after the one decode (a client that encoded it twice) is
        // compared as it is, '%20' and all, so it matches nothing: what vCD 10.2 did (pyvcloud
        // issue #716, pull request #646). See README.md.
        if (c.op === '!=' && c.value.includes('*')) {
          throw bad(`Bad request: the filter "${filter}" has a wildcard after !=, which allows none.`);
        }
        if (c.op !== '==' && c.op !== '!=' && Number.isNaN(Number(c.value))) {
          throw bad(
            `Bad request: ${c.op} compares numbers; "${c.value}" in the filter "${filter}" is not one.`,
          );
        }
      }
      rows = rows.filter((r) => fiqlMatches(tree, r));
    }
    const pageSize = Math.min(Number(url.searchParams.get('pageSize') ?? '25') || 25, 128);
    const page = Math.max(Number(url.searchParams.get('page') ?? '1') || 1, 1);
    const slice = rows.slice((page - 1) * pageSize, page * pageSize);
    let links = '';
    if (page * pageSize < rows.length) {
      const next = new URL(url.href);
      next.searchParams.set('page', String(page + 1));
      links = `<Link${attrs({ rel: 'nextPage', href: `${base}${next.pathname}${next.search}`, type: 'application/vnd.vmware.vcloud.query.records+xml' })}/>`;
    }
    return `<QueryResultRecords xmlns="${NS.vcloud}"${attrs({
      href: `${base}${url.pathname}${url.search}`,
      name: type,
      page,
      pageSize,
      total: rows.length,
      type: 'application/vnd.vmware.vcloud.query.records+xml',
    })}>${links}${slice.map((r) => `<${qt.record}${attrs(r)}/>`).join('')}</QueryResultRecords>`;
  }

  // -- request bodies
  function parseBody(
    req: http.IncomingMessage,
    body: string,
    media: string,
    root: string,
    ns: string,
  ): VcdNode {
    const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (ct !== media.toLowerCase()) {
      throw new HttpError(
        415,
        'UNSUPPORTED_MEDIA_TYPE',
        `Unsupported media type ${ct || '(none)'}; this operation consumes ${media}.`,
      );
    }
    if (Buffer.byteLength(body) > 512 * 1024) throw bad('Bad request: the request body exceeds 512 KB.');
    let doc: VcdNode;
    try {
      doc = parseVcdXml(body);
    } catch (e) {
      throw bad(`Bad request: the request body is not well-formed XML (${(e as Error).message}).`);
    }
    const size = countElements(doc);
    if (size.count > 4096 || size.depth > 100)
      throw bad('Bad request: the request body is too large or too deep.');
    if (doc.name !== root || doc.ns !== ns) {
      throw bad(`Bad request: expected the element {${ns}}${root}, got {${doc.ns}}${doc.name}.`);
    }
    checkSequence(doc);
    return doc;
  }

  const bool = (v: string | undefined, dflt: boolean) => (v === undefined ? dflt : v === 'true' || v === '1');

  const vdcFromRef = (node: VcdNode | undefined) => {
    const id = idFrom(node?.attr('href'), /^\/api\/(?:admin\/)?vdc\/([0-9a-f-]+)\/?$/);
    const vdc = id ? vdcs.get(id) : undefined;
    if (!vdc) throw bad(`Bad request: the Vdc reference "${node?.attr('href') ?? ''}" names no org VDC.`);
    return vdc;
  };

  async function checkImportable(moRef: string) {
    if (!/^vm-\d+$/.test(moRef)) throw bad(`Bad request: "${moRef}" is not a VirtualMachine moref (vm-NNN).`);
    if (pending.has(moRef) || [...vms.values()].some((v) => v.moRef === moRef)) {
      throw bad(
        `Bad request: the VM ${moRef} of vCenter ${vimServerName} is already managed by vCloud Director.`,
      );
    }
    const vcVm = await vcenterVm(moRef);
    if (!vcVm) throw bad(`Bad request: vCenter ${vimServerName} has no virtual machine ${moRef}.`);
    return vcVm;
  }

  const newVm = (
    vcVm: { name: string; nics: { mac: string; type: string }[] },
    moRef: string,
    name: string,
    parent: Vm['parent'],
  ): Vm => ({
    id: randomUUID(),
    name,
    moRef,
    parent,
    status: 8,
    deployed: false,
    nics: vcVm.nics.map((n, index) => ({
      index,
      network: 'none',
      isConnected: false,
      allocation: 'NONE',
      mac: n.mac,
      adapterType: n.type,
    })),
    primaryNic: vcVm.nics.length ? 0 : undefined,
  });

  const importFailure = (moRef: string) => {
    pending.delete(moRef);
    return failImport.has(moRef)
      ? {
          minor: 'INTERNAL_SERVER_ERROR',
          message: `Import of VM ${moRef} failed: the virtual machine's disks could not be relocated (simulated failure).`,
        }
      : undefined;
  };

  /** The vApp networks of a NetworkConfigSection, checked the way vCD checks them for a vApp in this VDC. */
  function readNetConfigs(section: VcdNode, vdcId: string): NetConfig[] {
    const next: NetConfig[] = [];
    for (const c of section.all('NetworkConfig')) {
      const networkName = c.attr('networkName');
      if (!networkName) throw bad('Bad request: NetworkConfig needs the attribute networkName.');
      if (next.some((n) => n.networkName === networkName))
        throw bad(`Bad request: the vApp network "${networkName}" is given twice.`);
      const conf = c.child('Configuration')!;
      const fenceMode = conf.str('FenceMode') ?? '';
      if (!['bridged', 'isolated', 'natRouted'].includes(fenceMode)) {
        throw bad(`Bad request: FenceMode "${fenceMode}" is not one of bridged, isolated, natRouted.`);
      }
      let parentNetworkId: string | undefined;
      const parent = conf.child('ParentNetwork');
      if (parent) {
        parentNetworkId = idFrom(parent.attr('href'), /^\/api\/(?:admin\/)?network\/([0-9a-f-]+)$/);
        const net = parentNetworkId ? networks.get(parentNetworkId) : undefined;
        if (!net || net.vdcId !== vdcId) {
          throw bad(
            `Bad request: ParentNetwork "${parent.attr('href') ?? ''}" is not a network of the vApp's VDC.`,
          );
        }
      } else if (fenceMode !== 'isolated') {
        throw bad(`Bad request: a ${fenceMode} vApp network needs a ParentNetwork.`);
      }
      next.push({ networkName, fenceMode, ...(parentNetworkId ? { parentNetworkId } : {}) });
    }
    return next;
  }

  const duplicateName = (vdcId: string, name: string) => {
    if ([...vapps.values()].some((a) => a.vdcId === vdcId && a.name === name)) {
      throw bad(`Bad request: a vApp named "${name}" already exists in this VDC.`, 'DUPLICATE_NAME');
    }
  };

  // -- routes
  type Reply = { status: number; type: string; body: string; headers?: Record<string, string> };
  const xmlReply = (status: number, type: string, body: string, version: string): Reply => ({
    status,
    type: `${type};version=${version}`,
    body: `<?xml version="1.0" encoding="UTF-8"?>\n${body}`,
  });

  async function handleApi(
    req: http.IncomingMessage,
    url: URL,
    body: string,
    version: string,
  ): Promise<Reply> {
    const m = req.method ?? 'GET';
    const p = url.pathname.replace(/\/+$/, '');
    const allow = (...methods: string[]) => {
      if (!methods.includes(m))
        throw new HttpError(405, 'METHOD_NOT_ALLOWED', `HTTP method ${m} is not supported for ${p}.`);
    };
    let g: RegExpExecArray | null;

    if (p === '/api/query') {
      allow('GET');
      return xmlReply(200, 'application/vnd.vmware.vcloud.query.records+xml', query(url, version), version);
    }
    if (p === '/api/admin/extension/vimServerReferences') {
      allow('GET');
      return xmlReply(
        200,
        'application/vnd.vmware.admin.vmwVimServerReferences+xml',
        `<vmext:VMWVimServerReferences xmlns:vmext="${NS.vmext}" xmlns:vcloud="${NS.vcloud}"${attrs({ href: `${base}${p}`, type: 'application/vnd.vmware.admin.vmwVimServerReferences+xml' })}><vcloud:VimServerReference${attrs({ href: `${base}/api/admin/extension/vimServer/${vimServerId}`, name: vimServerName, type: 'application/vnd.vmware.admin.vmwvirtualcenter+xml' })}/></vmext:VMWVimServerReferences>`,
        version,
      );
    }
    g =
      /^\/api\/admin\/extension\/vimServer\/([^/]+)\/(importVmAsVApp|importVmIntoExistingVApp|importVmAsVAppTemplate)$/.exec(
        p,
      );
    if (g) {
      allow('POST');
      if (g[1] !== vimServerId) throw forbidden('vCenter: View');
      const op = g[2]!;
      if (op === 'importVmAsVApp') {
        const doc = parseBody(
          req,
          body,
          'application/vnd.vmware.admin.importVmAsVAppParams+xml',
          'ImportVmAsVAppParams',
          NS.vmext,
        );
        const moRef = doc.str('VmMoRef') ?? '';
        const vdc = vdcFromRef(doc.child('Vdc'));
        const vcVm = await checkImportable(moRef);
        const name = doc.attr('name') ?? vcVm.name;
        duplicateName(vdc.id, name);
        const vmName = doc.str('VmName') ?? vcVm.name;
        const a: VApp = {
          id: randomUUID(),
          name,
          vdcId: vdc.id,
          status: 0,
          deployed: false,
          vmIds: [],
          networks: [],
        };
        vapps.set(a.id, a);
        const deploy = bool(doc.attr('deploy'), false);
        const powerOn = bool(doc.attr('powerOn'), false);
        pending.add(moRef);
        startTask(
          'vdcImportVmAsVApp',
          `Importing Virtual Machine ${vcVm.name} (${moRef}) as vApp ${name}`,
          { href: href.vapp(a.id), name, type: 'application/vnd.vmware.vcloud.vApp+xml' },
          () => {
            const vm = newVm(vcVm, moRef, vmName, { kind: 'vapp', id: a.id });
            vms.set(vm.id, vm);
            a.vmIds.push(vm.id);
            a.status = 8;
            if (deploy || powerOn) {
              a.deployed = vm.deployed = true;
              if (powerOn) a.status = vm.status = 4;
            }
          },
          () => {
            const f = importFailure(moRef);
            if (f) vapps.delete(a.id);
            return f;
          },
          1,
          () => {
            vapps.delete(a.id);
            pending.delete(moRef);
          },
        );
        startCompanionTask({ href: href.vapp(a.id), name, type: 'application/vnd.vmware.vcloud.vApp+xml' });
        return xmlReply(201, 'application/vnd.vmware.vcloud.vApp+xml', vappXml(a), version);
      }
      if (op === 'importVmIntoExistingVApp') {
        const doc = parseBody(
          req,
          body,
          'application/vnd.vmware.admin.importVmIntoExistingVAppParams+xml',
          'ImportVmIntoExistingVAppParams',
          NS.vmext,
        );
        const moRef = doc.str('VmMoRef') ?? '';
        const vappId = idFrom(doc.child('VApp')?.attr('href'), /^\/api\/vApp\/vapp-([0-9a-f-]+)$/);
        const a = vappId ? vapps.get(vappId) : undefined;
        if (!a)
          throw bad(
            `Bad request: the VApp reference "${doc.child('VApp')?.attr('href') ?? ''}" names no vApp.`,
          );
        const vcVm = await checkImportable(moRef);
        const vmName = doc.str('VmName') ?? vcVm.name;
        if (a.vmIds.some((id) => vms.get(id)?.name === vmName)) {
          throw bad(
            `Bad request: the vApp "${a.name}" already has a VM named "${vmName}".`,
            'DUPLICATE_NAME',
          );
        }
        pending.add(moRef);
        const task = startTask(
          'vdcImportVmIntoExistingVApp',
          `Importing Virtual Machine ${vcVm.name} (${moRef}) into vApp ${a.name}`,
          { href: href.vapp(a.id), name: a.name, type: 'application/vnd.vmware.vcloud.vApp+xml' },
          () => {
            const vm = newVm(vcVm, moRef, vmName, { kind: 'vapp', id: a.id });
            vms.set(vm.id, vm);
            a.vmIds.push(vm.id);
          },
          () => importFailure(moRef),
          1,
          () => pending.delete(moRef),
        );
        return {
          ...xmlReply(202, 'application/vnd.vmware.vcloud.task+xml', taskXml(task), version),
          headers: { Location: href.task(task.id) },
        };
      }
      const doc = parseBody(
        req,
        body,
        'application/vnd.vmware.admin.importVmAsVAppTemplateParams+xml',
        'ImportVmAsVAppTemplateParams',
        NS.vmext,
      );
      const moRef = doc.str('VmMoRef') ?? '';
      const vdc = vdcFromRef(doc.child('Vdc'));
      const catId = idFrom(doc.child('Catalog')?.attr('href'), /^\/api\/(?:admin\/)?catalog\/([0-9a-f-]+)$/);
      const cat = catId ? catalogs.get(catId) : undefined;
      if (!cat)
        throw bad(
          `Bad request: the Catalog reference "${doc.child('Catalog')?.attr('href') ?? ''}" names no catalog.`,
        );
      const vcVm = await checkImportable(moRef);
      const name = doc.attr('name') ?? vcVm.name;
      if ([...templates.values()].some((t) => t.catalogId === cat.id && t.name === name)) {
        throw bad(
          `Bad request: the catalog "${cat.name}" already has an item named "${name}".`,
          'DUPLICATE_NAME',
        );
      }
      const vmName = doc.str('VmName') ?? vcVm.name;
      const t: Template = { id: randomUUID(), name, vdcId: vdc.id, catalogId: cat.id, status: 0, vmIds: [] };
      templates.set(t.id, t);
      pending.add(moRef);
      startTask(
        'vdcImportVmAsVAppTemplate',
        `Importing Virtual Machine ${vcVm.name} (${moRef}) as vApp template ${name}`,
        { href: href.template(t.id), name, type: 'application/vnd.vmware.vcloud.vAppTemplate+xml' },
        () => {
          const vm = newVm(vcVm, moRef, vmName, { kind: 'template', id: t.id });
          vms.set(vm.id, vm);
          t.vmIds.push(vm.id);
          t.status = 8;
        },
        () => {
          const f = importFailure(moRef);
          if (f) templates.delete(t.id);
          return f;
        },
        1,
        () => {
          templates.delete(t.id);
          pending.delete(moRef);
        },
      );
      startCompanionTask({
        href: href.template(t.id),
        name,
        type: 'application/vnd.vmware.vcloud.vAppTemplate+xml',
      });
      return xmlReply(201, 'application/vnd.vmware.vcloud.vAppTemplate+xml', templateXml(t), version);
    }
    g = /^\/api\/vdc\/([0-9a-f-]+)\/action\/instantiateVAppTemplate$/.exec(p);
    if (g) {
      allow('POST');
      const vdc = vdcs.get(g[1]!);
      if (!vdc) throw forbidden('Organization vDC: View');
      const doc = parseBody(
        req,
        body,
        'application/vnd.vmware.vcloud.instantiateVAppTemplateParams+xml',
        'InstantiateVAppTemplateParams',
        NS.vcloud,
      );
      const name = doc.attr('name')?.trim();
      if (!name) {
        throw bad(
          "Bad request: InstantiateVAppTemplateParams needs the attribute name (the new vApp's name).",
        );
      }
      const sourceHref = doc.child('Source')?.attr('href');
      if (!sourceHref) throw bad('Bad request: Source needs the attribute href (the vApp template).');
      if (idFrom(sourceHref, /^\/api\/vAppTemplate\/vappTemplate-([0-9a-f-]+)$/) === undefined) {
        throw bad(
          `Bad request: Source "${sourceHref}" is not a vApp template reference (/api/vAppTemplate/vappTemplate-{id}).`,
        );
      }
      const tpl = templates.get(idFrom(sourceHref, /^\/api\/vAppTemplate\/vappTemplate-([0-9a-f-]+)$/)!);
      // A template of another organization is as invisible as one that does not exist.
      const tplOrg = tpl ? catalogs.get(tpl.catalogId)?.orgId : undefined;
      if (!tpl || tplOrg !== vdc.orgId) throw forbidden('vApp Template: View');
      if (tpl.status === 0) {
        throw bad(`Bad request: the vApp template ${tpl.name} is still being created.`, 'BUSY_ENTITY');
      }
      duplicateName(vdc.id, name);
      const sections = doc.child('InstantiationParams');
      const netSection = sections?.child('NetworkConfigSection');
      const nets = netSection ? readNetConfigs(netSection, vdc.id) : [];
      const deploy = bool(doc.attr('deploy'), true);
      const powerOn = bool(doc.attr('powerOn'), true);
      const sourceDelete = bool(doc.str('IsSourceDelete'), false);
      const description = doc.str('Description');
      const a: VApp = {
        id: randomUUID(),
        name,
        ...(description === undefined ? {} : { description }),
        vdcId: vdc.id,
        status: 0,
        deployed: false,
        vmIds: [],
        networks: nets,
      };
      vapps.set(a.id, a);
      startTask(
        'vdcInstantiateVapp',
        `Creating Virtual Application ${name}(${a.id})`,
        { href: href.vapp(a.id), name, type: 'application/vnd.vmware.vcloud.vApp+xml' },
        () => {
          const source = templates.get(tpl.id);
          if (!source)
            throw new HttpError(500, 'INTERNAL_SERVER_ERROR', `the vApp template ${tpl.name} was deleted`);
          for (const vmId of source.vmIds) {
            const from = vms.get(vmId)!;
            const vm: Vm = {
              ...from,
              id: randomUUID(),
              moRef: '',
              parent: { kind: 'vapp', id: a.id },
              status: 8,
              deployed: false,
              nics: from.nics.map((n) => ({ ...n })),
            };
            vms.set(vm.id, vm);
            a.vmIds.push(vm.id);
          }
          a.status = 8;
          if (deploy || powerOn) {
            a.deployed = true;
            for (const id of a.vmIds) vms.get(id)!.deployed = true;
            if (powerOn) {
              a.status = 4;
              for (const id of a.vmIds) vms.get(id)!.status = 4;
            }
          }
          if (sourceDelete) {
            for (const id of source.vmIds) vms.delete(id);
            templates.delete(source.id);
          }
        },
        () => {
          if (!failInstantiate.has(tpl.name)) return undefined;
          vapps.delete(a.id);
          return {
            minor: 'INTERNAL_SERVER_ERROR',
            message: `Instantiating vApp template ${tpl.name} failed: the virtual machines could not be cloned (simulated failure).`,
          };
        },
        1,
        () => vapps.delete(a.id),
      );
      startCompanionTask({ href: href.vapp(a.id), name, type: 'application/vnd.vmware.vcloud.vApp+xml' });
      return xmlReply(201, 'application/vnd.vmware.vcloud.vApp+xml', vappXml(a), version);
    }
    g = /^\/api\/task\/([0-9a-f-]+)$/.exec(p);
    if (g) {
      allow('GET');
      const t = tasks.get(g[1]!);
      if (!t) throw forbidden('Task: View');
      return xmlReply(200, 'application/vnd.vmware.vcloud.task+xml', taskXml(t), version);
    }
    g = /^\/api\/task\/([0-9a-f-]+)\/action\/cancel$/.exec(p);
    if (g) {
      allow('POST');
      const t = tasks.get(g[1]!);
      if (!t) throw forbidden('Task: View');
      if (t.status !== 'queued' && t.status !== 'running') {
        throw bad(`Bad request: the task ${t.id} has ended (${t.status}) and cannot be cancelled.`);
      }
      t.status = 'canceled';
      t.endTime = new Date().toISOString();
      t.undo?.();
      return { status: 204, type: '', body: '' };
    }
    g = /^\/api\/vAppTemplate\/vappTemplate-([0-9a-f-]+)$/.exec(p);
    if (g) {
      allow('GET');
      const t = templates.get(g[1]!);
      if (!t) throw forbidden('vApp Template: View');
      return xmlReply(200, 'application/vnd.vmware.vcloud.vAppTemplate+xml', templateXml(t), version);
    }
    g = /^\/api\/vApp\/(vapp|vm)-([0-9a-f-]+)(\/.*)?$/.exec(p);
    if (g) {
      const kind = g[1]!;
      const id = g[2]!;
      const rest = g[3] ?? '';
      const a = kind === 'vapp' ? vapps.get(id) : undefined;
      const vm = kind === 'vm' ? vms.get(id) : undefined;
      if (!a && !vm) throw forbidden(kind === 'vapp' ? 'vApp: View' : 'VM: View');
      const ownerOf = (): Task['owner'] =>
        a
          ? { href: href.vapp(a.id), name: a.name, type: 'application/vnd.vmware.vcloud.vApp+xml' }
          : { href: href.vm(vm!.id), name: vm!.name, type: 'application/vnd.vmware.vcloud.vm+xml' };
      const taskReply = (t: Task): Reply => ({
        ...xmlReply(202, 'application/vnd.vmware.vcloud.task+xml', taskXml(t), version),
        headers: { Location: href.task(t.id) },
      });
      const vmsOf = (): Vm[] => (a ? a.vmIds.map((i) => vms.get(i)!) : [vm!]);
      const vappOfVm = (v: Vm) => (v.parent.kind === 'vapp' ? vapps.get(v.parent.id) : undefined);

      if (rest === '') {
        allow('GET');
        return a
          ? xmlReply(200, 'application/vnd.vmware.vcloud.vApp+xml', vappXml(a), version)
          : xmlReply(200, 'application/vnd.vmware.vcloud.vm+xml', vmXml(vm!, true), version);
      }
      if (rest === '/networkConfigSection' && a) {
        allow('GET', 'PUT');
        if (m === 'GET') {
          return xmlReply(
            200,
            'application/vnd.vmware.vcloud.networkConfigSection+xml',
            netConfigXml(a).replace(
              '<NetworkConfigSection',
              `<NetworkConfigSection xmlns="${NS.vcloud}" xmlns:ovf="${NS.ovf}"`,
            ),
            version,
          );
        }
        const doc = parseBody(
          req,
          body,
          'application/vnd.vmware.vcloud.networkConfigSection+xml',
          'NetworkConfigSection',
          NS.vcloud,
        );
        const next = readNetConfigs(doc, a.vdcId);
        const task = startTask(
          'vappUpdateNetworkConfig',
          `Updating vApp ${a.name} network configuration`,
          ownerOf(),
          () => {
            a.networks = next;
          },
        );
        return taskReply(task);
      }
      if (rest === '/networkConnectionSection' && vm) {
        allow('GET', 'PUT');
        if (m === 'GET') {
          return xmlReply(
            200,
            'application/vnd.vmware.vcloud.networkConnectionSection+xml',
            nicSectionXml(vm).replace(
              '<NetworkConnectionSection',
              `<NetworkConnectionSection xmlns="${NS.vcloud}" xmlns:ovf="${NS.ovf}"`,
            ),
            version,
          );
        }
        const doc = parseBody(
          req,
          body,
          'application/vnd.vmware.vcloud.networkConnectionSection+xml',
          'NetworkConnectionSection',
          NS.vcloud,
        );
        const parentVApp = vappOfVm(vm);
        const allowed = new Set(['none', ...(parentVApp?.networks.map((n) => n.networkName) ?? [])]);
        const nics: FakeNic[] = [];
        for (const c of doc.all('NetworkConnection')) {
          const index = Number(c.str('NetworkConnectionIndex'));
          const existing = vm.nics.find((n) => n.index === index);
          if (!existing)
            throw bad(
              `Bad request: the VM ${vm.name} has no NIC with NetworkConnectionIndex ${c.str('NetworkConnectionIndex')}.`,
            );
          const network = c.attr('network');
          if (network === undefined) throw bad('Bad request: NetworkConnection needs the attribute network.');
          if (!allowed.has(network)) {
            throw bad(
              `Bad request: the network "${network}" is not in the network configuration of vApp "${parentVApp?.name ?? ''}"; add it to the vApp first.`,
            );
          }
          const allocation = c.str('IpAddressAllocationMode') ?? '';
          if (!['NONE', 'MANUAL', 'DHCP', 'POOL'].includes(allocation)) {
            throw bad(
              `Bad request: IpAddressAllocationMode "${allocation}" is not one of NONE, MANUAL, DHCP, POOL.`,
            );
          }
          const ip = c.str('IpAddress');
          if (allocation === 'MANUAL' && !ip)
            throw bad('Bad request: IpAddressAllocationMode MANUAL needs an IpAddress.');
          nics.push({
            ...existing,
            network,
            isConnected: bool(c.str('IsConnected'), false),
            allocation,
            ...(allocation === 'MANUAL' && ip ? { ipAddress: ip } : {}),
          });
        }
        const primaryText = doc.str('PrimaryNetworkConnectionIndex');
        const primary = primaryText === undefined ? vm.primaryNic : Number(primaryText);
        if (primary !== undefined && !vm.nics.some((n) => n.index === primary)) {
          throw bad(`Bad request: PrimaryNetworkConnectionIndex ${primary} names no NIC of ${vm.name}.`);
        }
        const task = startTask('vappUpdateVm', `Updating Virtual Machine ${vm.name}`, ownerOf(), () => {
          vm.nics = vm.nics.map((n) => nics.find((x) => x.index === n.index) ?? n);
          vm.primaryNic = primary;
        });
        return taskReply(task);
      }
      if (rest === '/action/deploy') {
        allow('POST');
        const doc = parseBody(
          req,
          body,
          'application/vnd.vmware.vcloud.deployVAppParams+xml',
          'DeployVAppParams',
          NS.vcloud,
        );
        const powerOn = bool(doc.attr('powerOn'), true);
        if (a && a.status === 0)
          throw bad(`Bad request: the vApp ${a.name} is still being created.`, 'BUSY_ENTITY');
        const task = startTask(
          a ? 'vappDeploy' : 'vappDeployVm',
          `Starting ${a ? `vApp ${a.name}` : `Virtual Machine ${vm!.name}`}`,
          ownerOf(),
          () => {
            for (const v of vmsOf()) {
              v.deployed = true;
              if (powerOn) v.status = 4;
            }
            const owner = a ?? vappOfVm(vm!);
            if (owner) {
              owner.deployed = owner.vmIds.every((i) => vms.get(i)!.deployed);
              if (owner.vmIds.some((i) => vms.get(i)!.status === 4)) owner.status = 4;
            }
          },
        );
        return taskReply(task);
      }
      if (rest === '/power/action/powerOn') {
        allow('POST');
        const targets = vmsOf();
        if (targets.length > 0 && targets.every((v) => v.status === 4)) {
          throw bad(
            `Bad request: the requested operation could not be executed since ${a ? `vApp "${a.name}"` : `VM "${vm!.name}"`} is already powered on.`,
          );
        }
        const task = startTask(
          a ? 'vappPowerOn' : 'vappPowerOnVm',
          `Powering on ${a ? `vApp ${a.name}` : `Virtual Machine ${vm!.name}`}`,
          ownerOf(),
          () => {
            for (const v of targets) {
              v.deployed = true;
              v.status = 4;
            }
            const owner = a ?? vappOfVm(vm!);
            if (owner) {
              owner.deployed = owner.vmIds.every((i) => vms.get(i)!.deployed);
              owner.status = 4;
            }
          },
        );
        return taskReply(task);
      }
    }
    throw new HttpError(404, 'RESOURCE_NOT_FOUND', `No resource for the URL ${p}.`);
  }

  const errorXml = (e: HttpError) =>
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error xmlns="${NS.vcloud}"${attrs({
      majorErrorCode: e.status,
      minorErrorCode: e.minor,
      message: e.message,
    })}/>`;

  const acceptVersion = (req: http.IncomingMessage): string | undefined =>
    /version\s*=\s*"?([0-9.]+)/.exec(req.headers.accept ?? '')?.[1];

  async function handle(req: http.IncomingMessage, url: URL, body: string): Promise<Reply> {
    const p = url.pathname.replace(/\/+$/, '');
    const m = req.method ?? 'GET';
    if (p === '/api/versions') {
      if (m !== 'GET')
        throw new HttpError(405, 'METHOD_NOT_ALLOWED', `HTTP method ${m} is not supported for ${p}.`);
      return {
        status: 200,
        type: 'application/vnd.vmware.vcloud.supportedVersions+xml',
        body: `<?xml version="1.0" encoding="UTF-8"?>\n<SupportedVersions xmlns="${NS.versions}">${[
          ...versions,
        ]
          .sort(cmpVersion)
          .map(
            (v) =>
              `<VersionInfo deprecated="false"><Version>${v}</Version><LoginUrl>${base}/api/sessions</LoginUrl><ProviderLoginUrl>${base}/cloudapi/1.0.0/sessions/provider</ProviderLoginUrl></VersionInfo>`,
          )
          .join('')}</SupportedVersions>`,
      };
    }
    const version = acceptVersion(req);
    const checkVersion = () => {
      if (!version || !versions.includes(version)) {
        throw new HttpError(
          406,
          'NOT_ACCEPTABLE',
          `The request has invalid accept header: Invalid API version requested (${version ?? 'none'}); supported: ${versions.join(', ')}.`,
        );
      }
      return version;
    };
    if (p === '/cloudapi/1.0.0/sessions/provider') {
      if (m !== 'POST')
        throw new HttpError(405, 'METHOD_NOT_ALLOWED', `HTTP method ${m} is not supported for ${p}.`);
      const v = checkVersion();
      const auth = req.headers.authorization ?? '';
      const creds = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString('utf8') : '';
      const colon = creds.indexOf(':');
      const user = colon < 0 ? '' : creds.slice(0, colon);
      const password = colon < 0 ? '' : creds.slice(colon + 1);
      if (user.toLowerCase() === options.username.toLowerCase() && password === options.password) {
        const session = { id: randomUUID(), user };
        const token = randomUUID().replace(/-/g, '');
        sessions.set(token, session);
        return {
          status: 200,
          type: `application/json;version=${v}`,
          headers: { 'X-VMWARE-VCLOUD-ACCESS-TOKEN': token, 'X-VMWARE-VCLOUD-TOKEN-TYPE': 'Bearer' },
          body: JSON.stringify({
            id: `urn:vcloud:session:${session.id}`,
            user: { name: user.split('@')[0], id: `urn:vcloud:user:${session.id}` },
            org: { name: 'System', id: 'urn:vcloud:org:system' },
            roles: ['System Administrator'],
            sessionIdleTimeoutMinutes: 30,
          }),
        };
      }
      const tenant = options.tenantUsers?.some((t) => t.username === user && t.password === password);
      if (tenant) {
        throw new HttpError(
          403,
          'ACCESS_TO_RESOURCE_IS_FORBIDDEN',
          `${user} is not a provider (System) user.`,
        );
      }
      throw new HttpError(401, 'UNAUTHORIZED', 'Invalid credentials.');
    }
    // Everything else needs a session.
    const auth = req.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ')
      ? auth.slice(7)
      : (req.headers['x-vcloud-authorization'] as string | undefined);
    const session = token ? sessions.get(token) : undefined;
    if (!session) throw new HttpError(401, 'UNAUTHORIZED', 'Authentication required: no valid Bearer token.');
    const g = /^\/cloudapi\/1\.0\.0\/sessions\/(.+)$/.exec(p);
    if (g) {
      if (m !== 'DELETE')
        throw new HttpError(405, 'METHOD_NOT_ALLOWED', `HTTP method ${m} is not supported for ${p}.`);
      const id = decodeURIComponent(g[1]!);
      if (id !== 'current' && id !== `urn:vcloud:session:${session.id}`) throw forbidden('Session: Delete');
      sessions.delete(token!);
      return { status: 204, type: '', body: '' };
    }
    if (!p.startsWith('/api/'))
      throw new HttpError(404, 'RESOURCE_NOT_FOUND', `No resource for the URL ${p}.`);
    return handleApi(req, url, body, checkVersion());
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', base);
      const body = Buffer.concat(chunks).toString('utf8');
      const version = acceptVersion(req) ?? versions.at(-1)!;
      const send = (r: Reply) => {
        calls.push({
          method: req.method ?? 'GET',
          path: url.pathname + url.search,
          target: req.url ?? '',
          status: r.status,
          ...(req.headers['content-type'] ? { contentType: req.headers['content-type'] } : {}),
          ...(req.headers.accept ? { accept: req.headers.accept } : {}),
          ...(body ? { body } : {}),
        });
        const headers: http.OutgoingHttpHeaders = { ...r.headers };
        if (r.type) headers['Content-Type'] = r.type;
        res.writeHead(r.status, headers);
        res.end(r.body);
      };
      handle(req, url, body).then(send, (e: unknown) => {
        const err =
          e instanceof HttpError ? e : new HttpError(500, 'INTERNAL_SERVER_ERROR', (e as Error).message);
        if (url.pathname.startsWith('/cloudapi/')) {
          send({
            status: err.status,
            type: `application/json;version=${version}`,
            body: JSON.stringify({ minorErrorCode: err.minor, message: err.message, stackTrace: null }),
          });
        } else {
          send({
            status: err.status,
            type: `application/vnd.vmware.vcloud.error+xml;version=${version}`,
            body: errorXml(err),
          });
        }
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const vmState = (v: Vm): FakeVmState => ({
    href: href.vm(v.id),
    name: v.name,
    moRef: v.moRef,
    status: v.status,
    deployed: v.deployed,
    poweredOn: v.status === 4,
    nics: v.nics.map((n) => ({ ...n })),
  });

  return {
    url: base,
    vimServerId,
    state: () => ({
      sessions: sessions.size,
      vapps: [...vapps.values()].map((a) => ({
        href: href.vapp(a.id),
        name: a.name,
        vdc: vdcs.get(a.vdcId)!.name,
        status: a.status,
        deployed: a.deployed,
        networks: a.networks.map((n) => ({
          name: n.networkName,
          fenceMode: n.fenceMode,
          ...(n.parentNetworkId ? { parent: networks.get(n.parentNetworkId)!.name } : {}),
        })),
        vms: a.vmIds.map((id) => vmState(vms.get(id)!)),
      })),
      templates: [...templates.values()].map((t) => ({
        href: href.template(t.id),
        name: t.name,
        vdc: vdcs.get(t.vdcId)!.name,
        catalog: catalogs.get(t.catalogId)!.name,
        status: t.status,
        vms: t.vmIds.map((id) => vmState(vms.get(id)!)),
      })),
      tasks: [...tasks.values()].map((t) => ({
        href: href.task(t.id),
        operationName: t.operationName,
        status: t.status,
        owner: t.owner.name,
        ...(t.error ? { error: t.error.message } : {}),
      })),
      calls: [...calls],
    }),
    setTaskRunningMs(value) {
      taskRunningMs = value;
    },
    async stop() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      if (vim) await (await vim.catch(() => undefined))?.logout();
    },
  };
}
