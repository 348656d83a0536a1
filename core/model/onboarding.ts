import type { ItemState } from './phases.ts';
import type { ItemTarget } from './transfer.ts';

/**
 * What an item's target asks of vCloud Director, in words for a reason line: the VDC always (the
 * request names one), then the catalog, the network, deploy and power-on where asked.
 */
export function onboardingAsked(target: ItemTarget): string[] {
  return [
    `org VDC ${target.vdc}`,
    ...(target.placement === 'catalog' && target.catalog ? [`catalog ${target.catalog}`] : []),
    ...(target.placement === 'existing-vapp' && target.vapp ? [`vApp ${target.vapp}`] : []),
    ...(target.network ? [`network ${target.network}`] : []),
    ...(target.powerOn ? ['power-on'] : target.deploy ? ['deploy'] : []),
  ];
}

/**
 * The state an import must reach for the item to count as done: `powered-on` when power-on was
 * asked, else `onboarded` (the target always names a VDC, so `imported` alone is never enough).
 */
export const requiredItemState = (target: ItemTarget): ItemState =>
  target.powerOn ? 'powered-on' : 'onboarded';

const rank: Partial<Record<ItemState, number>> = { imported: 0, onboarded: 1, 'powered-on': 2 };

/**
 * Why an import that reported `reached` for an item with `target` falls short of what was asked, or
 * undefined when it does not. Core's own check (issue #19): whatever an ODT node reports, an item
 * that asked for a VDC and got only as far as vCenter is not `ok`.
 */
export function onboardingShortfall(target: ItemTarget, reached: ItemState): string | undefined {
  const need = requiredItemState(target);
  if ((rank[reached] ?? -1) >= (rank[need] ?? 0)) return undefined;
  const got =
    reached === 'imported'
      ? 'it is in the provider vCenter but was not placed in vCloud Director'
      : 'it is in vCloud Director but was not powered on';
  return `${got} (asked: ${onboardingAsked(target).join(', ')}); the ODT node did not report it done. Retry the failed items once the node's vCloud Director settings are right.`;
}
