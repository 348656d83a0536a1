/**
 * The slice of the vim25 schema that Sneakernet sends. A real vCenter rejects elements out of
 * schema order ("Got <X> tag when expecting <Y> tag"), and JavaScript key order is not a schema,
 * so every data object we send is serialized from these field lists, base type fields first
 * (XSD extension appends). Field types: a primitive (`string`, `int`, `long`, `boolean`), `MOR`
 * (ManagedObjectReference), or another type of this table; `any` passes a parsed XmlNode through.
 */

export interface FieldDef {
  readonly name: string;
  readonly type: string;
  readonly array?: boolean;
}

export interface TypeDef {
  readonly base?: string;
  readonly fields: readonly FieldDef[];
}

/** A field; the literal name and type are kept, so `VimArgs` (methods.ts) can type each call. */
const f = <const N extends string, const T extends string, const A extends boolean = false>(
  name: N,
  type: T,
  array?: A,
): { readonly name: N; readonly type: T; readonly array: A } => ({
  name,
  type,
  array: (array ?? false) as A,
});

export const primitives = new Set([
  'string',
  'int',
  'long',
  'short',
  'byte',
  'boolean',
  'dateTime',
  'MOR',
  'any',
]);

export const vimTypes: Readonly<Record<string, TypeDef>> = {
  DynamicData: { fields: [] },
  SelectionSpec: { base: 'DynamicData', fields: [f('name', 'string')] },
  TraversalSpec: {
    base: 'SelectionSpec',
    fields: [
      f('type', 'string'),
      f('path', 'string'),
      f('skip', 'boolean'),
      f('selectSet', 'SelectionSpec', true),
    ],
  },
  ObjectSpec: {
    base: 'DynamicData',
    fields: [f('obj', 'MOR'), f('skip', 'boolean'), f('selectSet', 'SelectionSpec', true)],
  },
  PropertySpec: {
    base: 'DynamicData',
    fields: [f('type', 'string'), f('all', 'boolean'), f('pathSet', 'string', true)],
  },
  PropertyFilterSpec: {
    base: 'DynamicData',
    fields: [
      f('propSet', 'PropertySpec', true),
      f('objectSet', 'ObjectSpec', true),
      f('reportMissingObjectsInResults', 'boolean'),
    ],
  },
  RetrieveOptions: { base: 'DynamicData', fields: [f('maxObjects', 'int')] },
  WaitOptions: { base: 'DynamicData', fields: [f('maxWaitSeconds', 'int'), f('maxObjectUpdates', 'int')] },
  KeyValue: { base: 'DynamicData', fields: [f('key', 'string'), f('value', 'string')] },
  OvfFile: {
    base: 'DynamicData',
    fields: [
      f('deviceId', 'string'),
      f('path', 'string'),
      f('compressionMethod', 'string'),
      f('chunkSize', 'long'),
      f('size', 'long'),
      f('capacity', 'long'),
      f('populatedSize', 'long'),
    ],
  },
  OvfCreateDescriptorParams: {
    base: 'DynamicData',
    fields: [
      f('ovfFiles', 'OvfFile', true),
      f('name', 'string'),
      f('description', 'string'),
      f('includeImageFiles', 'boolean'),
      f('exportOption', 'string', true),
      f('snapshot', 'MOR'),
    ],
  },
  OvfManagerCommonParams: {
    base: 'DynamicData',
    fields: [
      f('locale', 'string'),
      f('deploymentOption', 'string'),
      f('msgBundle', 'KeyValue', true),
      f('importOption', 'string', true),
    ],
  },
  OvfNetworkMapping: { base: 'DynamicData', fields: [f('name', 'string'), f('network', 'MOR')] },
  OvfResourceMap: {
    base: 'DynamicData',
    fields: [f('source', 'string'), f('parent', 'MOR'), f('resourceSpec', 'any'), f('datastore', 'MOR')],
  },
  OvfCreateImportSpecParams: {
    base: 'OvfManagerCommonParams',
    fields: [
      f('entityName', 'string'),
      f('hostSystem', 'MOR'),
      f('networkMapping', 'OvfNetworkMapping', true),
      f('ipAllocationPolicy', 'string'),
      f('ipProtocol', 'string'),
      f('propertyMapping', 'KeyValue', true),
      f('resourceMapping', 'OvfResourceMap', true),
      f('diskProvisioning', 'string'),
    ],
  },
  // Only the fields we send, in their schema order (vim25 WSDL: VirtualMachineRelocateSpec has
  // service, folder, datastore, diskMoveType, pool, …; VirtualMachineCloneSpec location, template,
  // config, customization, powerOn, snapshot, memory).
  VirtualMachineRelocateSpec: {
    base: 'DynamicData',
    fields: [f('folder', 'MOR'), f('datastore', 'MOR'), f('diskMoveType', 'string'), f('pool', 'MOR')],
  },
  VirtualMachineCloneSpec: {
    base: 'DynamicData',
    fields: [
      f('location', 'VirtualMachineRelocateSpec'),
      f('template', 'boolean'),
      f('powerOn', 'boolean'),
      f('snapshot', 'MOR'),
      f('memory', 'boolean'),
    ],
  },
  // Of VirtualMachineConfigSpec's many fields only the one a live export may change.
  VirtualMachineConfigSpec: { base: 'DynamicData', fields: [f('changeTrackingEnabled', 'boolean')] },
};

/**
 * Parameters of each method we call, in schema order. `_this` is always first. Its type is kept
 * literal: `VimClient.invoke` takes only these names, each with its own arguments (methods.ts).
 */
export const vimMethods = {
  RetrieveServiceContent: [f('_this', 'MOR')],
  Login: [f('_this', 'MOR'), f('userName', 'string'), f('password', 'string'), f('locale', 'string')],
  Logout: [f('_this', 'MOR')],
  CurrentTime: [f('_this', 'MOR')],
  RetrievePropertiesEx: [
    f('_this', 'MOR'),
    f('specSet', 'PropertyFilterSpec', true),
    f('options', 'RetrieveOptions'),
  ],
  ContinueRetrievePropertiesEx: [f('_this', 'MOR'), f('token', 'string')],
  CancelRetrievePropertiesEx: [f('_this', 'MOR'), f('token', 'string')],
  CreatePropertyCollector: [f('_this', 'MOR')],
  DestroyPropertyCollector: [f('_this', 'MOR')],
  CreateFilter: [f('_this', 'MOR'), f('spec', 'PropertyFilterSpec'), f('partialUpdates', 'boolean')],
  WaitForUpdatesEx: [f('_this', 'MOR'), f('version', 'string'), f('options', 'WaitOptions')],
  CancelWaitForUpdates: [f('_this', 'MOR')],
  CreateContainerView: [
    f('_this', 'MOR'),
    f('container', 'MOR'),
    f('type', 'string', true),
    f('recursive', 'boolean'),
  ],
  DestroyView: [f('_this', 'MOR')],
  FindByInventoryPath: [f('_this', 'MOR'), f('inventoryPath', 'string')],
  ExportVm: [f('_this', 'MOR')],
  ExportVApp: [f('_this', 'MOR')],
  HttpNfcLeaseProgress: [f('_this', 'MOR'), f('percent', 'int')],
  HttpNfcLeaseComplete: [f('_this', 'MOR')],
  HttpNfcLeaseAbort: [f('_this', 'MOR'), f('fault', 'any')],
  HttpNfcLeaseGetManifest: [f('_this', 'MOR')],
  CreateDescriptor: [f('_this', 'MOR'), f('obj', 'MOR'), f('cdp', 'OvfCreateDescriptorParams')],
  CreateImportSpec: [
    f('_this', 'MOR'),
    f('ovfDescriptor', 'string'),
    f('resourcePool', 'MOR'),
    f('datastore', 'MOR'),
    f('cisp', 'OvfCreateImportSpecParams'),
  ],
  ImportVApp: [f('_this', 'MOR'), f('spec', 'any'), f('folder', 'MOR'), f('host', 'MOR')],
  PowerOffVM_Task: [f('_this', 'MOR')],
  PowerOnVM_Task: [f('_this', 'MOR'), f('host', 'MOR')],
  Destroy_Task: [f('_this', 'MOR')],
  MarkAsTemplate: [f('_this', 'MOR')],
  Rename_Task: [f('_this', 'MOR'), f('newName', 'string')],
  CreateSnapshot_Task: [
    f('_this', 'MOR'),
    f('name', 'string'),
    f('description', 'string'),
    f('memory', 'boolean'),
    f('quiesce', 'boolean'),
  ],
  RemoveSnapshot_Task: [f('_this', 'MOR'), f('removeChildren', 'boolean'), f('consolidate', 'boolean')],
  CloneVM_Task: [
    f('_this', 'MOR'),
    f('folder', 'MOR'),
    f('name', 'string'),
    f('spec', 'VirtualMachineCloneSpec'),
  ],
  ReconfigVM_Task: [f('_this', 'MOR'), f('spec', 'VirtualMachineConfigSpec')],
  QueryChangedDiskAreas: [
    f('_this', 'MOR'),
    f('snapshot', 'MOR'),
    f('deviceKey', 'int'),
    f('startOffset', 'long'),
    f('changeId', 'string'),
  ],
  HasPrivilegeOnEntities: [
    f('_this', 'MOR'),
    f('entity', 'MOR', true),
    f('sessionId', 'string'),
    f('privId', 'string', true),
  ],
  HasPrivilegeOnEntity: [
    f('_this', 'MOR'),
    f('entity', 'MOR'),
    f('sessionId', 'string'),
    f('privId', 'string', true),
  ],
  AddCustomFieldDef: [f('_this', 'MOR'), f('name', 'string'), f('moType', 'string')],
  SetField: [f('_this', 'MOR'), f('entity', 'MOR'), f('key', 'int'), f('value', 'string')],
} as const satisfies Readonly<Record<string, readonly FieldDef[]>>;

/** All fields of a type in schema order: the base type's first. */
export function fieldsOf(typeName: string): readonly FieldDef[] {
  const def = vimTypes[typeName];
  if (!def) throw new Error(`vim25 type ${typeName} is not in agent/vsphere/wire/schema.ts; add it there`);
  return def.base ? [...fieldsOf(def.base), ...def.fields] : def.fields;
}

/** Whether `sub` is `base` or derives from it. */
export function isSubtype(sub: string, base: string): boolean {
  for (let t: string | undefined = sub; t; t = vimTypes[t]?.base) if (t === base) return true;
  return false;
}
