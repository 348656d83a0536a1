import { describe, expect, it } from 'vitest';
import { envelope, serializeCall, VimSchemaError } from '../../../agent/vsphere/wire/serialize.ts';
import { normalizeThumbprint, TlsTrustError } from '../../../agent/vsphere/wire/tls.ts';
import { NS, parseXml } from '../../../agent/vsphere/wire/xml.ts';

describe('vim25 serialization', () => {
  it('writes fields in schema order whatever the JavaScript key order', () => {
    const xml = serializeCall('RetrievePropertiesEx', {
      options: { maxObjects: 10 },
      specSet: [
        {
          objectSet: [{ skip: false, obj: { type: 'Folder', value: 'group-d1' } }],
          propSet: [{ pathSet: ['name', 'parent'], type: 'VirtualMachine' }],
        },
      ],
      _this: { type: 'PropertyCollector', value: 'propertyCollector' },
    });
    expect(xml).toBe(
      '<RetrievePropertiesEx xmlns="urn:vim25">' +
        '<_this type="PropertyCollector">propertyCollector</_this>' +
        '<specSet><propSet><type>VirtualMachine</type><pathSet>name</pathSet><pathSet>parent</pathSet></propSet>' +
        '<objectSet><obj type="Folder">group-d1</obj><skip>false</skip></objectSet></specSet>' +
        '<options><maxObjects>10</maxObjects></options>' +
        '</RetrievePropertiesEx>',
    );
  });

  it('marks a subtype with xsi:type and orders base fields first (TraversalSpec in a selectSet)', () => {
    const xml = serializeCall('RetrievePropertiesEx', {
      _this: { type: 'PropertyCollector', value: 'pc' },
      specSet: [
        {
          propSet: [{ type: 'VirtualMachine', pathSet: ['name'] }],
          objectSet: [
            {
              obj: { type: 'ContainerView', value: 'session[1]' },
              skip: true,
              selectSet: [
                { $type: 'TraversalSpec', skip: false, path: 'view', type: 'ContainerView', name: 'v' },
              ],
            },
          ],
        },
      ],
      options: {},
    });
    expect(xml).toContain(
      '<selectSet xsi:type="TraversalSpec"><name>v</name><type>ContainerView</type><path>view</path><skip>false</skip></selectSet>',
    );
  });

  it('refuses a field the type does not have, naming the fields it has', () => {
    expect(() =>
      serializeCall('CreateDescriptor', {
        _this: { type: 'OvfManager', value: 'OvfManager' },
        obj: { type: 'VirtualMachine', value: 'vm-1' },
        cdp: { name: 'x', ovfFile: [] },
      }),
    ).toThrow(/OvfCreateDescriptorParams has no field 'ovfFile' \(fields: ovfFiles, name/);
    expect(() =>
      serializeCall('ExportVm', { _this: { type: 'VirtualMachine', value: 'vm-1' }, force: true }),
    ).toThrow(VimSchemaError);
  });

  it('refuses a subtype that is not one', () => {
    expect(() =>
      serializeCall('RetrievePropertiesEx', {
        _this: { type: 'PropertyCollector', value: 'pc' },
        specSet: [{ $type: 'TraversalSpec', propSet: [] }],
      }),
    ).toThrow('TraversalSpec is not a PropertyFilterSpec');
  });

  it('escapes text and attribute values', () => {
    const xml = serializeCall('Login', {
      _this: { type: 'SessionManager', value: 'SessionManager' },
      userName: 'a<b>&"c"',
      password: "p'&",
    });
    expect(xml).toContain(
      '<userName>a&lt;b&gt;&amp;&quot;c&quot;</userName><password>p&apos;&amp;</password>',
    );
  });

  it('passes a parsed server object back verbatim with its xsi:types (an ImportSpec round trip)', () => {
    const reply = parseXml(
      `<r xmlns="urn:vim25" xmlns:XMLSchema-instance="${NS.xsi}"><importSpec XMLSchema-instance:type="VirtualMachineImportSpec"><configSpec><name>vm</name><deviceChange><device XMLSchema-instance:type="VirtualDisk"><key>-1</key></device></deviceChange></configSpec><resPoolEntity type="ResourcePool">resgroup-1</resPoolEntity></importSpec></r>`,
    );
    const spec = reply.child('importSpec')!;
    const xml = serializeCall('ImportVApp', {
      _this: { type: 'ResourcePool', value: 'resgroup-1' },
      spec,
      folder: { type: 'Folder', value: 'group-v1' },
    });
    expect(xml).toContain(
      '<spec xsi:type="VirtualMachineImportSpec"><configSpec><name>vm</name><deviceChange><device xsi:type="VirtualDisk"><key>-1</key></device></deviceChange></configSpec><resPoolEntity type="ResourcePool">resgroup-1</resPoolEntity></spec><folder type="Folder">group-v1</folder>',
    );
    expect(envelope(xml)).toContain(`xmlns:xsi="${NS.xsi}"`);
  });
});

describe('vim25 parsing', () => {
  it('resolves xsi:type by namespace whatever the prefix', () => {
    const doc = parseXml(
      `<a xmlns="urn:vim25" xmlns:i="${NS.xsi}" xmlns:x="${NS.xsd}"><val i:type="ArrayOfManagedObjectReference"><m type="VirtualMachine">vm-1</m></val><s i:type="x:string">hi</s></a>`,
    );
    expect(doc.child('val')!.type).toEqual({ ns: NS.vim25, local: 'ArrayOfManagedObjectReference' });
    expect(doc.path('val', 'm')!.moref).toEqual({ type: 'VirtualMachine', value: 'vm-1' });
    expect(doc.child('s')!.type).toEqual({ ns: NS.xsd, local: 'string' });
  });

  it('says what is wrong with a reply that is not XML', () => {
    expect(() => parseXml('<html><body>502 Bad Gateway</html>')).toThrow('not well-formed XML');
  });
});

describe('thumbprints', () => {
  it('accepts colon, space or plain hex and refuses anything else', () => {
    const hex = 'ab'.repeat(32);
    expect(normalizeThumbprint(hex.match(/../g)!.join(':'))).toBe(hex.toUpperCase());
    expect(normalizeThumbprint(hex)).toBe(hex.toUpperCase());
    expect(() => normalizeThumbprint('abc')).toThrow(TlsTrustError);
    expect(() => normalizeThumbprint('zz'.repeat(32))).toThrow('64 hex digits');
  });
});
