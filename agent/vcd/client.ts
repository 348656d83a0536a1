import { poll } from '../../core/wait.ts';
import type { TlsTrust } from '../vsphere/wire/tls.ts';
import {
  deployVAppParams,
  type IpAllocation,
  importVmAsVAppParams,
  importVmAsVAppTemplateParams,
  importVmIntoExistingVAppParams,
  instantiateVAppTemplateParams,
  MEDIA,
  type NicState,
  networkConfigSection,
  networkConnectionSection,
  readNics,
  type VAppNetworkConfig,
} from './documents.ts';
import { VcdConnection, VcdError } from './wire/connection.ts';
import { equalityFilterParams } from './wire/query-filter.ts';
import type { VcdNode } from './wire/xml.ts';

/** API versions this client speaks: provider sessions need ≥ 33.0; newest tested 38.0. */
export const VCD_MIN_VERSION = '33.0';
export const VCD_MAX_VERSION = '38.0';

export interface VcdClientOptions {
  /** vCloud Director URL, e.g. https://vcd.example.com (a trailing /api or /cloudapi is ignored). */
  readonly url: string;
  /** A provider user, `name@System` (`@System` is added when no org is given). */
  readonly username: string;
  readonly password: string;
  readonly trust: TlsTrust;
  /** Highest API version to use (default VCD_MAX_VERSION). */
  readonly maxVersion?: string;
  readonly timeoutMs?: number;
  /** Default task timeout (default 30 min) and first poll interval (default 200 ms). */
  readonly taskTimeoutMs?: number;
  readonly taskPollMs?: number;
  /** Cuts the version negotiation and the login. */
  readonly signal?: AbortSignal;
}

/**
 * What every call takes: `signal` ends it with the signal's reason. It cuts look-ups and task
 * waits (a task under way is then cancelled); a request that starts a task is left to answer, as
 * only its answer names the task to cancel.
 */
export interface VcdCallOptions {
  readonly signal?: AbortSignal | undefined;
}

/** A reference to an entity: its name and href (and what else the query told). */
export interface VcdRef {
  readonly name: string;
  readonly href: string;
  readonly attrs: Readonly<Record<string, string>>;
}

export type Placement = 'vapp' | 'existing-vapp' | 'catalog';

export interface ImportVmOptions {
  /** The VM's moref in the vCenter attached to vCD, e.g. `vm-42`. */
  readonly vmMoRef: string;
  /** Name of the VM in vCD; also the new vApp's or template's name unless `vapp`/`templateName` say otherwise. */
  readonly name: string;
  /** Target org VDC, by name or reference. */
  readonly vdc: string | VcdRef;
  readonly placement: Placement;
  /** 'vapp': the new vApp's name (default `name`); 'existing-vapp': the vApp to import into. */
  readonly vapp?: string;
  /** 'catalog': the catalog's name. */
  readonly catalog?: string;
  /** Move the VM rather than copy it (default true: the node imported it for vCD only). */
  readonly sourceMove?: boolean;
  /** Name of the vCenter registration, when vCD has several. */
  readonly vimServer?: string;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal | undefined;
}

export interface ImportVmResult {
  readonly vappHref?: string;
  readonly vmHref?: string;
  readonly templateHref?: string;
}

export interface InstantiateOptions {
  /** The vApp template (its href, as importVm returned it). */
  readonly templateHref: string;
  /** The org VDC the vApp is created in, by name or reference. */
  readonly vdc: string | VcdRef;
  /** Name of the new vApp. */
  readonly name: string;
  /** Org VDC network to add to the vApp as a bridged vApp network (the NICs are connected after). */
  readonly network?: string;
  readonly description?: string;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal | undefined;
}

export interface VAppSummary {
  readonly href: string;
  readonly name: string;
  readonly description?: string;
  /** vCD status code: -1 failed creation, 0 unresolved, 1 resolved, 4 powered on, 8 powered off. */
  readonly status: number;
  readonly deployed: boolean;
  readonly vms: { href: string; name: string; status: number; deployed: boolean }[];
}

const cmpVersion = (a: string, b: string): number => {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
};

/**
 * Typed vCloud Director operations over a provider session (legacy XML API under /api for the
 * objects, CloudAPI for the session).
 */
export class VcdClient {
  private sessionId: string | undefined;

  private constructor(
    readonly connection: VcdConnection,
    readonly apiVersion: string,
    readonly serverVersions: readonly string[],
    private readonly taskTimeoutMs: number,
    private readonly taskPollMs: number,
  ) {}

  /** Negotiates the API version (GET /api/versions) and opens a provider session. */
  static async connect(options: VcdClientOptions): Promise<VcdClient> {
    const connection = new VcdConnection({
      url: options.url,
      trust: options.trust,
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
    try {
      const versionsDoc = await connection.xml('GET', '/api/versions', {
        accept: 'application/*+xml',
        signal: options.signal,
      });
      if (versionsDoc.name !== 'SupportedVersions') {
        throw new VcdError(
          'VCD_TRANSPORT',
          `${connection.baseUrl.origin}/api/versions did not answer with SupportedVersions; is this vCloud Director?`,
        );
      }
      const serverVersions = versionsDoc
        .all('VersionInfo')
        .map((v) => v.str('Version'))
        .filter((v): v is string => v !== undefined);
      const max = options.maxVersion ?? VCD_MAX_VERSION;
      const usable = serverVersions
        .filter((v) => cmpVersion(v, max) <= 0 && cmpVersion(v, VCD_MIN_VERSION) >= 0)
        .sort(cmpVersion);
      const version = usable.at(-1);
      if (!version) {
        throw new VcdError(
          'VCD_VERSION',
          `vCloud Director at ${connection.baseUrl.host} offers API versions ${serverVersions.join(', ') || 'none'}; ` +
            `this agent needs one between ${VCD_MIN_VERSION} and ${max}.`,
        );
      }
      connection.apiVersion = version;
      const client = new VcdClient(
        connection,
        version,
        serverVersions,
        options.taskTimeoutMs ?? 30 * 60_000,
        options.taskPollMs ?? 200,
      );
      await client.login(options.username, options.password, options.signal);
      return client;
    } catch (error) {
      connection.close();
      throw error;
    }
  }

  private async login(username: string, password: string, signal: AbortSignal | undefined): Promise<void> {
    const user = username.includes('@') ? username : `${username}@System`;
    const basic = Buffer.from(`${user}:${password}`, 'utf8').toString('base64');
    const res = await this.connection.request('POST', '/cloudapi/1.0.0/sessions/provider', {
      accept: `application/json;version=${this.apiVersion}`,
      headers: { Authorization: `Basic ${basic}` },
      okStatuses: [401, 403],
      signal,
    });
    if (res.status === 401) {
      throw new VcdError(
        'VCD_AUTH',
        `vCloud Director at ${this.connection.baseUrl.host} refused the login of ${user}: wrong user name or password (check ODT_VCD_PASSWORD).`,
        { status: 401 },
      );
    }
    if (res.status === 403) {
      throw new VcdError(
        'VCD_AUTH',
        `${user} is not a provider user: log in as a System organization administrator (name@System).`,
        { status: 403 },
      );
    }
    const token = res.headers['x-vmware-vcloud-access-token'];
    if (typeof token !== 'string' || token === '') {
      throw new VcdError(
        'VCD_TRANSPORT',
        'the provider session answer carries no X-VMWARE-VCLOUD-ACCESS-TOKEN',
      );
    }
    this.connection.token = token;
    try {
      this.sessionId = (JSON.parse(res.text) as { id?: string }).id;
    } catch {
      this.sessionId = undefined;
    }
  }

  // ---- look-ups -----------------------------------------------------------------------------

  /**
   * Runs a records query; `filter` is ANDed `attr==value` conditions, given as plain values and
   * encoded here once, separators escaped (see wire/query-filter.ts).
   */
  async query(
    type: string,
    filter: Readonly<Record<string, string>> = {},
    options: VcdCallOptions = {},
  ): Promise<VcdRef[]> {
    const params = new URLSearchParams({ type, format: 'records', pageSize: '128' }).toString();
    const filterParams = equalityFilterParams(filter, this.apiVersion);
    const out: VcdRef[] = [];
    let next: string | undefined = `/api/query?${params}${filterParams ? `&${filterParams}` : ''}`;
    while (next) {
      const doc = await this.connection.xml('GET', next, options);
      for (const r of doc.children) {
        if (r.name === 'Link') continue;
        out.push({ name: r.attr('name') ?? '', href: r.attr('href') ?? '', attrs: r.attrs });
      }
      next = doc
        .all('Link')
        .find((l) => l.attr('rel') === 'nextPage')
        ?.attr('href');
    }
    return out;
  }

  private async findOne(
    type: string,
    filter: Record<string, string>,
    what: string,
    options: VcdCallOptions,
  ): Promise<VcdRef> {
    const found = await this.query(type, filter, options);
    if (found.length === 0) throw new VcdError('VCD_NOT_FOUND', `${what} does not exist in vCloud Director.`);
    if (found.length > 1) {
      throw new VcdError(
        'VCD_NOT_FOUND',
        `${what} is ambiguous: ${found.length} match (${found.map((f) => f.attrs.orgName ?? f.href).join(', ')}).`,
      );
    }
    return found[0]!;
  }

  findVdc(name: string, options: VcdCallOptions = {}): Promise<VcdRef> {
    return this.findOne('adminOrgVdc', { name }, `The org VDC "${name}"`, options);
  }

  findCatalog(name: string, options: VcdCallOptions = {}): Promise<VcdRef> {
    return this.findOne('adminCatalog', { name }, `The catalog "${name}"`, options);
  }

  async findOrgVdcNetwork(
    vdc: string | VcdRef,
    netName: string,
    options: VcdCallOptions = {},
  ): Promise<VcdRef> {
    const ref = typeof vdc === 'string' ? await this.findVdc(vdc, options) : vdc;
    return this.findOne(
      'orgVdcNetwork',
      { name: netName, vdc: ref.href },
      `The org VDC network "${netName}" in VDC "${ref.name}"`,
      options,
    );
  }

  /** The vApp with this name in the VDC, or undefined. */
  async findVApp(
    vdc: string | VcdRef,
    name: string,
    options: VcdCallOptions = {},
  ): Promise<VcdRef | undefined> {
    const ref = typeof vdc === 'string' ? await this.findVdc(vdc, options) : vdc;
    const found = await this.query('adminVApp', { name, vdc: ref.href }, options);
    return found[0];
  }

  /** The vCenter registration (GET /api/admin/extension/vimServerReferences): the only one, or the named one. */
  async vimServer(name?: string, options: VcdCallOptions = {}): Promise<VcdRef> {
    const doc = await this.connection.xml('GET', '/api/admin/extension/vimServerReferences', options);
    const refs = doc.all('VimServerReference').map((r) => ({
      name: r.attr('name') ?? '',
      href: r.attr('href') ?? '',
      attrs: r.attrs,
    }));
    if (name !== undefined) {
      const hit = refs.find((r) => r.name === name);
      if (!hit) {
        throw new VcdError(
          'VCD_NOT_FOUND',
          `No vCenter named "${name}" is attached to vCloud Director (attached: ${refs.map((r) => r.name).join(', ') || 'none'}).`,
        );
      }
      return hit;
    }
    if (refs.length === 1) return refs[0]!;
    if (refs.length === 0) throw new VcdError('VCD_NOT_FOUND', 'No vCenter is attached to vCloud Director.');
    throw new VcdError(
      'VCD_NOT_FOUND',
      `vCloud Director has ${refs.length} vCenters (${refs.map((r) => r.name).join(', ')}); name the one to import from.`,
    );
  }

  async getVApp(href: string, options: VcdCallOptions = {}): Promise<VAppSummary> {
    const doc = await this.connection.xml('GET', href, options);
    const description = doc.str('Description');
    return {
      href: doc.attr('href') ?? href,
      name: doc.attr('name') ?? '',
      ...(description === undefined ? {} : { description }),
      status: Number(doc.attr('status') ?? '0'),
      deployed: doc.attr('deployed') === 'true',
      vms: (doc.child('Children')?.all('Vm') ?? []).map((vm) => ({
        href: vm.attr('href') ?? '',
        name: vm.attr('name') ?? '',
        status: Number(vm.attr('status') ?? '0'),
        deployed: vm.attr('deployed') === 'true',
      })),
    };
  }

  // ---- import -------------------------------------------------------------------------------

  /**
   * Has vCD take over a VM of its vCenter: as a new vApp, into an existing vApp, or as a vApp
   * template in a catalog. Waits for the task. Errors name the VM.
   */
  async importVm(o: ImportVmOptions): Promise<ImportVmResult> {
    const label = `VM ${o.vmMoRef} ("${o.name}")`;
    const timeoutMs = o.timeoutMs ?? this.taskTimeoutMs;
    const call = { signal: o.signal };
    const wait = { timeoutMs, signal: o.signal };
    try {
      const vdc = typeof o.vdc === 'string' ? await this.findVdc(o.vdc, call) : o.vdc;
      const vim = await this.vimServer(o.vimServer, call);
      const common = { vmMoRef: o.vmMoRef, vmName: o.name, sourceMove: o.sourceMove ?? true };
      if (o.placement === 'vapp') {
        const doc = await this.connection.xml('POST', `${vim.href}/importVmAsVApp`, {
          contentType: MEDIA.importVmAsVAppParams,
          body: importVmAsVAppParams({ ...common, vappName: o.vapp ?? o.name, vdcHref: vdc.href }),
        });
        const vappHref = requireHref(doc, 'VApp');
        await this.waitForEmbeddedTasks(doc, wait);
        const vapp = await this.getVApp(vappHref, call);
        const vm = vapp.vms.find((v) => v.name === o.name) ?? vapp.vms[0];
        return { vappHref, ...(vm ? { vmHref: vm.href } : {}) };
      }
      if (o.placement === 'existing-vapp') {
        if (!o.vapp) throw new VcdError('VCD_NOT_FOUND', 'placement existing-vapp needs the vApp name');
        const target = await this.findVApp(vdc, o.vapp, call);
        if (!target) {
          throw new VcdError('VCD_NOT_FOUND', `The vApp "${o.vapp}" does not exist in VDC "${vdc.name}".`);
        }
        const task = await this.connection.xml('POST', `${vim.href}/importVmIntoExistingVApp`, {
          contentType: MEDIA.importVmIntoExistingVAppParams,
          body: importVmIntoExistingVAppParams({ ...common, vappHref: target.href }),
        });
        await this.waitForTask(task, wait);
        const vapp = await this.getVApp(target.href, call);
        const vm = vapp.vms.find((v) => v.name === o.name);
        return { vappHref: target.href, ...(vm ? { vmHref: vm.href } : {}) };
      }
      if (!o.catalog) throw new VcdError('VCD_NOT_FOUND', 'placement catalog needs the catalog name');
      const catalog = await this.findCatalog(o.catalog, call);
      const doc = await this.connection.xml('POST', `${vim.href}/importVmAsVAppTemplate`, {
        contentType: MEDIA.importVmAsVAppTemplateParams,
        body: importVmAsVAppTemplateParams({
          ...common,
          templateName: o.vapp ?? o.name,
          vdcHref: vdc.href,
          catalogHref: catalog.href,
        }),
      });
      const templateHref = requireHref(doc, 'VAppTemplate');
      await this.waitForEmbeddedTasks(doc, wait);
      const tpl = await this.connection.xml('GET', templateHref, call);
      const vm = tpl.child('Children')?.all('Vm')[0];
      return { templateHref, ...(vm?.attr('href') ? { vmHref: vm.attr('href')! } : {}) };
    } catch (error) {
      throw inContext(error, `Importing ${label} into vCloud Director failed`);
    }
  }

  /**
   * Creates a vApp in the VDC from a vApp template (POST /vdc/{id}/action/instantiateVAppTemplate)
   * and waits for the task. The vApp is neither deployed nor powered on (the server defaults both
   * to true; they are sent false so that the NICs can be connected first). Errors name the template.
   */
  async instantiateVAppTemplate(o: InstantiateOptions): Promise<{ vappHref: string; vmHrefs: string[] }> {
    const label = `vApp template ${o.templateHref} as vApp "${o.name}"`;
    const call = { signal: o.signal };
    try {
      const vdc = typeof o.vdc === 'string' ? await this.findVdc(o.vdc, call) : o.vdc;
      const networks = o.network
        ? [
            {
              networkName: o.network,
              parentHref: (await this.findOrgVdcNetwork(vdc, o.network, call)).href,
              fenceMode: 'bridged',
            },
          ]
        : [];
      // The query service answers admin hrefs (/api/admin/vdc/{id}); the action lives under /api/vdc/{id}.
      const vdcHref = stripSlash(vdc.href).replace('/api/admin/vdc/', '/api/vdc/');
      const doc = await this.connection.xml('POST', `${vdcHref}/action/instantiateVAppTemplate`, {
        contentType: MEDIA.instantiateVAppTemplateParams,
        body: instantiateVAppTemplateParams({
          name: o.name,
          templateHref: o.templateHref,
          deploy: false,
          powerOn: false,
          networks,
          ...(o.description === undefined ? {} : { description: o.description }),
        }),
      });
      const vappHref = requireHref(doc, 'VApp');
      await this.waitForEmbeddedTasks(doc, {
        timeoutMs: o.timeoutMs ?? this.taskTimeoutMs,
        signal: o.signal,
      });
      const vapp = await this.getVApp(vappHref, call);
      return { vappHref, vmHrefs: vapp.vms.map((v) => v.href) };
    } catch (error) {
      throw inContext(error, `Instantiating ${label} failed`);
    }
  }

  // ---- tasks --------------------------------------------------------------------------------

  /**
   * Waits, one after the other and within one deadline, for every Task in the entity's Tasks (a
   * created vApp may carry more than one; go-vcloud-director, govcd/vdc.go
   * `CreateVappFromTemplate`, waits for each too). The first that does not succeed is reported
   * with its place, operationName and href.
   */
  private async waitForEmbeddedTasks(
    entity: VcdNode,
    options: VcdCallOptions & { readonly timeoutMs: number },
  ): Promise<void> {
    const tasks = entity.child('Tasks')?.all('Task') ?? [];
    const deadline = Date.now() + options.timeoutMs;
    for (const [i, task] of tasks.entries()) {
      try {
        await this.waitForTask(task, {
          timeoutMs: Math.max(deadline - Date.now(), 0),
          signal: options.signal,
        });
      } catch (error) {
        if (tasks.length === 1 || options.signal?.aborted) throw error;
        const name = task.attr('operationName') ?? task.attr('operation') ?? 'task';
        throw inContext(
          error,
          `Task ${i + 1} of ${tasks.length} (${name}, ${task.attr('href') ?? 'no href'})`,
        );
      }
    }
  }

  /**
   * Polls a Task (node or href) until it ends: first after `taskPollMs`, each pause 1.5 times the
   * one before, at most 5 s. Throws VcdError VCD_TASK unless it succeeded, VCD_TIMEOUT after
   * `timeoutMs` (default the client's task timeout, 30 min). An abort of `signal` ends the wait at
   * once with the signal's reason, and asks vCD to cancel the task where the task offers it
   * (`task:cancel`), so that an interrupted import or power-on does not go on unattended.
   */
  async waitForTask(
    task: VcdNode | string,
    options: VcdCallOptions & { readonly timeoutMs?: number } = {},
  ): Promise<VcdNode> {
    const { signal } = options;
    const timeoutMs = options.timeoutMs ?? this.taskTimeoutMs;
    let node = typeof task === 'string' ? await this.connection.xml('GET', task, { signal }) : task;
    const href = node.attr('href');
    if (!href) throw new VcdError('VCD_TRANSPORT', 'a Task without href');
    let fresh = true;
    try {
      return await poll({
        what: `vCloud Director task ${href}`,
        until: async (probeSignal) => {
          if (!fresh) node = await this.connection.xml('GET', href, { signal: probeSignal });
          fresh = false;
          return taskEnded(node);
        },
        intervalMs: { initialMs: this.taskPollMs, factor: 1.5, maxMs: 5_000 },
        timeoutMs,
        signal,
        onTimeout: () =>
          new VcdError(
            'VCD_TIMEOUT',
            `task ${href} (${node.attr('operation') ?? ''}) still ${node.attr('status')} after ${timeoutMs} ms`,
          ),
      });
    } catch (error) {
      if (signal?.aborted) await this.cancelTask(node);
      throw error;
    }
  }

  /**
   * Asks vCD to cancel a task that offers it (its `task:cancel` link; API reference, Task);
   * never throws (it runs while failing for another reason) and gives up after 5 s.
   */
  private async cancelTask(task: VcdNode): Promise<void> {
    const status = task.attr('status');
    if (status !== 'queued' && status !== 'preRunning' && status !== 'running') return;
    const cancel = task
      .all('Link')
      .find((l) => l.attr('rel') === 'task:cancel')
      ?.attr('href');
    if (!cancel) return;
    await this.connection
      .request('POST', cancel, { signal: AbortSignal.timeout(5_000) })
      .catch(() => undefined);
  }

  // ---- network, deploy, power ---------------------------------------------------------------

  /**
   * Connects the VM's NICs (all of them, or `nicIndex` only) to an org VDC network, first adding
   * that network to the vApp's network configuration (bridged) when it is not there yet.
   */
  async connectNetwork(
    vmHref: string,
    network: string,
    options: VcdCallOptions & { isConnected?: boolean; allocation?: IpAllocation; nicIndex?: number } = {},
  ): Promise<NicState[]> {
    const call = { signal: options.signal };
    const vm = await this.connection.xml('GET', vmHref, call);
    const vappHref = upLink(vm, 'application/vnd.vmware.vcloud.vApp+xml');
    if (!vappHref) throw new VcdError('VCD_TRANSPORT', `the VM ${vmHref} names no parent vApp`);
    const vapp = await this.connection.xml('GET', vappHref, call);
    const vdcHref = upLink(vapp, 'application/vnd.vmware.vcloud.vdc+xml');
    if (!vdcHref) throw new VcdError('VCD_TRANSPORT', `the vApp ${vappHref} names no VDC`);

    const configHref = `${stripSlash(vappHref)}/networkConfigSection/`;
    const configDoc = await this.connection.xml('GET', configHref, call);
    const configs: VAppNetworkConfig[] = configDoc.all('NetworkConfig').map((c) => ({
      networkName: c.attr('networkName') ?? '',
      fenceMode: c.child('Configuration')?.str('FenceMode') ?? 'isolated',
      raw: c,
    }));
    if (!configs.some((c) => c.networkName === network)) {
      const found = await this.query('orgVdcNetwork', { name: network, vdc: vdcHref }, call);
      const net = found[0];
      if (!net) {
        throw new VcdError(
          'VCD_NOT_FOUND',
          `The org VDC network "${network}" does not exist in the VDC of vApp "${vapp.attr('name') ?? vappHref}".`,
        );
      }
      const task = await this.connection.xml('PUT', configHref, {
        contentType: MEDIA.networkConfigSection,
        body: networkConfigSection([
          ...configs,
          { networkName: network, parentHref: net.href, fenceMode: 'bridged' },
        ]),
      });
      await this.waitForTask(task, call);
    }

    const sectionHref = `${stripSlash(vmHref)}/networkConnectionSection/`;
    const section = await this.connection.xml('GET', sectionHref, call);
    const { primary, nics } = readNics(section);
    if (nics.length === 0)
      throw new VcdError('VCD_NOT_FOUND', `the VM ${vm.attr('name') ?? vmHref} has no NIC`);
    if (options.nicIndex !== undefined && !nics.some((n) => n.index === options.nicIndex)) {
      throw new VcdError(
        'VCD_NOT_FOUND',
        `the VM ${vm.attr('name') ?? vmHref} has no NIC ${options.nicIndex}`,
      );
    }
    const updated = nics.map((n) =>
      options.nicIndex === undefined || n.index === options.nicIndex
        ? {
            ...n,
            network,
            isConnected: options.isConnected ?? true,
            allocation: options.allocation ?? 'DHCP',
          }
        : n,
    );
    const task = await this.connection.xml('PUT', sectionHref, {
      contentType: MEDIA.networkConnectionSection,
      body: networkConnectionSection(primary ?? updated[0]!.index, updated),
    });
    await this.waitForTask(task, call);
    return updated;
  }

  /** Deploys a vApp (or VM), powering it on when asked. */
  async deploy(href: string, options: VcdCallOptions & { powerOn: boolean }): Promise<void> {
    const task = await this.connection.xml('POST', `${stripSlash(href)}/action/deploy`, {
      contentType: MEDIA.deployVAppParams,
      body: deployVAppParams(options.powerOn),
    });
    await this.waitForTask(task, { signal: options.signal });
  }

  /** Powers on a vApp or VM. */
  async powerOn(href: string, options: VcdCallOptions = {}): Promise<void> {
    const task = await this.connection.xml('POST', `${stripSlash(href)}/power/action/powerOn`);
    await this.waitForTask(task, options);
  }

  async logout(): Promise<void> {
    try {
      await this.connection.request('DELETE', `/cloudapi/1.0.0/sessions/${this.sessionId ?? 'current'}`, {
        accept: `application/json;version=${this.apiVersion}`,
      });
    } catch {
      // The session may already be gone.
    } finally {
      this.connection.token = undefined;
      this.connection.close();
    }
  }
}

/** The task itself when it succeeded; undefined while it runs; throws VCD_TASK when it failed. */
function taskEnded(node: VcdNode): VcdNode | undefined {
  const status = node.attr('status');
  if (status === 'success') return node;
  if (status === 'error' || status === 'aborted' || status === 'canceled') {
    const err = node.child('Error');
    const op = node.attr('operation') ?? node.attr('operationName') ?? 'task';
    const message = err?.attr('message');
    throw new VcdError('VCD_TASK', `${op} ended ${status}${message ? `: ${message}` : ''}`, {
      ...(err?.attr('majorErrorCode') ? { status: Number(err.attr('majorErrorCode')) } : {}),
      ...(err?.attr('minorErrorCode') ? { minorErrorCode: err.attr('minorErrorCode')! } : {}),
      ...(message === undefined ? {} : { vcdMessage: message }),
    });
  }
  return undefined;
}

/** A VcdError with what was being done put in front of its message; other errors as they are. */
function inContext(error: unknown, doing: string): unknown {
  if (!(error instanceof VcdError)) return error;
  return new VcdError(error.code, `${doing}: ${error.message}`, {
    ...(error.status === undefined ? {} : { status: error.status }),
    ...(error.minorErrorCode === undefined ? {} : { minorErrorCode: error.minorErrorCode }),
    ...(error.vcdMessage === undefined ? {} : { vcdMessage: error.vcdMessage }),
    cause: error,
  });
}

function requireHref(doc: VcdNode, expected: string): string {
  const href = doc.attr('href');
  if (doc.name !== expected || !href) {
    throw new VcdError('VCD_TRANSPORT', `expected a ${expected} with an href, got <${doc.name}>`);
  }
  return href;
}

function upLink(doc: VcdNode, type: string): string | undefined {
  return doc
    .all('Link')
    .find((l) => l.attr('rel') === 'up' && l.attr('type')?.toLowerCase() === type.toLowerCase())
    ?.attr('href');
}

const stripSlash = (href: string) => href.replace(/\/+$/, '');

export { VcdError };
