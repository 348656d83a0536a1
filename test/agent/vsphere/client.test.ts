import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type RunningSimulator, startSimulator } from '../../peers/vsphere/simulator.ts';
import { exportArgs, initParties, odt } from '../../support/cli.ts';
import { expectDisksDecrypt } from '../../support/disks.ts';

// The vim25 client and `odt inventory` against the simulator: inventory, TLS trust modes.
describe('odt inventory', () => {
  it('lists VMs, templates and vApps with paths, power state, disks and networks', async () => {
    const r = await odt(
      ['inventory', '--vcenter', inject('vcsimUrl'), '--username', inject('vcsimUsername'), '--json'],
      { ODT_VCENTER_PASSWORD: inject('vcsimPassword') },
    );
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const items = JSON.parse(r.out) as {
      kind: string;
      name: string;
      path: string;
      powerState?: string;
      disks: { capacityBytes: number }[];
      sizeBytes: number;
      networks: string[];
      vms?: string[];
    }[];
    const byName = new Map(items.map((i) => [i.name, i]));
    expect(byName.get('DC0_H0_VM0')).toMatchObject({
      kind: 'vm',
      path: '/DC0/vm/DC0_H0_VM0',
      powerState: 'poweredOn',
    });
    expect(byName.get('DC0_H0_VM1')).toMatchObject({ kind: 'vm', powerState: 'poweredOff' });
    expect(byName.get('DC0_H0_VM1')!.disks).toHaveLength(2);
    expect(byName.get('DC0_H0_VM1')!.sizeBytes).toBe(2 * 1024 * 1024);
    expect(byName.get('DC0_H0_VM1')!.networks.length).toBeGreaterThan(0);
    expect(byName.get('DC0_C0_TPL0')).toMatchObject({ kind: 'template' });
    expect(byName.get('DC0_C0_APP0')).toMatchObject({ kind: 'vapp' });
    expect(byName.get('DC0_C0_APP0')!.vms).toEqual(
      expect.arrayContaining(['DC0_C0_APP0_VM0', 'DC0_C0_APP0_VM1']),
    );
  });

  it('prints a table by default', async () => {
    const r = await odt(
      ['inventory', '--vcenter', inject('vcsimUrl'), '--username', inject('vcsimUsername')],
      {
        ODT_VCENTER_PASSWORD: inject('vcsimPassword'),
      },
    );
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[0]).toMatch(/^KIND\s+PATH\s+POWER\s+DISKS\s+SIZE\s+NETWORKS$/);
    expect(r.out).toMatch(/template\s+\/DC0\/vm\/DC0_C0_TPL0\s+poweredOff/);
  });
});

describe('TLS trust', () => {
  let sim: RunningSimulator;
  beforeAll(async () => {
    sim = await startSimulator({ binary: inject('vcsimBinary'), tls: true, apps: 0 });
  });
  afterAll(async () => {
    await sim?.stop();
  });
  const args = (...extra: string[]) => [
    'inventory',
    '--vcenter',
    sim.url,
    '--username',
    sim.username,
    ...extra,
  ];
  const env = () => ({ ODT_VCENTER_PASSWORD: sim.password });

  it('connects when the pinned SHA-256 thumbprint matches', async () => {
    expect(sim.thumbprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    const r = await odt(args('--thumbprint', sim.thumbprint!), env());
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('DC0_H0_VM1');
  });

  it('refuses a thumbprint mismatch before sending anything, and says what to do', async () => {
    const wrong = `${'AB:'.repeat(31)}AB`;
    const r = await odt(args('--thumbprint', wrong), env());
    expect(r.code).not.toBe(0);
    expect(r.err).toContain(`not the pinned ${wrong}`);
    expect(r.err).toContain(sim.thumbprint!);
    expect(r.err).toContain('TLS_THUMBPRINT_MISMATCH');
  });

  it('refuses a self-signed certificate by default (system CAs), naming its thumbprint to pin, and accepts it with --insecure', async () => {
    const strict = await odt(args(), env());
    expect(strict.code).not.toBe(0);
    expect(strict.err).toContain(
      `presents a certificate this system does not trust (self-signed certificate)`,
    );
    expect(strict.err).toContain(`then pass --thumbprint ${sim.thumbprint} (or --insecure, in a lab only)`);
    const insecure = await odt(args('--insecure'), env());
    expect(insecure.code).toBe(0);
  });

  it('says an https URL meets a plain HTTP server on that port', async () => {
    const plain = new URL(inject('vcsimUrl'));
    const r = await odt(
      ['inventory', '--vcenter', `https://${plain.host}/sdk`, '--username', inject('vcsimUsername')],
      { ODT_VCENTER_PASSWORD: inject('vcsimPassword') },
    );
    expect(r.code).not.toBe(0);
    expect(r.err).toContain(
      `${plain.host} does not answer TLS on this port: if it serves plain HTTP, give an http:// URL`,
    );
  });

  it('refuses --thumbprint together with --insecure', async () => {
    const r = await odt(args('--insecure', '--thumbprint', sim.thumbprint!), env());
    expect(r.code).not.toBe(0);
    expect(r.err).toContain('cannot be used with');
  });

  it('exports over https with the pinned thumbprint: the device URLs are read through the same pin', async () => {
    const work = await mkdtemp(join(tmpdir(), 'odt-tls-export-'));
    try {
      const recipient = await initParties(work);
      const nas = join(work, 'nas');
      const r = await odt(
        [...exportArgs(sim, work, recipient, ['DC0_H0_VM1'], nas, 'tr-tls'), '--thumbprint', sim.thumbprint!],
        env(),
      );
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      await expectDisksDecrypt(sim, work, join(nas, 'tr-tls', 'item-1'), 'DC0_H0_VM1');
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
