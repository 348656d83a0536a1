import { SaxesParser } from 'saxes';
import { AgentError } from '../../errors.ts';

export const NS = {
  soapenv: 'http://schemas.xmlsoap.org/soap/envelope/',
  xsd: 'http://www.w3.org/2001/XMLSchema',
  xsi: 'http://www.w3.org/2001/XMLSchema-instance',
  vim25: 'urn:vim25',
} as const;

/** A qualified type name from an `xsi:type` attribute, resolved by namespace, not by prefix. */
export interface QName {
  readonly ns: string;
  readonly local: string;
}

/**
 * One element of a parsed response. vim25 responses are small trees whose shape only the typed
 * layer knows (a single child and an array of one look alike), so the tree stays generic and the
 * typed operations read it with `child`, `children` and `text`.
 */
export class XmlNode {
  readonly children: XmlNode[] = [];
  text = '';

  constructor(
    readonly name: string,
    readonly ns: string,
    /** The `xsi:type` of the element, when present. */
    readonly type: QName | undefined,
    /** The plain `type` attribute: the managed object type of a ManagedObjectReference. */
    readonly moType?: string,
  ) {}

  /** Reads this element as a ManagedObjectReference. */
  get moref(): { type: string; value: string } {
    return { type: this.moType ?? this.typeName, value: this.text };
  }

  /** First child with this local name. */
  child(name: string): XmlNode | undefined {
    return this.children.find((c) => c.name === name);
  }

  /** All children with this local name, in document order. */
  all(name: string): XmlNode[] {
    return this.children.filter((c) => c.name === name);
  }

  /** Text of the first child with this name, or undefined. */
  str(name: string): string | undefined {
    return this.child(name)?.text;
  }

  /** The local type name: `xsi:type` when given, else the element name. */
  get typeName(): string {
    return this.type?.local ?? this.name;
  }

  /** Follows a path of child names, e.g. `node.path('info', 'deviceUrl')`. */
  path(...names: string[]): XmlNode | undefined {
    let node: XmlNode | undefined = this;
    for (const n of names) node = node?.child(n);
    return node;
  }
}

export class XmlParseError extends AgentError<'VIM_XML_INVALID'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('VIM_XML_INVALID', message, options);
    this.name = 'XmlParseError';
  }
}

/** Parses a whole document into an XmlNode tree with namespaces resolved. */
export function parseXml(text: string): XmlNode {
  const parser = new SaxesParser({ xmlns: true, position: false });
  const stack: XmlNode[] = [];
  // Prefix bindings in scope at each open element: `xsi:type` values are QNames whose prefix is
  // bound wherever the server chose (govmomi's simulator uses `XMLSchema-instance:` for xsi).
  const scopes: Record<string, string>[] = [{ xsd: NS.xsd, '': NS.vim25 }];
  let root: XmlNode | undefined;
  parser.on('opentag', (tag) => {
    const scope = { ...scopes.at(-1), ...(tag.ns ?? {}) };
    scopes.push(scope);
    const typeAttr = findXsiType(tag.attributes as Record<string, SaxAttr>);
    let type: QName | undefined;
    if (typeAttr !== undefined) {
      const colon = typeAttr.indexOf(':');
      const prefix = colon < 0 ? '' : typeAttr.slice(0, colon);
      type = { ns: scope[prefix] ?? '', local: colon < 0 ? typeAttr : typeAttr.slice(colon + 1) };
    }
    const plain = (tag.attributes as Record<string, SaxAttr>).type;
    const moType = plain === undefined ? undefined : typeof plain === 'string' ? plain : plain.value;
    const node = new XmlNode(tag.local ?? tag.name, tag.uri ?? '', type, moType);
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
    scopes.pop();
  });
  try {
    parser.write(text).close();
  } catch (error) {
    throw new XmlParseError(`The server's reply is not well-formed XML: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (!root) throw new XmlParseError('The server replied with an empty document.');
  return root;
}

type SaxAttr = string | { value: string; uri?: string; local?: string };

/** The value of the attribute whose namespace is XMLSchema-instance and local name `type`, whatever its prefix. */
function findXsiType(attrs: Record<string, SaxAttr>): string | undefined {
  for (const value of Object.values(attrs)) {
    if (typeof value !== 'string' && value.uri === NS.xsi && value.local === 'type') return value.value;
  }
  return undefined;
}

const escapes: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

/** Escapes text for element content or a double-quoted attribute. */
export const escapeXml = (s: string): string => s.replace(/[&<>"']/g, (c) => escapes[c]!);
