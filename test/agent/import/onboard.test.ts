import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { exportItems, importArgs as importArgsOf, initParties, odt } from '../../support/cli.ts';
import { type OnboardingSites, startOnboardingSites } from '../../support/onboarding-sites.ts';

// Issue 4: after the vCenter import, vCloud Director takes each item: a VM as a vApp on the
// requested network, powered on; a template into the catalog; a vApp's members as one vApp.
// Issue 8: a template asked to be powered on also runs, as a vApp instantiated from the catalog.
describe('odt import --vcd: onboarding into vCloud Director', () => {
  let sites: OnboardingSites;
  const transfer = 'tr-onboard-1';

  beforeAll(async () => {
    sites = await startOnboardingSites(inject('vcsimBinary'), 'odt-onboard-');
    const recipient = await initParties(sites.work);
    await exportItems(
      sites.customer,
      sites.work,
      recipient,
      ['DC0_H0_VM1', 'DC0_C0_TPL0', 'DC0_C0_APP0'],
      sites.nas,
      transfer,
    );
  });
  afterAll(async () => {
    await sites?.stop();
  });

  const importArgs = () => {
    const { provider, work, nas } = sites;
    return [
      ...importArgsOf(provider, work, nas, transfer, join(work, 'state')),
      ...sites.vcdArgs({ placeAndPowerOn: true }),
    ];
  };
  const env = () => sites.importEnv();

  // Issue #19: a dry run checks the vCloud Director targets too, and changes nothing there.
  it('--dry-run checks the VDC, the catalog and the VDC network, and creates nothing (first, before any import)', async () => {
    const changes = () =>
      sites.vcd.state().calls.filter((c) => c.method !== 'GET' && !c.path.includes('/sessions')).length;
    const before = changes();
    const r = await odt([...importArgs(), '--dry-run'], env());
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^ok\s+vdc\s+org VDC 'acme-vdc'$/m);
    expect(r.out).toMatch(/^ok\s+catalog\s+catalog 'acme-catalog'$/m);
    expect(r.out).toMatch(/^ok\s+vdc-network\s+network 'acme-net' in 'acme-vdc'$/m);
    // A VDC that is not there is found by the dry run, as the import would find it after the upload.
    const wrong = importArgs().map((a) => (a === 'acme-vdc' ? 'no-such-vdc' : a));
    const bad = await odt([...wrong, '--dry-run'], env());
    expect(bad.code).toBe(5);
    expect(bad.out).toMatch(/^FAIL\s+vdc\s+/m);
    expect(bad.out).toContain('would not be imported');
    expect(changes()).toBe(before);
    expect(sites.vcd.state().vapps).toEqual([]);
    expect(sites.vcd.state().templates).toEqual([]);
  });

  it('places the VM, the template and the vApp as requested, connected and powered on', async () => {
    const r = await odt(importArgs(), env());
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('item-1 DC0_H0_VM1: imported');
    expect(r.out).toContain("onboarded into vCloud Director as the vApp 'DC0_H0_VM1', powered on");
    expect(r.out).toContain('item-2 DC0_C0_TPL0: imported');
    expect(r.out).toContain("onboarded into vCloud Director as the catalog template 'DC0_C0_TPL0'");

    const state = sites.vcd.state();
    const vm = state.vapps.find((a) => a.name === 'DC0_H0_VM1')!;
    expect(vm).toMatchObject({ vdc: 'acme-vdc', deployed: true });
    expect(vm.vms).toHaveLength(1);
    expect(vm.vms[0]).toMatchObject({ name: 'DC0_H0_VM1', poweredOn: true });
    expect(vm.vms[0]!.nics.every((n) => n.network === 'acme-net' && n.isConnected)).toBe(true);

    const app = state.vapps.find((a) => a.name === 'DC0_C0_APP0')!;
    expect(app.vms.map((v) => v.name).sort()).toEqual(['DC0_C0_APP0_VM0', 'DC0_C0_APP0_VM1']);
    expect(app.vms.every((v) => v.poweredOn)).toBe(true);

    expect(state.templates.find((t) => t.name === 'DC0_C0_TPL0')).toMatchObject({ catalog: 'acme-catalog' });
    // --power-on: the template also runs, as a vApp instantiated from the catalog, connected and on.
    const fromTemplate = state.vapps.find((a) => a.name === 'DC0_C0_TPL0')!;
    expect(fromTemplate).toMatchObject({ vdc: 'acme-vdc', deployed: true, status: 4 });
    expect(fromTemplate.vms).toHaveLength(1);
    expect(fromTemplate.vms[0]!.nics.length).toBeGreaterThan(0);
    expect(fromTemplate.vms[0]!.nics.every((n) => n.network === 'acme-net' && n.isConnected)).toBe(true);
    expect(r.out).toMatch(/item-2 DC0_C0_TPL0: imported.*catalog template 'DC0_C0_TPL0', powered on/);
    expect(state.calls.filter((c) => c.path.endsWith('/action/instantiateVAppTemplate'))).toHaveLength(1);
  });

  it('skips what is already imported and onboarded on a rerun', async () => {
    const changes = () =>
      sites.vcd.state().calls.filter((c) => c.method !== 'GET' && !c.path.includes('/sessions')).length;
    const before = changes();
    const r = await odt(importArgs(), env());
    expect(r.code).toBe(0);
    expect(r.out).toContain('item-1 DC0_H0_VM1: already imported');
    expect(r.out).toContain('(earlier)');
    expect(r.out).toMatch(/item-2 DC0_C0_TPL0: already imported.*powered on \(earlier\)/);
    // Nothing imported, instantiated, connected or deployed a second time.
    expect(changes()).toBe(before);
  });
});

describe('odt import --vcd: a failed item does not hide the others', () => {
  it('reports the template without a catalog as failed at onboarding, and onboards the VM', async () => {
    const sites = await startOnboardingSites(inject('vcsimBinary'), 'odt-onboard-fail-', { apps: 0 });
    const { customer, provider, vcd, work, nas } = sites;
    try {
      const recipient = await initParties(work);
      await exportItems(customer, work, recipient, ['DC0_H0_VM1', 'DC0_C0_TPL0'], nas, 'tr-onb-2');
      // No --catalog: the template cannot be placed.
      const r = await odt(
        [...importArgsOf(provider, work, nas, 'tr-onb-2', join(work, 'state')), ...sites.vcdArgs(), '--json'],
        sites.importEnv(),
      );
      expect(r.code).not.toBe(0);
      const items = r.out
        .trim()
        .split('\n')
        .map(
          (l) =>
            JSON.parse(l) as {
              event: string;
              item?: string;
              ok?: boolean;
              failedAt?: string;
              error?: string;
              vcenterName?: string;
            },
        )
        .filter((e) => e.event === 'item');
      expect(items.find((i) => i.item === 'item-1')).toMatchObject({ ok: true });
      expect(items.find((i) => i.item === 'item-2')).toMatchObject({ ok: false, failedAt: 'onboard' });
      expect(items.find((i) => i.item === 'item-2')!.error).toContain('give the catalog');
      expect(vcd.state().vapps.map((a) => a.name)).toEqual(['DC0_H0_VM1']);
      // #19: not onboarded is not "imported": the item fails, and says where it is in vCenter.
      expect(items.find((i) => i.item === 'item-2')!.vcenterName).toBe('DC0_C0_TPL0 (tr-onb-2)');
      const again = await odt(
        [...importArgsOf(provider, work, nas, 'tr-onb-2', join(work, 'state')), ...sites.vcdArgs()],
        sites.importEnv(),
      );
      expect(again.code).toBe(3);
      expect(again.out).toContain("item-2 DC0_C0_TPL0: in vCenter as 'DC0_C0_TPL0 (tr-onb-2)' (");
      expect(again.out).toContain('but NOT onboarded into vCloud Director');
      expect(again.out).not.toContain('item-2 DC0_C0_TPL0: already imported');
      expect(again.err).toContain('item-2 (DC0_C0_TPL0) failed');
    } finally {
      await sites.stop();
    }
  });
});
