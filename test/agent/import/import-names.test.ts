import { describe, expect, it } from 'vitest';
import {
  importNames,
  type NamedItem,
  vcdNameLimit,
  vcenterLength,
  vcenterNameLimit,
} from '../../../agent/import/import-names.ts';
import type { ManifestItem } from '../../../agent/package/transfer-manifest.ts';

const tr = 'tr-names-1';
const vm = '<Envelope><VirtualSystem ovf:id="vm"><Name>x</Name></VirtualSystem></Envelope>';
const vappOf = (name: string, members: readonly string[]) =>
  `<Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"><VirtualSystemCollection ovf:id="${name}"><Name>${name}</Name>${members
    .map((m) => `<VirtualSystem ovf:id="${m}"><Name>${m}</Name></VirtualSystem>`)
    .join('')}</VirtualSystemCollection></Envelope>`;

const item = (id: string, name: string, kind: ManifestItem['kind'] = 'vm'): ManifestItem => ({
  id,
  kind,
  source: `/DC0/vm/${id}/${name}`,
  name,
  descriptor: `${name}.ovf`,
  files: [],
});
const single = (id: string, name: string, kind: ManifestItem['kind'] = 'vm'): NamedItem => ({
  item: item(id, name, kind),
  descriptor: vm,
});
const vapp = (id: string, name: string, members: readonly string[]): NamedItem => ({
  item: item(id, name, 'vapp'),
  descriptor: vappOf(name, members),
});

/** Every VM name in vCenter, over the whole transfer. */
const vcenterNames = (names: ReturnType<typeof importNames>) =>
  [...names.values()].flatMap((n) => n.vms.map((v) => v.vcenter));

// Issue 17, defect 3: two items of one name (two vCenter folders each with web-01) in one transfer.
describe('importNames', () => {
  it('keeps the names of a transfer without clashes as they were: `<name> (<transfer>)` in vCenter, `<name>` in vCloud Director', () => {
    const names = importNames(tr, [
      single('item-1', 'web-01'),
      single('item-2', 'tpl-base', 'template'),
      vapp('item-3', 'app-stack', ['web', 'db']),
    ]);

    expect(names.get('item-1')).toEqual({
      vcenter: `web-01 (${tr})`,
      vcd: 'web-01',
      vms: [{ original: 'web-01', vcenter: `web-01 (${tr})`, vcd: 'web-01' }],
    });
    expect(names.get('item-2')!.vms[0]!.vcenter).toBe(`tpl-base (${tr})`);
    expect(names.get('item-3')).toEqual({
      vcenter: `app-stack (${tr})`,
      vcd: 'app-stack',
      vms: [
        { original: 'web', vcenter: `web (${tr})`, vcd: 'web' },
        { original: 'db', vcenter: `db (${tr})`, vcd: 'db' },
      ],
    });
  });

  it('gives two items of one name their item ids, in vCenter and in vCloud Director, the original name first', () => {
    const names = importNames(tr, [
      single('item-1', 'web-01'),
      single('item-2', 'web-01'),
      single('item-3', 'db-01'),
    ]);

    expect(names.get('item-1')).toEqual({
      vcenter: `web-01 (${tr} item-1)`,
      vcd: 'web-01 (item-1)',
      vms: [{ original: 'web-01', vcenter: `web-01 (${tr} item-1)`, vcd: 'web-01 (item-1)' }],
    });
    expect(names.get('item-2')).toEqual({
      vcenter: `web-01 (${tr} item-2)`,
      vcd: 'web-01 (item-2)',
      vms: [{ original: 'web-01', vcenter: `web-01 (${tr} item-2)`, vcd: 'web-01 (item-2)' }],
    });
    // Only the names that clash change.
    expect(names.get('item-3')!.vcenter).toBe(`db-01 (${tr})`);
  });

  it('tells apart names that differ only in case, vApp members of two items, and a VM and a member of one name', () => {
    const names = importNames(tr, [
      single('item-1', 'Web-01'),
      single('item-2', 'web-01'),
      vapp('item-3', 'app-stack', ['web', 'db']),
      vapp('item-4', 'app-stack', ['web', 'db']),
      single('item-5', 'db'),
    ]);

    expect(names.get('item-1')!.vcenter).toBe(`Web-01 (${tr} item-1)`);
    expect(names.get('item-2')!.vcenter).toBe(`web-01 (${tr} item-2)`);
    expect(names.get('item-3')!.vms.map((v) => v.vcenter)).toEqual([
      `web (${tr} item-3.1)`,
      `db (${tr} item-3.2)`,
    ]);
    expect(names.get('item-4')!.vms.map((v) => v.vcd)).toEqual(['web (item-4.1)', 'db (item-4.2)']);
    expect(names.get('item-5')!.vcenter).toBe(`db (${tr} item-5)`);
    // The two vApps are told apart in vCloud Director by their items; the VM item's vApp keeps its name.
    expect([names.get('item-3')!.vcd, names.get('item-4')!.vcd, names.get('item-5')!.vcd]).toEqual([
      'app-stack (item-3)',
      'app-stack (item-4)',
      'db',
    ]);
    expect(names.get('item-3')!.vcenter).toBe(`app-stack (${tr} item-3)`);
    const all = vcenterNames(names).map((n) => n.toLowerCase());
    expect(new Set(all).size).toBe(all.length);
  });

  it('is the same on every run and in any order of the items', () => {
    const items = [single('item-1', 'web-01'), single('item-2', 'web-01'), vapp('item-3', 'app', ['web-01'])];
    const once = importNames(tr, items);
    const again = importNames(tr, [...items].reverse());

    expect(again).toEqual(once);
  });

  it('shortens a name too long for vCenter at the end of the original name, keeping the suffix, and two such names stay apart', () => {
    // 80 characters each, alike for their first 76.
    const long1 = `${'a-very-long-vm-name-'.repeat(3)}${'x'.repeat(16)}-one`;
    const long2 = `${'a-very-long-vm-name-'.repeat(3)}${'x'.repeat(16)}-two`;
    expect([long1.length, long2.length]).toEqual([80, 80]);
    const names = importNames(tr, [
      single('item-1', long1),
      single('item-2', long2),
      single('item-3', 'web-01'),
    ]);

    const [a, b] = [names.get('item-1')!.vcenter, names.get('item-2')!.vcenter];
    expect(a).not.toBe(b);
    for (const n of [a, b]) expect(vcenterLength(n)).toBeLessThanOrEqual(vcenterNameLimit);
    expect(a).toMatch(new RegExp(`^a-very-long-vm-name-a-very-long-vm-name-.*… \\(${tr} item-1\\)$`));
    expect(b.endsWith(`… (${tr} item-2)`)).toBe(true);
    expect(a.length).toBe(vcenterNameLimit);
    // vCloud Director takes the whole name.
    expect(names.get('item-1')!.vms[0]!.vcd).toBe(`${long1} (item-1)`);
    expect(names.get('item-1')!.vcd).toBe(long1);
    // A short name is left alone.
    expect(names.get('item-3')!.vcenter).toBe(`web-01 (${tr})`);
  });

  it('keeps a name that fits exactly, and counts /, \\ and a lone % as vCenter stores them (escaped), never cutting an escape', () => {
    const fits = 'f'.repeat(vcenterNameLimit - ` (${tr})`.length);
    const slashes = `web%2f${'s'.repeat(60)}/x\\y%z`;
    const names = importNames(tr, [single('item-1', fits), single('item-2', slashes)]);

    expect(names.get('item-1')!.vcenter).toBe(`${fits} (${tr})`);
    expect(names.get('item-1')!.vcenter.length).toBe(vcenterNameLimit);
    const cut = names.get('item-2')!.vcenter;
    // 6 + 60 + 1 + 3 + 1 + 3 + 1 + 3 + " (tr-names-1)" is more than 80 as stored.
    expect(cut).toMatch(/^web%2fs+… \(tr-names-1 item-2\)$/);
    expect(vcenterLength(cut)).toBeLessThanOrEqual(vcenterNameLimit);
  });

  it('tells apart a name that is literally another item’s name with its item id', () => {
    const names = importNames(tr, [
      single('item-1', 'a'),
      single('item-2', 'a'),
      single('item-3', 'a (item-2)'),
    ]);

    const vcd = [...names.values()].map((n) => n.vms[0]!.vcd);
    expect(new Set(vcd).size).toBe(3);
    expect(names.get('item-3')!.vms[0]!.vcd).toBe('a (item-2) (item-3)');
    expect(new Set(vcenterNames(names)).size).toBe(3);
  });

  it('keeps vCloud Director names within its limit', () => {
    const names = importNames(tr, [single('item-1', 'n'.repeat(200)), single('item-2', 'n'.repeat(200))]);

    for (const n of names.values()) {
      expect([...n.vcd].length).toBeLessThanOrEqual(vcdNameLimit);
      expect([...n.vms[0]!.vcd].length).toBeLessThanOrEqual(vcdNameLimit);
    }
    expect(names.get('item-1')!.vcd).not.toBe(names.get('item-2')!.vcd);
  });
});
