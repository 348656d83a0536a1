import type { ItemTarget } from '../../core/index.ts';
import { onboardingAsked } from '../../core/model/onboarding.ts';
import { AgentError } from '../errors.ts';
import type { ManifestItem } from '../package/transfer-manifest.ts';
import type { VAppSummary, VcdCallOptions, VcdClient, VcdRef } from '../vcd/client.ts';
import type { ImportJournal, ImportRecord } from './import-journal.ts';
import type { ItemNames } from './import-names.ts';

export interface OnboardResult {
  /** The vApp's (or catalog template's, and its vApp's) name in vCloud Director. */
  readonly name: string;
  readonly vappHref?: string;
  readonly vmHrefs: readonly string[];
  readonly templateHref?: string;
  readonly poweredOn: boolean;
  readonly skipped: boolean;
}

/**
 * An item asked to be placed in vCloud Director (a VDC, a catalog, a network, deploy or power-on)
 * reached an ODT node that has no vCloud Director settings: it is in the provider's vCenter and
 * nowhere else. Not a success (issue #19): the item fails with this reason, and "Retry failed
 * items" onboards it (the vCenter import is journaled, not redone) once the node runs with `--vcd`.
 */
export class VcdNotConfiguredError extends AgentError<'VCD_NOT_CONFIGURED'> {
  constructor(item: ManifestItem, record: ImportRecord, target: ItemTarget) {
    const vms = (record.members ?? [record]).map((m) => `'${m.name}'`).join(', ');
    super(
      'VCD_NOT_CONFIGURED',
      `${item.name} is in the provider's vCenter as ${vms} but was not placed in vCloud Director ` +
        `(asked: ${onboardingAsked(target).join(', ')}): this ODT node runs without vCloud Director ` +
        'settings. Start it with --vcd <url> --vcd-username <user@System> and ODT_VCD_PASSWORD, ' +
        'then retry the failed items.',
    );
    this.name = 'VcdNotConfiguredError';
  }
}

/**
 * vCloud Director said the work was done but did not show what was asked for (no vApp to deploy,
 * no VM to connect): the item is not reported as onboarded, and a rerun tries again.
 */
export class OnboardingIncompleteError extends AgentError<'ONBOARDING_INCOMPLETE'> {
  constructor(item: ManifestItem, what: string) {
    super('ONBOARDING_INCOMPLETE', `${item.name}: ${what}; the item is not reported as onboarded.`);
    this.name = 'OnboardingIncompleteError';
  }
}

/**
 * Has vCloud Director take an item that is in the provider vCenter: a VM becomes a vApp (or joins
 * an existing one), a template goes into a catalog, a vApp's members become one vApp again
 * (the first with importVmAsVApp, the others with importVmIntoExistingVApp). Then every NIC is
 * connected to the requested org VDC network, and the vApp deployed and powered on where asked.
 * A catalog template asked to be deployed is, in addition, instantiated as a vApp of the VDC,
 * which is then connected, deployed and powered on the same way.
 * Names come from `names` (importNames: unique among the transfer's items, so that two items of
 * one name do not clash in the VDC or the catalog); without it, the item's own names.
 * `signal` cuts every call and task wait (a task under way is cancelled where vCD allows it);
 * only steps that completed are journaled, so a rerun goes on from there.
 * Without `vcd` (a node with no vCloud Director settings) it throws VcdNotConfiguredError: the
 * target always names a VDC, so something was asked that cannot be done.
 */
export async function onboardItem(
  vcd: VcdClient | undefined,
  item: ManifestItem,
  record: ImportRecord,
  target: ItemTarget,
  journal: ImportJournal,
  names?: ItemNames,
  options: VcdCallOptions = {},
): Promise<OnboardResult> {
  if (!vcd) throw new VcdNotConfiguredError(item, record, target);
  const call = { signal: options.signal };
  const members = record.members ?? [{ name: record.name, vmName: item.name, entity: record.entity }];
  const named = names ?? {
    vcenter: record.name,
    vcd: item.name,
    vms: members.map((m) => ({ original: m.vmName, vcenter: m.name, vcd: m.vmName })),
  };
  if (item.kind === 'template' || target.placement === 'catalog') {
    return onboardTemplate(vcd, item, record, target, journal, named.vcd, call);
  }
  const vappName = target.placement === 'existing-vapp' ? target.vapp! : named.vcd;
  if (record.onboarded) return earlier(record.onboarded, record.onboarded.name ?? vappName);
  const vdc = await vcd.findVdc(target.vdc, call);
  let vappHref: string | undefined;
  const vmHrefs: string[] = [];
  for (const [i, m] of members.entries()) {
    const joinExisting = target.placement === 'existing-vapp' || i > 0;
    const r = await vcd.importVm({
      vmMoRef: m.entity.value,
      name: named.vms[i]?.vcd ?? m.vmName,
      vdc,
      placement: joinExisting ? 'existing-vapp' : 'vapp',
      vapp: vappName,
      signal: options.signal,
    });
    vappHref ??= r.vappHref;
    if (r.vmHref) vmHrefs.push(r.vmHref);
  }
  if (!vappHref) {
    const found = await vcd.findVApp(vdc, vappName, call);
    vappHref = found?.href;
  }
  if (target.network && vmHrefs.length < members.length) {
    throw new OnboardingIncompleteError(
      item,
      `vCloud Director named ${vmHrefs.length} of its ${members.length} VM(s), so not every NIC could be connected to ${target.network}`,
    );
  }
  if (target.network) for (const vm of vmHrefs) await vcd.connectNetwork(vm, target.network, call);
  const powerOn = target.powerOn === true;
  if (!vappHref && (target.deploy || powerOn)) {
    throw new OnboardingIncompleteError(
      item,
      `vCloud Director imported it but no vApp '${vappName}' was found to ${powerOn ? 'power on' : 'deploy'}`,
    );
  }
  if (vappHref && (target.deploy || powerOn)) await vcd.deploy(vappHref, { powerOn, ...call });
  await journal.record({
    ...record,
    onboarded: {
      name: vappName,
      ...(vappHref ? { vappHref } : {}),
      ...(vmHrefs[0] ? { vmHref: vmHrefs[0] } : {}),
      poweredOn: powerOn,
    },
  });
  return { name: vappName, ...(vappHref ? { vappHref } : {}), vmHrefs, poweredOn: powerOn, skipped: false };
}

/**
 * A template: imported into the catalog (importVmAsVAppTemplate); with deploy, also instantiated
 * as a vApp of the VDC (instantiateVAppTemplate), its NICs connected, deployed and powered on as
 * asked. Each step is journaled as it completes, so a rerun resumes after the last one and never
 * imports or instantiates twice. The template, its VM and the vApp are all named `name`.
 */
async function onboardTemplate(
  vcd: VcdClient,
  item: ManifestItem,
  record: ImportRecord,
  target: ItemTarget,
  journal: ImportJournal,
  named: string,
  call: VcdCallOptions,
): Promise<OnboardResult> {
  const wantsVApp = target.deploy === true;
  const powerOn = wantsVApp && target.powerOn === true;
  const done = record.onboarded;
  // Once a step is journaled, the name it was taken under (a rerun resumes under it).
  const name = done?.name ?? named;
  // Done earlier: in the catalog only, or its vApp deployed (and powered on, when asked).
  if (done && (!wantsVApp || done.poweredOn || (done.deployed && !powerOn))) return earlier(done, name);
  if (!target.catalog) {
    throw new Error(`${item.name} is a template: give the catalog it goes into (--catalog).`);
  }
  const vdc = await vcd.findVdc(target.vdc, call);
  let templateHref = done?.templateHref;
  if (!templateHref) {
    const r = await vcd.importVm({
      vmMoRef: record.entity.value,
      name,
      vdc,
      placement: 'catalog',
      catalog: target.catalog,
      signal: call.signal,
    });
    templateHref = r.templateHref;
    if (!templateHref) throw new Error(`vCloud Director named no vApp template for ${item.name}.`);
    await journal.record({ ...record, onboarded: { name, templateHref, poweredOn: false } });
  }
  if (!wantsVApp) return { name, templateHref, vmHrefs: [], poweredOn: false, skipped: false };

  const marker = instantiationMarker(record, item, templateHref);
  const earlierVApp = done?.vappHref
    ? await vcd.getVApp(done.vappHref, call)
    : await instantiatedEarlier(vcd, vdc, name, marker, call);
  // Deployed (and powered on, when asked) by an earlier run whose last journal write was lost.
  const running = earlierVApp?.deployed === true && (!powerOn || earlierVApp.status === 4);
  const { vappHref, vmHrefs } = earlierVApp
    ? { vappHref: earlierVApp.href, vmHrefs: earlierVApp.vms.map((v) => v.href) }
    : await vcd.instantiateVAppTemplate({
        templateHref,
        vdc,
        name,
        description: marker,
        ...(target.network ? { network: target.network } : {}),
        signal: call.signal,
      });
  const step = { name, templateHref, vappHref, ...(vmHrefs[0] ? { vmHref: vmHrefs[0] } : {}) };
  if (!running) {
    await journal.record({ ...record, onboarded: { ...step, poweredOn: false } });
    if (target.network) for (const vm of vmHrefs) await vcd.connectNetwork(vm, target.network, call);
    await vcd.deploy(vappHref, { powerOn, ...call });
  }
  await journal.record({ ...record, onboarded: { ...step, deployed: true, poweredOn: powerOn } });
  return { name, templateHref, vappHref, vmHrefs, poweredOn: powerOn, skipped: running };
}

/** The description that marks a vApp as this item's instantiation, so that a rerun can adopt it. */
const instantiationMarker = (record: ImportRecord, item: ManifestItem, templateHref: string): string =>
  `Instantiated by Sneakernet for ${record.name} (${item.id}) from vApp template ${templateHref}`;

/** The vApp an earlier run instantiated but did not get to journal: same name, our marker. */
async function instantiatedEarlier(
  vcd: VcdClient,
  vdc: VcdRef,
  name: string,
  marker: string,
  call: VcdCallOptions,
): Promise<VAppSummary | undefined> {
  const found = await vcd.findVApp(vdc, name, call);
  if (!found) return undefined;
  const vapp = await vcd.getVApp(found.href, call);
  return vapp.description === marker ? vapp : undefined;
}

function earlier(done: NonNullable<ImportRecord['onboarded']>, name: string): OnboardResult {
  return {
    name,
    ...(done.vappHref ? { vappHref: done.vappHref } : {}),
    ...(done.templateHref ? { templateHref: done.templateHref } : {}),
    vmHrefs: done.vmHref ? [done.vmHref] : [],
    poweredOn: done.poweredOn === true,
    skipped: true,
  };
}
