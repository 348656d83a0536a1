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

/** The lease ended in `error`: the server aborted it, it timed out, or it could not be set up. */
export class LeaseError extends Error {
  readonly code = 'NFC_LEASE_ERROR';

  constructor(
    readonly lease: string,
    readonly faultType: string,
    message: string,
  ) {
    super(`NFC lease ${lease} failed (${faultType}): ${message}`);
    this.name = 'LeaseError';
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason);
      },
      { once: true },
    );
  });

/** An HttpNfcLease for export or import: wait until ready, renew, complete or abort. */
export class NfcLease {
  constructor(
    readonly client: VimClient,
    readonly ref: Moref,
  ) {}

  /** Polls until the lease leaves `initializing`; throws LeaseError when it ends in `error`. */
  async waitReady(options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<LeaseInfo> {
    const deadline = Date.now() + (options.timeoutMs ?? 300_000);
    // Every 50 ms for the first second (a lease is often ready in a fraction of one, and the
    // transfer waits for it), then backing off to every 2 s.
    const started = Date.now();
    for (let delay = 50; ; delay = Date.now() - started < 1_000 ? 50 : Math.min(delay * 2, 2_000)) {
      const props = await this.client.properties(this.ref, 'HttpNfcLease', ['state', 'error', 'info']);
      const state = props.get('state')?.text;
      if (state === 'ready') return this.parseInfo(props.get('info'));
      if (state === 'error' || state === 'done') throw this.errorFrom(props.get('error'), state);
      if (Date.now() > deadline) {
        throw new LeaseError(
          this.ref.value,
          'Timeout',
          `still '${state}' after ${options.timeoutMs ?? 300_000} ms`,
        );
      }
      await sleep(delay, options.signal);
    }
  }

  /** Current state and error, for a transfer that wants to know why its stream broke. */
  async state(): Promise<{ state: string; error?: LeaseError }> {
    const props = await this.client.properties(this.ref, 'HttpNfcLease', ['state', 'error']);
    const state = props.get('state')?.text ?? 'unknown';
    return state === 'error' ? { state, error: this.errorFrom(props.get('error'), state) } : { state };
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
      return new LeaseError(this.ref.value, error.faultType, error.faultString);
    return error as Error;
  }
}
