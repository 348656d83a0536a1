import { SaxesParser } from 'saxes';
import { AgentError } from '../../errors.ts';
import { escapeXml } from '../../vsphere/wire/xml.ts';

/** The namespaces of the vCloud API documents (vCloud API schema reference: common.xsd, vmwextensions.xsd, versions.xsd). */
export const VCD_NS = {
  vcloud: 'http://www.vmware.com/vcloud/v1.5',
  vmext: 'http://www.vmware.com/vcloud/extension/v1.5',
  ovf: 'http://schemas.dmtf.org/ovf/envelope/1',
  versions: 'http://www.vmware.com/vcloud/versions',
  xsi: 'http://www.w3.org/2001/XMLSchema-instance',
} as const;

/**
 * One element of a vCloud API document. Unlike vim25, vCloud documents carry most of their data in
 * attributes (href, name, status, type), so the tree keeps them, keyed by local name.
 */
export class VcdNode {
  readonly children: VcdNode[] = [];
  readonly attrs: Record<string, string> = {};
  text = '';

  constructor(
    readonly name: string,
    readonly ns: string,
  ) {}

  child(name: string): VcdNode | undefined {
    return this.children.find((c) => c.name === name);
  }

  all(name: string): VcdNode[] {
    return this.children.filter((c) => c.name === name);
  }

  attr(name: string): string | undefined {
    return this.attrs[name];
  }

  str(name: string): string | undefined {
    return this.child(name)?.text.trim();
  }

  /** Every descendant (depth first) with this local name. */
  find(name: string): VcdNode[] {
    const out: VcdNode[] = [];
    const walk = (n: VcdNode) => {
      for (const c of n.children) {
        if (c.name === name) out.push(c);
        walk(c);
      }
    };
    walk(this);
    return out;
  }
}

export class VcdXmlError extends AgentError<'VCD_XML_INVALID'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('VCD_XML_INVALID', message, options);
    this.name = 'VcdXmlError';
  }
}

/** Parses a document with namespaces resolved. A DOCTYPE is refused: vCloud documents never have one. */
export function parseVcdXml(text: string): VcdNode {
  const parser = new SaxesParser({ xmlns: true, position: true });
  const stack: VcdNode[] = [];
  let root: VcdNode | undefined;
  parser.on('doctype', () => {
    throw new Error('a DOCTYPE is not allowed');
  });
  parser.on('opentag', (tag) => {
    const node = new VcdNode(tag.local ?? tag.name, tag.uri ?? '');
    for (const a of Object.values(tag.attributes)) {
      if (typeof a === 'string') continue;
      if (a.prefix === 'xmlns' || a.name === 'xmlns') continue;
      node.attrs[a.local] = a.value;
    }
    const parent = stack.at(-1);
    if (parent) parent.children.push(node);
    else root = node;
    stack.push(node);
  });
  parser.on('text', (t) => {
    const top = stack.at(-1);
    if (top) top.text += t;
  });
  parser.on('closetag', () => {
    stack.pop();
  });
  try {
    parser.write(text).close();
  } catch (error) {
    throw new VcdXmlError(`not well-formed XML: ${(error as Error).message}`, { cause: error });
  }
  if (!root) throw new VcdXmlError('not well-formed XML: the document is empty');
  return root;
}

/** An element to write: `tag` carries its prefix (`vmext:VmMoRef`); undefined attributes and children are left out. */
export interface XmlElement {
  readonly tag: string;
  readonly attrs?: Readonly<Record<string, string | number | boolean | undefined>>;
  readonly children?: readonly (XmlElement | undefined | false)[];
  readonly text?: string;
}

export const el = (
  tag: string,
  attrs?: XmlElement['attrs'],
  ...children: (XmlElement | undefined | false)[]
): XmlElement => ({ tag, ...(attrs ? { attrs } : {}), children });

export const textEl = (tag: string, text: string | number | boolean): XmlElement => ({
  tag,
  text: String(text),
});

/** Serializes an element tree (with an XML declaration when `declaration`). */
export function renderXml(root: XmlElement, declaration = true): string {
  const out: string[] = [];
  if (declaration) out.push('<?xml version="1.0" encoding="UTF-8"?>');
  const write = (e: XmlElement) => {
    out.push(`<${e.tag}`);
    for (const [k, v] of Object.entries(e.attrs ?? {})) {
      if (v !== undefined) out.push(` ${k}="${escapeXml(String(v))}"`);
    }
    const kids = (e.children ?? []).filter((c): c is XmlElement => Boolean(c));
    if (kids.length === 0 && e.text === undefined) {
      out.push('/>');
      return;
    }
    out.push('>');
    if (e.text !== undefined) out.push(escapeXml(e.text));
    for (const c of kids) write(c);
    out.push(`</${e.tag}>`);
  };
  write(root);
  return out.join('');
}
