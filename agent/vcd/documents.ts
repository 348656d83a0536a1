// Request documents of the vCloud API, written in the order the schemas give (vCloud Director API
// schema reference: vmwextensions.xsd for the import parameters, vApp.xsd for the network sections,
// DeployVAppParams and InstantiateVAppTemplateParams). vCD validates request bodies against the
// schema, so order matters.

import { el, renderXml, textEl, VCD_NS, type VcdNode, type XmlElement } from './wire/xml.ts';

export const MEDIA = {
  importVmAsVAppParams: 'application/vnd.vmware.admin.importVmAsVAppParams+xml',
  importVmIntoExistingVAppParams: 'application/vnd.vmware.admin.importVmIntoExistingVAppParams+xml',
  importVmAsVAppTemplateParams: 'application/vnd.vmware.admin.importVmAsVAppTemplateParams+xml',
  networkConnectionSection: 'application/vnd.vmware.vcloud.networkConnectionSection+xml',
  networkConfigSection: 'application/vnd.vmware.vcloud.networkConfigSection+xml',
  deployVAppParams: 'application/vnd.vmware.vcloud.deployVAppParams+xml',
  instantiateVAppTemplateParams: 'application/vnd.vmware.vcloud.instantiateVAppTemplateParams+xml',
} as const;

const vmextRoot = { 'xmlns:vmext': VCD_NS.vmext, 'xmlns:vcloud': VCD_NS.vcloud };

export interface ImportCommon {
  readonly vmMoRef: string;
  /** Name of the VM in vCD (VmName). */
  readonly vmName?: string;
  readonly sourceMove: boolean;
}

/** ImportVmAsVAppParams: Description?, VAppParent?, InstantiationParams?, VmName?, VAppScopedLocalId?, ComputerName?, VmMoRef, VdcStorageProfile?, Vdc. */
export function importVmAsVAppParams(
  p: ImportCommon & { vappName: string; vdcHref: string; description?: string },
): string {
  return renderXml(
    el(
      'vmext:ImportVmAsVAppParams',
      { ...vmextRoot, name: p.vappName, sourceMove: p.sourceMove },
      p.description !== undefined && textEl('vcloud:Description', p.description),
      p.vmName !== undefined && textEl('vmext:VmName', p.vmName),
      textEl('vmext:VmMoRef', p.vmMoRef),
      el('vmext:Vdc', { href: p.vdcHref }),
    ),
  );
}

/** ImportVmIntoExistingVAppParams: VmName?, VmDescription?, VAppScopedLocalId?, ComputerName?, VmMoRef, VdcStorageProfile?, VApp. */
export function importVmIntoExistingVAppParams(p: ImportCommon & { vappHref: string }): string {
  return renderXml(
    el(
      'vmext:ImportVmIntoExistingVAppParams',
      { ...vmextRoot, sourceMove: p.sourceMove },
      p.vmName !== undefined && textEl('vmext:VmName', p.vmName),
      textEl('vmext:VmMoRef', p.vmMoRef),
      el('vmext:VApp', { href: p.vappHref }),
    ),
  );
}

/** ImportVmAsVAppTemplateParams: Description?, VmName?, VAppScopedLocalId?, ComputerName?, VmMoRef, Vdc, VdcStorageProfile?, Catalog?. */
export function importVmAsVAppTemplateParams(
  p: ImportCommon & { templateName: string; vdcHref: string; catalogHref: string },
): string {
  return renderXml(
    el(
      'vmext:ImportVmAsVAppTemplateParams',
      { ...vmextRoot, name: p.templateName, sourceMove: p.sourceMove },
      p.vmName !== undefined && textEl('vmext:VmName', p.vmName),
      textEl('vmext:VmMoRef', p.vmMoRef),
      el('vmext:Vdc', { href: p.vdcHref }),
      el('vmext:Catalog', { href: p.catalogHref }),
    ),
  );
}

export function deployVAppParams(powerOn: boolean): string {
  return renderXml(el('DeployVAppParams', { xmlns: VCD_NS.vcloud, powerOn }));
}

export type IpAllocation = 'DHCP' | 'POOL' | 'MANUAL' | 'NONE';

export interface NicState {
  readonly index: number;
  readonly network: string;
  readonly isConnected: boolean;
  readonly allocation: string;
  readonly ipAddress?: string;
  readonly mac?: string;
  readonly adapterType?: string;
  readonly needsCustomization?: string;
}

export function readNics(section: VcdNode): { primary: number | undefined; nics: NicState[] } {
  const primaryText = section.str('PrimaryNetworkConnectionIndex');
  return {
    primary: primaryText === undefined ? undefined : Number(primaryText),
    nics: section.all('NetworkConnection').map((n) => ({
      index: Number(n.str('NetworkConnectionIndex') ?? '0'),
      network: n.attr('network') ?? 'none',
      isConnected: n.str('IsConnected') === 'true',
      allocation: n.str('IpAddressAllocationMode') ?? 'NONE',
      ...(n.str('IpAddress') ? { ipAddress: n.str('IpAddress')! } : {}),
      ...(n.str('MACAddress') ? { mac: n.str('MACAddress')! } : {}),
      ...(n.str('NetworkAdapterType') ? { adapterType: n.str('NetworkAdapterType')! } : {}),
      ...(n.attr('needsCustomization') ? { needsCustomization: n.attr('needsCustomization')! } : {}),
    })),
  };
}

/**
 * NetworkConnectionSection (a Section_Type: ovf:Info first), then PrimaryNetworkConnectionIndex,
 * NetworkConnection*; each NetworkConnection: NetworkConnectionIndex, IpAddress?, IsConnected,
 * MACAddress?, IpAddressAllocationMode, NetworkAdapterType?.
 */
export function networkConnectionSection(primary: number | undefined, nics: readonly NicState[]): string {
  return renderXml(
    el(
      'NetworkConnectionSection',
      {
        xmlns: VCD_NS.vcloud,
        'xmlns:ovf': VCD_NS.ovf,
        type: MEDIA.networkConnectionSection,
        'ovf:required': false,
      },
      textEl('ovf:Info', 'Specifies the available VM network connections'),
      primary !== undefined && textEl('PrimaryNetworkConnectionIndex', primary),
      ...nics.map(
        (n): XmlElement =>
          el(
            'NetworkConnection',
            { network: n.network, needsCustomization: n.needsCustomization },
            textEl('NetworkConnectionIndex', n.index),
            n.allocation === 'MANUAL' && n.ipAddress !== undefined && textEl('IpAddress', n.ipAddress),
            textEl('IsConnected', n.isConnected),
            n.mac !== undefined && textEl('MACAddress', n.mac),
            textEl('IpAddressAllocationMode', n.allocation),
            n.adapterType !== undefined && textEl('NetworkAdapterType', n.adapterType),
          ),
      ),
    ),
  );
}

export interface VAppNetworkConfig {
  readonly networkName: string;
  readonly parentHref?: string;
  readonly fenceMode: string;
  /** The original element, re-emitted as it came so that settings we do not model survive a PUT. */
  readonly raw?: VcdNode;
}

/**
 * NetworkConfigSection: ovf:Info, Link*, NetworkConfig* (networkName attribute; Description?,
 * Configuration { IpScopes?, ParentNetwork?, FenceMode }, IsDeployed?).
 */
export function networkConfigSection(configs: readonly VAppNetworkConfig[]): string {
  return renderXml(
    networkConfigSectionElement(configs, {
      xmlns: VCD_NS.vcloud,
      'xmlns:ovf': VCD_NS.ovf,
      type: MEDIA.networkConfigSection,
      'ovf:required': false,
    }),
  );
}

function networkConfigSectionElement(
  configs: readonly VAppNetworkConfig[],
  attrs: Record<string, string | boolean>,
): XmlElement {
  return el(
    'NetworkConfigSection',
    attrs,
    textEl('ovf:Info', 'The configuration parameters for logical networks'),
    ...configs.map((c) =>
      c.raw
        ? reemit(c.raw)
        : el(
            'NetworkConfig',
            { networkName: c.networkName },
            el(
              'Configuration',
              undefined,
              c.parentHref !== undefined && el('ParentNetwork', { href: c.parentHref }),
              textEl('FenceMode', c.fenceMode),
            ),
          ),
    ),
  );
}

/**
 * InstantiateVAppTemplateParams (vApp.xsd): attributes name, deploy, powerOn (both default to true
 * on the server, so they are always written); elements Description?, VAppParent?,
 * InstantiationParams?, Source, IsSourceDelete?, SourcedItem*, AllEULAsAccepted?. The vApp
 * networks, when given, go in InstantiationParams as a NetworkConfigSection.
 */
export function instantiateVAppTemplateParams(p: {
  name: string;
  templateHref: string;
  deploy: boolean;
  powerOn: boolean;
  description?: string;
  networks?: readonly VAppNetworkConfig[];
}): string {
  return renderXml(
    el(
      'InstantiateVAppTemplateParams',
      { xmlns: VCD_NS.vcloud, 'xmlns:ovf': VCD_NS.ovf, name: p.name, deploy: p.deploy, powerOn: p.powerOn },
      p.description !== undefined && textEl('Description', p.description),
      p.networks !== undefined &&
        p.networks.length > 0 &&
        el('InstantiationParams', undefined, networkConfigSectionElement(p.networks, {})),
      el('Source', { href: p.templateHref }),
      // The template is the customer's own VM: its EULAs, if any, are the customer's to accept,
      // and the request to run it is that acceptance.
      textEl('AllEULAsAccepted', true),
    ),
  );
}

/** Writes a parsed vcloud-namespace element back (default namespace, Link elements dropped as read-only). */
function reemit(node: VcdNode): XmlElement {
  const kids = node.children.filter((c) => c.name !== 'Link').map(reemit);
  return {
    tag: node.name,
    attrs: { ...node.attrs },
    ...(kids.length > 0 ? { children: kids } : { text: node.text.trim() }),
  };
}
