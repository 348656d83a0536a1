import type { ItemTarget } from '../../core/index.ts';
import type { ManifestItem } from '../package/transfer-manifest.ts';
import type { VcdClient } from '../vcd/client.ts';
import type { ImportJournal, ImportRecord } from './import-journal.ts';

export interface OnboardResult {
  readonly vappHref?: string;
  readonly vmHrefs: readonly string[];
  readonly templateHref?: string;
  readonly poweredOn: boolean;
  readonly skipped: boolean;
}

/**
 * Has vCloud Director take an item that is in the provider vCenter: a VM becomes a vApp (or joins
 * an existing one), a template goes into a catalog, a vApp's members become one vApp again
 * (the first with importVmAsVApp, the others with importVmIntoExistingVApp). Then every NIC is
 * connected to the requested org VDC network, and the vApp deployed and powered on where asked.
 */
export async function onboardItem(
  vcd: VcdClient,
  item: ManifestItem,
  record: ImportRecord,
  target: ItemTarget,
  journal: ImportJournal,
): Promise<OnboardResult> {
  if (record.onboarded) {
    return {
      ...(record.onboarded.vappHref ? { vappHref: record.onboarded.vappHref } : {}),
      ...(record.onboarded.templateHref ? { templateHref: record.onboarded.templateHref } : {}),
      vmHrefs: record.onboarded.vmHref ? [record.onboarded.vmHref] : [],
      poweredOn: record.onboarded.poweredOn === true,
      skipped: true,
    };
  }
  const vdc = await vcd.findVdc(target.vdc);
  let result: Omit<OnboardResult, 'skipped' | 'poweredOn'>;
  if (item.kind === 'template' || target.placement === 'catalog') {
    if (!target.catalog)
      throw new Error(`${item.name} is a template: give the catalog it goes into (--catalog).`);
    const r = await vcd.importVm({
      vmMoRef: record.entity.value,
      name: item.name,
      vdc,
      placement: 'catalog',
      catalog: target.catalog,
    });
    result = { ...(r.templateHref ? { templateHref: r.templateHref } : {}), vmHrefs: [] };
  } else {
    const members = record.members ?? [{ name: record.name, vmName: item.name, entity: record.entity }];
    const vappName = target.placement === 'existing-vapp' ? target.vapp! : item.name;
    let vappHref: string | undefined;
    const vmHrefs: string[] = [];
    for (const [i, m] of members.entries()) {
      const joinExisting = target.placement === 'existing-vapp' || i > 0;
      const r = await vcd.importVm({
        vmMoRef: m.entity.value,
        name: m.vmName,
        vdc,
        placement: joinExisting ? 'existing-vapp' : 'vapp',
        vapp: vappName,
      });
      vappHref ??= r.vappHref;
      if (r.vmHref) vmHrefs.push(r.vmHref);
    }
    if (!vappHref) {
      const found = await vcd.findVApp(vdc, vappName);
      vappHref = found?.href;
    }
    if (target.network) for (const vm of vmHrefs) await vcd.connectNetwork(vm, target.network);
    result = { ...(vappHref ? { vappHref } : {}), vmHrefs };
  }
  const powerOn = item.kind !== 'template' && target.powerOn === true;
  if (result.vappHref && (target.deploy || powerOn)) await vcd.deploy(result.vappHref, { powerOn });
  await journal.record({
    ...record,
    onboarded: {
      ...(result.vappHref ? { vappHref: result.vappHref } : {}),
      ...(result.vmHrefs[0] ? { vmHref: result.vmHrefs[0] } : {}),
      ...(result.templateHref ? { templateHref: result.templateHref } : {}),
      poweredOn: powerOn,
    },
  });
  return { ...result, poweredOn: powerOn, skipped: false };
}
