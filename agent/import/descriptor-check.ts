import type { ManifestItem } from '../package/transfer-manifest.ts';

export interface DescriptorProblem {
  readonly file: string;
  readonly code: 'UNSAFE_DESCRIPTOR' | 'DESCRIPTOR_REFERENCE';
  readonly message: string;
}

/**
 * What the ODT node refuses in an OVF descriptor before it reaches vCenter: a DOCTYPE or entity
 * declaration (external entities read files or URLs of whoever parses them), and file references
 * that are not plain names of files in the same package.
 */
export function checkDescriptor(text: string, item: ManifestItem, file: string): DescriptorProblem[] {
  const problems: DescriptorProblem[] = [];
  if (/<!DOCTYPE/i.test(text) || /<!ENTITY/i.test(text)) {
    problems.push({
      file,
      code: 'UNSAFE_DESCRIPTOR',
      message: `${file} declares a DOCTYPE or an entity; an OVF descriptor needs neither, and external entities can read files. Refused.`,
    });
  }
  const names = new Set(item.files.map((f) => f.name));
  for (const m of text.matchAll(/\bovf:href="([^"]*)"/g)) {
    const href = m[1]!;
    if (
      href.includes('/') ||
      href.includes('\\') ||
      href.startsWith('.') ||
      /^[a-z]+:/i.test(href) ||
      !names.has(href)
    ) {
      problems.push({
        file,
        code: 'DESCRIPTOR_REFERENCE',
        message: `${file} references '${href}', which is not a file of this package (references must be plain names of the package's files).`,
      });
    }
  }
  return problems;
}
