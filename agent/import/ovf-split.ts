/**
 * Splits the descriptor of a vApp (a VirtualSystemCollection) into one single-VM descriptor per
 * member, each with only the files and disks it references. The ODT node imports the members as
 * VMs and vCloud Director puts them back together as a vApp (importVmAsVApp for the first,
 * importVmIntoExistingVApp for the others): vCD's vApp is its own construct, and a vCenter vApp is
 * not needed on the way.
 */
export interface VAppMember {
  readonly name: string;
  readonly descriptor: string;
  /** `ovf:href`s of the files this member's disks use. */
  readonly files: readonly string[];
}

export interface SplitVApp {
  readonly name: string;
  readonly members: readonly VAppMember[];
}

const attr = (tag: string, name: string): string | undefined =>
  new RegExp(`\\bovf:${name}="([^"]*)"`).exec(tag)?.[1];

/** Undefined when the descriptor is a single VirtualSystem. */
export function splitVApp(descriptor: string): SplitVApp | undefined {
  const collection = /<VirtualSystemCollection\b[^>]*>/.exec(descriptor);
  if (!collection) return undefined;
  const envelopeOpen = /<Envelope\b[^>]*>/.exec(descriptor)?.[0];
  if (!envelopeOpen) throw new Error('The vApp descriptor has no Envelope element.');
  const name =
    /<Name>([^<]*)<\/Name>/.exec(descriptor.slice(collection.index))?.[1] ??
    attr(collection[0], 'id') ??
    'vApp';
  const files = [...descriptor.matchAll(/<File\b[^>]*\/>/g)].map((m) => ({
    tag: m[0],
    id: attr(m[0], 'id'),
    href: attr(m[0], 'href'),
  }));
  const disks = [...descriptor.matchAll(/<Disk\b[^>]*\/>/g)].map((m) => ({
    tag: m[0],
    id: attr(m[0], 'diskId'),
    fileRef: attr(m[0], 'fileRef'),
  }));
  const networkSection = /<NetworkSection\b[\s\S]*?<\/NetworkSection>/.exec(descriptor)?.[0] ?? '';
  const members = [...descriptor.matchAll(/<VirtualSystem\b[^>]*>[\s\S]*?<\/VirtualSystem>/g)].map((m) => {
    const system = m[0];
    const memberName = /<Name>([^<]*)<\/Name>/.exec(system)?.[1] ?? attr(system, 'id') ?? 'vm';
    const diskIds = new Set([...system.matchAll(/ovf:\/disk\/([\w.-]+)/g)].map((d) => d[1]));
    const myDisks = disks.filter((d) => diskIds.has(d.id));
    const fileIds = new Set(myDisks.map((d) => d.fileRef));
    const myFiles = files.filter((f) => fileIds.has(f.id));
    const out = [
      '<?xml version="1.0" encoding="UTF-8"?>',
      envelopeOpen,
      `  <References>\n${myFiles.map((f) => `    ${f.tag}`).join('\n')}\n  </References>`,
      `  <DiskSection>\n    <Info>Virtual disk information</Info>\n${myDisks.map((d) => `    ${d.tag}`).join('\n')}\n  </DiskSection>`,
      `  ${networkSection}`,
      `  ${system}`,
      '</Envelope>',
      '',
    ].join('\n');
    return { name: memberName, descriptor: out, files: myFiles.map((f) => f.href!).filter(Boolean) };
  });
  return { name, members };
}
