import type http from 'node:http';
import type { DeviceUrl } from './lease.ts';
import type { SoapConnection } from './wire/soap-connection.ts';
import { colonHex, createHttpAgent, type TlsTrust } from './wire/tls.ts';

/** How one device URL is reached: the HTTP agent of its host, and the session cookie if any. */
export interface DeviceRoute {
  readonly agent: http.Agent;
  /** Only for the vCenter (or ESXi host) of the SOAP session itself, never for another host. */
  readonly cookie?: string;
}

/**
 * The hosts an NFC lease sends its transfers to. Through a vCenter, a device URL names the ESXi
 * host that holds the disk, with that host's own certificate, and the lease gives the host's SHA-1
 * thumbprint in `sslThumbprint`; `*` (already replaced by the SDK host in `NfcLease`) appears only
 * when the session is on an ESXi host directly. Facts from govmomi (Debian's 0.24.2):
 * `nfc/lease.go` newLeaseInfo pins each device URL's host to its `sslThumbprint`
 * (`SetThumbprint(u.Host, …)`), `vim25/soap/client.go` ParseURL replaces `*` with the client's
 * host, and the cookie jar of that client scopes the session cookie to the vCenter's host; the
 * URL's ticket is the device host's credential.
 *
 * One keep-alive agent per host and trust, for the life of the session: uploads reuse their
 * connections as they do to the vCenter.
 */
export class DeviceHosts {
  readonly #agents = new Map<string, http.Agent>();

  constructor(private readonly connection: SoapConnection) {}

  /** The agent (and cookie) for `device`; the vCenter's own when the URL names the SDK host. */
  route(device: Pick<DeviceUrl, 'url' | 'sslThumbprint'>): DeviceRoute {
    const { url } = device;
    const sdk = this.connection.url;
    if (url.origin === sdk.origin) {
      const cookie = this.connection.sessionCookie;
      return { agent: this.connection.agent, ...(cookie ? { cookie } : {}) };
    }
    const trust = this.trustFor(device);
    const key = `${url.protocol}//${url.host} ${trust.kind === 'thumbprint' ? trust.thumbprint : trust.kind}`;
    let agent = this.#agents.get(key);
    if (!agent) {
      agent = createHttpAgent(url, trust, {
        mismatch: ({ host, port, got, expected }) =>
          trust === this.connection.trust
            ? `The ESXi host ${host}:${port} that holds this disk presents a certificate with thumbprint ` +
              `${colonHex(got)}, and the NFC lease gave none for it, so it was checked against the vCenter's ` +
              `pinned ${colonHex(expected)}, which it is not. Ask the vCenter's administrator why the lease ` +
              `carries no sslThumbprint for ${host}, or run with the system CAs trusting that host.`
            : `The ESXi host ${host}:${port} that holds this disk presents a certificate with SHA-1 thumbprint ` +
              `${colonHex(got)}, but the NFC lease says its thumbprint is ${colonHex(expected)} (sslThumbprint). ` +
              "The host's certificate was replaced without vCenter knowing, or something sits between this " +
              "machine and the host: check the host's certificate in vCenter (Host > Configure > Certificate), " +
              'reconnect the host if it was renewed, and run again. Nothing was sent to it.',
      });
      this.#agents.set(key, agent);
    }
    return { agent };
  }

  /**
   * `--insecure` skips every check; otherwise the lease's thumbprint pins the host, and without
   * one the host is trusted as the vCenter is (system CAs, or its pinned thumbprint).
   */
  private trustFor(device: Pick<DeviceUrl, 'sslThumbprint'>): TlsTrust {
    const own = this.connection.trust;
    if (own.kind === 'insecure') return own;
    if (device.sslThumbprint) return { kind: 'thumbprint', thumbprint: device.sslThumbprint };
    return own;
  }

  /** Closes every device host's idle connections. */
  close(): void {
    for (const agent of this.#agents.values()) agent.destroy();
    this.#agents.clear();
  }
}
