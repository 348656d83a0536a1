import { poll } from '../../core/wait.ts';
import { AgentError } from '../errors.ts';
import type { VimClient } from './client.ts';
import type { Moref } from './wire/serialize.ts';
import { VimFaultError } from './wire/soap-connection.ts';
import type { XmlNode } from './wire/xml.ts';

export interface DeviceUrl {
  /** Device key (export) and the import key the ImportSpec gave the file (import). */
  readonly key: string;
  readonly importKey: string;
  /** With the `*` host replaced by the vCenter's. */
  readonly url: URL;
  readonly sslThumbprint?: string;
  readonly disk: boolean;
  readonly targetId?: string;
  readonly fileSize?: number;
}

export interface LeaseInfo {
  /** The VM or vApp the lease exports, or the one an import created. */
  readonly entity?: Moref;
  readonly deviceUrls: readonly DeviceUrl[];
  readonly leaseTimeoutSeconds: number;
  readonly totalDiskCapacityKB: number;
}

/** One file of HttpNfcLeaseGetManifest; `checksum` (lower-case hex) only where the server gives one. */
export interface LeaseManifestEntry {
  readonly size: number;
  readonly sha1: string;
  readonly checksum?: string;
  readonly checksumType?: string;
}

/** How `waitReady` waits: WaitForUpdatesEx with polling as the fallback (auto), or only one of them. */
export type LeaseWaitMethod = 'auto' | 'updates' | 'poll';

export interface WaitReadyOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  readonly method?: LeaseWaitMethod;
}

/** The lease ended in `error`: the server aborted it, it timed out, or it could not be set up. */
export class LeaseError extends AgentError<'NFC_LEASE_ERROR'> {
  constructor(
    readonly lease: string,
    readonly faultType: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('NFC_LEASE_ERROR', `NFC lease ${lease} failed (${faultType}): ${message}`, options);
    this.name = 'LeaseError';
  }
}

/** An HttpNfcLease for export or import: wait until ready, renew, complete or abort. */
export class NfcLease {
  constructor(
    readonly client: VimClient,
    readonly ref: Moref,
  ) {}

  /**
   * Waits until the lease leaves `initializing` (default deadline 5 min); throws LeaseError when
   * it ends in `error`. Waits with WaitForUpdatesEx on the lease's `state`, `error` and `info`
   * (govmomi's `nfc.Lease.Wait` through `property.Wait` does the same), and polls where the
   * server lacks it (MethodNotFound) or `method` says so. `signal` cuts a wait under way.
   */
  async waitReady(options: WaitReadyOptions = {}): Promise<LeaseInfo> {
    const timeoutMs = options.timeoutMs ?? 300_000;
    const deadline = Date.now() + timeoutMs;
    const method = options.method ?? 'auto';
    if (method === 'updates' || (method === 'auto' && this.client.waitForUpdatesSupported !== false)) {
      try {
        const info = await this.waitByUpdates(deadline, timeoutMs, options.signal);
        this.client.waitForUpdatesSupported = true;
        return info;
      } catch (error) {
        const missing = error instanceof VimFaultError && error.faultType === 'MethodNotFound';
        if (!missing || method === 'updates') throw error;
        this.client.waitForUpdatesSupported = false;
      }
    }
    return this.waitByPolling(deadline, timeoutMs, options.signal);
  }

  /**
   * A property collector of its own (the session's default one may serve other waits, and a
   * collector has one wait at a time), a filter on the lease, then WaitForUpdatesEx with the
   * version of the last answer until the state is no longer `initializing`.
   */
  private async waitByUpdates(deadline: number, timeoutMs: number, signal?: AbortSignal): Promise<LeaseInfo> {
    const { client } = this;
    const created = await client.invoke(
      'CreatePropertyCollector',
      { _this: client.serviceContent.propertyCollector },
      signal ? { signal } : {},
    );
    const collector = created.child('returnval')!.moref;
    try {
      await client.invoke(
        'CreateFilter',
        {
          _this: collector,
          spec: {
            propSet: [{ type: 'HttpNfcLease', pathSet: ['state', 'error', 'info'] }],
            objectSet: [{ obj: this.ref, skip: false }],
          },
          partialUpdates: false,
        },
        signal ? { signal } : {},
      );
      const seen = new Map<string, XmlNode | undefined>();
      let version = '';
      for (;;) {
        const state = seen.get('state')?.text;
        if (state === 'ready') {
          const info =
            seen.get('info') ??
            (await this.client.properties(this.ref, 'HttpNfcLease', ['info'], signal ? { signal } : {})).get(
              'info',
            );
          return this.parseInfo(info);
        }
        if (state === 'error' || state === 'done') throw this.errorFrom(seen.get('error'), state);
        const left = deadline - Date.now();
        if (left <= 0) throw this.stillInitializing(state, timeoutMs);
        const res = await client.invoke(
          'WaitForUpdatesEx',
          { _this: collector, version, options: { maxWaitSeconds: Math.min(60, Math.ceil(left / 1000)) } },
          signal ? { signal } : {},
        );
        // No returnval: maxWaitSeconds passed without a change.
        const set = res.child('returnval');
        if (!set) continue;
        version = set.str('version') ?? version;
        for (const object of set.all('filterSet').flatMap((f) => f.all('objectSet'))) {
          if (object.str('kind') === 'leave') {
            throw new LeaseError(this.ref.value, 'ManagedObjectNotFound', 'the lease no longer exists');
          }
          for (const change of object.all('changeSet')) {
            const op = change.str('op');
            seen.set(
              change.str('name') ?? '',
              op === 'remove' || op === 'indirectRemove' ? undefined : change.child('val'),
            );
          }
        }
      }
    } finally {
      await client.invoke('DestroyPropertyCollector', { _this: collector }).catch(() => undefined);
    }
  }

  /** Every 50 ms for the first second (a lease is often ready in a fraction of one), then up to every 2 s. */
  private async waitByPolling(deadline: number, timeoutMs: number, signal?: AbortSignal): Promise<LeaseInfo> {
    let state: string | undefined;
    return poll({
      what: `the NFC lease ${this.ref.value} to be ready`,
      until: async (probeSignal) => {
        const props = await this.client.properties(
          this.ref,
          'HttpNfcLease',
          ['state', 'error', 'info'],
          probeSignal ? { signal: probeSignal } : {},
        );
        state = props.get('state')?.text;
        if (state === 'ready') return this.parseInfo(props.get('info'));
        if (state === 'error' || state === 'done') throw this.errorFrom(props.get('error'), state);
        return undefined;
      },
      intervalMs: { initialMs: 50, factor: 2, maxMs: 2_000, holdMs: 1_000 },
      timeoutMs: Math.max(0, deadline - Date.now()),
      signal,
      onTimeout: () => this.stillInitializing(state, timeoutMs),
    });
  }

  private stillInitializing(state: string | undefined, timeoutMs: number): LeaseError {
    return new LeaseError(
      this.ref.value,
      'Timeout',
      `still '${state ?? 'initializing'}' after ${timeoutMs} ms`,
    );
  }

  /** Current state and error, for a transfer that wants to know why its stream broke. */
  async state(): Promise<{ state: string; error?: LeaseError }> {
    const props = await this.client.properties(this.ref, 'HttpNfcLease', ['state', 'error']);
    const state = props.get('state')?.text ?? 'unknown';
    return state === 'error' ? { state, error: this.errorFrom(props.get('error'), state) } : { state };
  }

  /**
   * HttpNfcLeaseGetManifest: per device key, the size and checksums of the stream the server sent
   * ("can be used to verify that the bytes received by the client match those sent by the HttpNfc
   * server", vSphere API reference, HttpNfcLeaseManifestEntry). Counts as a keep-alive.
   */
  async manifest(): Promise<ReadonlyMap<string, LeaseManifestEntry>> {
    let res: XmlNode;
    try {
      res = await this.client.invoke('HttpNfcLeaseGetManifest', { _this: this.ref });
    } catch (error) {
      throw this.wrap(error);
    }
    const entries = new Map<string, LeaseManifestEntry>();
    for (const e of res.all('returnval')) {
      const checksum = e.str('checksum');
      const checksumType = e.str('checksumType');
      entries.set(e.str('key') ?? '', {
        size: Number(e.str('size') ?? Number.NaN),
        sha1: (e.str('sha1') ?? '').toLowerCase(),
        ...(checksum && checksumType ? { checksum: checksum.toLowerCase(), checksumType } : {}),
      });
    }
    return entries;
  }

  /** Renews the lease and reports progress (0–100). */
  async progress(percent: number): Promise<void> {
    try {
      await this.client.invoke('HttpNfcLeaseProgress', {
        _this: this.ref,
        percent: Math.max(0, Math.min(100, Math.floor(percent))),
      });
    } catch (error) {
      throw this.wrap(error);
    }
  }

  async complete(): Promise<void> {
    try {
      await this.client.invoke('HttpNfcLeaseComplete', { _this: this.ref });
    } catch (error) {
      throw this.wrap(error);
    }
  }

  /** Aborts the lease; never throws (it is called while failing for another reason). */
  async abort(): Promise<void> {
    await this.client.invoke('HttpNfcLeaseAbort', { _this: this.ref }).catch(() => undefined);
  }

  private parseInfo(info: XmlNode | undefined): LeaseInfo {
    if (!info) throw new LeaseError(this.ref.value, 'NoInfo', 'the ready lease has no info');
    const sdk = this.client.connection.url;
    const deviceUrls = info.all('deviceUrl').map((d) => {
      // `*` stands for the host the client called; a device URL is reached the same way (scheme
      // and port) as the SDK endpoint, whatever scheme the server wrote.
      const raw = d.str('url') ?? '';
      const url = new URL(raw.replace(/^[a-z]+:\/\/\*(?=[/:])/i, `${sdk.protocol}//${sdk.host}`));
      const size = d.str('fileSize');
      return {
        key: d.str('key') ?? '',
        importKey: d.str('importKey') ?? '',
        url,
        disk: d.str('disk') === 'true',
        ...(d.str('sslThumbprint') ? { sslThumbprint: d.str('sslThumbprint')! } : {}),
        ...(d.str('targetId') ? { targetId: d.str('targetId')! } : {}),
        ...(size ? { fileSize: Number(size) } : {}),
      };
    });
    const entity = info.child('entity');
    return {
      ...(entity ? { entity: entity.moref } : {}),
      deviceUrls,
      leaseTimeoutSeconds: Number(info.str('leaseTimeout') ?? 300),
      totalDiskCapacityKB: Number(info.str('totalDiskCapacityInKB') ?? 0),
    };
  }

  private errorFrom(error: XmlNode | undefined, state: string): LeaseError {
    const fault = error?.child('fault');
    return new LeaseError(
      this.ref.value,
      fault?.typeName ?? (state === 'done' ? 'AlreadyDone' : 'Unknown'),
      error?.str('localizedMessage') ?? `the lease is '${state}'`,
    );
  }

  private wrap(error: unknown): Error {
    if (error instanceof VimFaultError)
      return new LeaseError(this.ref.value, error.faultType, error.faultString, { cause: error });
    return error as Error;
  }
}
