import { describe, expect, it } from 'vitest';
import { splitVApp } from '../../../agent/import/ovf-split.ts';

const vapp = `<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="x">
  <References>
    <File ovf:href="app-disk-0.vmdk" ovf:id="file1" ovf:size="10"/>
    <File ovf:href="app-disk-1.vmdk" ovf:id="file2" ovf:size="10"/>
    <File ovf:href="app-disk-2.vmdk" ovf:id="file3" ovf:size="10"/>
  </References>
  <DiskSection><Info>d</Info>
    <Disk ovf:capacity="10" ovf:diskId="vmdisk1" ovf:fileRef="file1"/>
    <Disk ovf:capacity="10" ovf:diskId="vmdisk2" ovf:fileRef="file2"/>
    <Disk ovf:capacity="10" ovf:diskId="vmdisk3" ovf:fileRef="file3"/>
  </DiskSection>
  <NetworkSection><Info>n</Info><Network ovf:name="net-a"/></NetworkSection>
  <VirtualSystemCollection ovf:id="app">
    <Name>app</Name>
    <VirtualSystem ovf:id="web"><Name>web</Name><VirtualHardwareSection>
      <Item><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource></Item>
      <Item><rasd:HostResource>ovf:/disk/vmdisk2</rasd:HostResource></Item>
    </VirtualHardwareSection></VirtualSystem>
    <VirtualSystem ovf:id="db"><Name>db</Name><VirtualHardwareSection>
      <Item><rasd:HostResource>ovf:/disk/vmdisk3</rasd:HostResource></Item>
    </VirtualHardwareSection></VirtualSystem>
  </VirtualSystemCollection>
</Envelope>`;

describe('splitVApp', () => {
  it('leaves a single-VM descriptor alone', () => {
    expect(splitVApp('<Envelope><VirtualSystem ovf:id="a"/></Envelope>')).toBeUndefined();
  });

  it('gives each member only its own files and disks, and the shared network section', () => {
    const split = splitVApp(vapp)!;
    expect(split.name).toBe('app');
    expect(split.members.map((m) => [m.name, m.files])).toEqual([
      ['web', ['app-disk-0.vmdk', 'app-disk-1.vmdk']],
      ['db', ['app-disk-2.vmdk']],
    ]);
    const db = split.members[1]!.descriptor;
    expect(db).toContain('ovf:diskId="vmdisk3"');
    expect(db).not.toContain('vmdisk1"');
    expect(db).not.toContain('app-disk-0.vmdk');
    expect(db).not.toContain('VirtualSystemCollection');
    expect(db).toContain('<Network ovf:name="net-a"/>');
    expect(db).toContain('xmlns:rasd="x"');
  });
});
