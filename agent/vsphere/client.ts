import { poll, WaitTimeoutError } from '../../core/wait.ts';
import { DeviceHosts } from './device-hosts.ts';
import type { VimArgs, VimMethod } from './wire/methods.ts';
import type { Moref, VimObject } from './wire/serialize.ts';
import { SoapConnection, VimFaultError, VimTransportError } from './wire/soap-connection.ts';
import type { TlsTrust } from './wire/tls.ts';
import type { XmlNode } from './wire/xml.ts';

export interface ServiceContent {
  readonly rootFolder: Moref;
  readonly propertyCollector: Moref;
  readonly viewManager: Moref;
  readonly sessionManager: Moref;
  readonly ovfManager: Moref;
  readonly searchIndex: Moref;
  readonly fileManager?: Moref;
  readonly customFieldsManager?: Moref;
  readonly authorizationManager?: Moref;
  readonly about: { readonly apiVersion: string; readonly fullName: string; readonly apiType: string };
}

export interface VimClientOptions {
  /** vCenter URL; a bare host or `https://host` gets `/sdk` appended. */
  readonly url: string;
  readonly username: string;
  readonly password: string;
  readonly trust: TlsTrust;
  readonly timeoutMs?: number;
}

/** One managed object's properties as returned by the property collector. */
export interface ObjectContent {
  readonly obj: Moref;
  readonly props: ReadonlyMap<string, XmlNode>;
}

/** Normalizes what people type for a vCenter into its SDK URL. */
export function sdkUrl(input: string): URL {
  const bad = (why: string) =>
    new VimTransportError(
      `'${input}' is not a vCenter URL: ${why}; give https://<host>[:port][/sdk] or just the host.`,
    );
  // A scheme without its two slashes, or a misspelt one, would otherwise be taken for a host name.
  if (/^[a-z][a-z0-9+.-]*:(?!\d+(?:\/|$))/i.test(input) && !/^[a-z][a-z0-9+.-]*:\/\//i.test(input)) {
    throw bad(`'${input.split(':')[0]}:' is not followed by //`);
  }
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(input) ? input : `https://${input}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw bad('it does not parse as a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw bad(`the scheme is ${url.protocol} (only https: or http:)`);
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/sdk';
  url.username = '';
  url.password = '';
  return url;
}

const mor = (node: XmlNode | undefined, what: string): Moref => {
  if (!node) throw new Error(`ServiceContent has no ${what}`);
  return node.moref;
};

/**
 * Typed vim25 operations over a session. A call that fails with NotAuthenticated (the session
 * expired or the server restarted) logs in again once and repeats the call.
 */
export class VimClient {
  /** The ESXi hosts NFC leases send transfers to, each reached with its own trust. */
  readonly deviceHosts: DeviceHosts;
  /**
   * Whether the server answers WaitForUpdatesEx: unknown until a wait tries it, false once it
   * answered MethodNotFound (waits then poll).
   */
  waitForUpdatesSupported: boolean | undefined;

  private constructor(
    readonly connection: SoapConnection,
    readonly serviceContent: ServiceContent,
    private readonly credentials: { username: string; password: string },
  ) {
    this.deviceHosts = new DeviceHosts(connection);
  }

  /** Connects, learns the API version, and logs in. */
  static async connect(options: VimClientOptions): Promise<VimClient> {
    const connection = new SoapConnection({
      url: sdkUrl(options.url),
      trust: options.trust,
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
    try {
      const res = await connection.call('RetrieveServiceContent', {
        _this: { type: 'ServiceInstance', value: 'ServiceInstance' },
      });
      const sc = res.child('returnval');
      if (!sc) throw new Error('RetrieveServiceContent returned nothing');
      const about = sc.child('about');
      const content: ServiceContent = {
        rootFolder: mor(sc.child('rootFolder'), 'rootFolder'),
        propertyCollector: mor(sc.child('propertyCollector'), 'propertyCollector'),
        viewManager: mor(sc.child('viewManager'), 'viewManager'),
        sessionManager: mor(sc.child('sessionManager'), 'sessionManager'),
        ovfManager: mor(sc.child('ovfManager'), 'ovfManager'),
        searchIndex: mor(sc.child('searchIndex'), 'searchIndex'),
        ...(sc.child('fileManager') ? { fileManager: sc.child('fileManager')!.moref } : {}),
        ...(sc.child('customFieldsManager')
          ? { customFieldsManager: sc.child('customFieldsManager')!.moref }
          : {}),
        ...(sc.child('authorizationManager')
          ? { authorizationManager: sc.child('authorizationManager')!.moref }
          : {}),
        about: {
          apiVersion: about?.str('apiVersion') ?? '7.0',
          fullName: about?.str('fullName') ?? '',
          apiType: about?.str('apiType') ?? '',
        },
      };
      connection.apiVersion = content.about.apiVersion;
      const client = new VimClient(connection, content, {
        username: options.username,
        password: options.password,
      });
      await client.login();
      return client;
    } catch (error) {
      connection.close();
      throw error;
    }
  }

  private async login(): Promise<void> {
    this.connection.clearSession();
    await this.connection.call('Login', {
      _this: this.serviceContent.sessionManager,
      userName: this.credentials.username,
      password: this.credentials.password,
    });
  }

  /** Calls a method; logs in again once when the session has expired. `signal` cuts the call. */
  async invoke<M extends VimMethod>(
    method: M,
    args: VimArgs<M>,
    options: { readonly signal?: AbortSignal } = {},
  ): Promise<XmlNode> {
    try {
      return await this.connection.call(method, args, options);
    } catch (error) {
      if (error instanceof VimFaultError && error.faultType === 'NotAuthenticated') {
        await this.login();
        return this.connection.call(method, args, options);
      }
      throw error;
    }
  }

  /** Retrieves objects' properties, following ContinueRetrievePropertiesEx tokens to the end. */
  async retrieve(
    specSet: readonly VimObject[],
    maxObjects?: number,
    options: { readonly signal?: AbortSignal } = {},
  ): Promise<ObjectContent[]> {
    const pc = this.serviceContent.propertyCollector;
    const results: ObjectContent[] = [];
    let res = await this.invoke(
      'RetrievePropertiesEx',
      { _this: pc, specSet, options: maxObjects === undefined ? {} : { maxObjects } },
      options,
    );
    for (;;) {
      const rv = res.child('returnval');
      if (!rv) break;
      for (const oc of rv.all('objects')) results.push(toObjectContent(oc));
      const token = rv.str('token');
      if (!token) break;
      res = await this.invoke('ContinueRetrievePropertiesEx', { _this: pc, token }, options);
    }
    return results;
  }

  /** The given properties of one object; a property that is unset is absent from the map. */
  async properties(
    obj: Moref,
    type: string,
    pathSet: readonly string[],
    options: { readonly signal?: AbortSignal } = {},
  ): Promise<ReadonlyMap<string, XmlNode>> {
    const [oc] = await this.retrieve(
      [{ propSet: [{ type, pathSet }], objectSet: [{ obj, skip: false }] }],
      undefined,
      options,
    );
    return oc?.props ?? new Map();
  }

  /** Every object of the given types below `root`, with the given properties (a container view). */
  async listByType(
    types: readonly string[],
    pathSet: readonly string[],
    root?: Moref,
  ): Promise<ObjectContent[]> {
    const res = await this.invoke('CreateContainerView', {
      _this: this.serviceContent.viewManager,
      container: root ?? this.serviceContent.rootFolder,
      type: types,
      recursive: true,
    });
    const view = res.child('returnval')!.moref;
    try {
      return await this.retrieve([
        {
          propSet: types.map((type) => ({ type, pathSet })),
          objectSet: [
            {
              obj: view,
              skip: true,
              selectSet: [
                { $type: 'TraversalSpec', name: 'view', type: 'ContainerView', path: 'view', skip: false },
              ],
            },
          ],
        },
      ]);
    } finally {
      await this.invoke('DestroyView', { _this: view }).catch(() => undefined);
    }
  }

  /**
   * Waits for a task to end; returns its result element, or throws its fault. Reads the task
   * every `pollMs` (default 250 ms) until `timeoutMs` (default 30 min: a WaitTimeoutError naming
   * the task and its last state); `signal` ends the wait at once (the task itself goes on).
   */
  async waitForTask(
    task: Moref,
    options: { readonly timeoutMs?: number; readonly signal?: AbortSignal; readonly pollMs?: number } = {},
  ): Promise<XmlNode | undefined> {
    let state: string | undefined;
    const timeoutMs = options.timeoutMs ?? 30 * 60_000;
    const done = await poll({
      what: `vCenter task ${task.value} to end`,
      until: async (signal) => {
        const props = await this.properties(
          task,
          'Task',
          ['info.state', 'info.error', 'info.result'],
          signal ? { signal } : {},
        );
        state = props.get('info.state')?.text;
        if (state === 'success') return { result: props.get('info.result') };
        if (state === 'error') {
          const err = props.get('info.error');
          const fault = err?.child('fault');
          throw new VimFaultError(
            `Task ${task.value}`,
            fault?.typeName ?? 'TaskError',
            err?.str('localizedMessage') ?? '',
            fault,
          );
        }
        return undefined;
      },
      intervalMs: options.pollMs ?? 250,
      timeoutMs,
      signal: options.signal,
      onTimeout: () =>
        new WaitTimeoutError(
          `vCenter task ${task.value} to end (it is still ${state ?? 'queued'})`,
          timeoutMs,
        ),
    });
    return done.result;
  }

  async logout(): Promise<void> {
    try {
      await this.connection.call('Logout', { _this: this.serviceContent.sessionManager });
    } catch {
      // The session may already be gone; nothing to undo.
    } finally {
      this.deviceHosts.close();
      this.connection.close();
    }
  }
}

function toObjectContent(node: XmlNode): ObjectContent {
  const props = new Map<string, XmlNode>();
  for (const p of node.all('propSet')) {
    const name = p.str('name');
    const val = p.child('val');
    if (name !== undefined && val) props.set(name, val);
  }
  return { obj: node.child('obj')!.moref, props };
}
