import { AgentError } from '../../errors.ts';
import { type FieldDef, fieldsOf, isSubtype, primitives, vimMethods } from './schema.ts';
import { escapeXml, NS, type XmlNode } from './xml.ts';

/** A reference to a managed object, e.g. `{ type: 'VirtualMachine', value: 'vm-42' }`. */
export interface Moref {
  readonly type: string;
  readonly value: string;
}

/** A data object to send; `$type` names a subtype of the declared field type (sent as `xsi:type`). */
export type VimValue = string | number | boolean | bigint | Moref | XmlNode | VimObject | readonly VimValue[];
export interface VimObject {
  readonly $type?: string;
  readonly [field: string]: VimValue | undefined;
}

/** A call that does not match agent/vsphere/wire/schema.ts: a bug of ours, not the server's. */
export class VimSchemaError extends AgentError<'VIM_SCHEMA'> {
  constructor(message: string) {
    super('VIM_SCHEMA', message);
    this.name = 'VimSchemaError';
  }
}

const isNode = (v: unknown): v is XmlNode =>
  typeof v === 'object' && v !== null && 'children' in v && 'name' in v && 'ns' in v;

/** Serializes one method call's body element, fields in schema order. */
export function serializeCall(method: string, args: Record<string, VimValue | undefined>): string {
  const params = (vimMethods as Readonly<Record<string, readonly FieldDef[]>>)[method];
  if (!params) throw new VimSchemaError(`vim25 method ${method} is not in agent/vsphere/wire/schema.ts`);
  const known = new Set(params.map((p) => p.name));
  for (const key of Object.keys(args)) {
    if (!known.has(key))
      throw new VimSchemaError(`${method} has no parameter '${key}' (it takes ${[...known].join(', ')})`);
  }
  const out: string[] = [`<${method} xmlns="${NS.vim25}">`];
  for (const param of params) writeField(out, param, args[param.name], method);
  out.push(`</${method}>`);
  return out.join('');
}

function writeField(out: string[], field: FieldDef, value: VimValue | undefined, owner: string): void {
  if (value === undefined) return;
  if (Array.isArray(value)) {
    if (!field.array) throw new VimSchemaError(`${owner}.${field.name} takes one value, not an array`);
    for (const v of value) writeValue(out, field.name, field.type, v as VimValue, owner);
    return;
  }
  writeValue(out, field.name, field.type, value as VimValue, owner);
}

function writeValue(out: string[], name: string, declared: string, value: VimValue, owner: string): void {
  if (isNode(value)) {
    writeNode(out, name, value);
    return;
  }
  if (declared === 'MOR') {
    const ref = value as Moref;
    if (typeof ref !== 'object' || typeof ref.type !== 'string' || typeof ref.value !== 'string') {
      throw new VimSchemaError(`${owner}.${name} needs a managed object reference {type, value}`);
    }
    out.push(`<${name} type="${escapeXml(ref.type)}">${escapeXml(ref.value)}</${name}>`);
    return;
  }
  if (primitives.has(declared)) {
    if (typeof value === 'object')
      throw new VimSchemaError(`${owner}.${name} is a ${declared}, got an object`);
    out.push(`<${name}>${escapeXml(String(value))}</${name}>`);
    return;
  }
  if (typeof value !== 'object' || value === null) {
    throw new VimSchemaError(`${owner}.${name} is a ${declared}, got ${typeof value}`);
  }
  const obj = value as VimObject;
  const actual = obj.$type ?? declared;
  if (!isSubtype(actual, declared)) {
    throw new VimSchemaError(`${owner}.${name}: ${actual} is not a ${declared}`);
  }
  const fields = fieldsOf(actual);
  const known = new Set(fields.map((fd) => fd.name));
  for (const key of Object.keys(obj)) {
    if (key !== '$type' && !known.has(key)) {
      throw new VimSchemaError(`${actual} has no field '${key}' (fields: ${[...known].join(', ')})`);
    }
  }
  out.push(actual === declared ? `<${name}>` : `<${name} xsi:type="${actual}">`);
  for (const fd of fields) writeField(out, fd, obj[fd.name], actual);
  out.push(`</${name}>`);
}

/**
 * Writes a parsed element back under a new name, keeping its children's order and `xsi:type`s.
 * Used to return objects the server built (an ImportSpec from CreateImportSpec) without having to
 * model every type inside them.
 */
function writeNode(out: string[], name: string, node: XmlNode): void {
  const type = node.type ? ` xsi:type="${node.type.ns === NS.xsd ? 'xsd:' : ''}${node.type.local}"` : '';
  const attrs = node.moType === undefined ? '' : ` type="${escapeXml(node.moType)}"`;
  if (node.children.length === 0) {
    out.push(`<${name}${type}${attrs}>${escapeXml(node.text)}</${name}>`);
    return;
  }
  out.push(`<${name}${type}${attrs}>`);
  for (const child of node.children) writeNode(out, child.name, child);
  out.push(`</${name}>`);
}

/** Wraps a body in a SOAP 1.1 envelope declaring the prefixes our bodies use. */
export const envelope = (body: string): string =>
  `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="${NS.soapenv}" xmlns:xsd="${NS.xsd}" xmlns:xsi="${NS.xsi}"><soapenv:Body>${body}</soapenv:Body></soapenv:Envelope>`;
