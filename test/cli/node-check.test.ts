import { describe, expect, inject, it } from 'vitest';
import { startFakeVcd } from '../peers/vcd/fake-vcd.ts';
import { odt } from '../support/cli.ts';

describe('odt node check', () => {
  const base = () => [
    'node',
    'check',
    '--vcenter',
    inject('vcsimUrl'),
    '--username',
    inject('vcsimUsername'),
  ];
  const env = () => ({ ODT_VCENTER_PASSWORD: inject('vcsimPassword') });

  it('passes against a vCenter with VM Network on every host of the cluster', async () => {
    const r = await odt([...base(), '--json'], env());
    expect(r.code).toBe(0);
    const results = JSON.parse(r.out) as { name: string; ok: boolean; detail: string }[];
    expect(results.map((x) => [x.name, x.ok])).toEqual([
      ['vcenter', true],
      ['placement', true],
      ['network', true],
      ['datastore', true],
    ]);
    expect(results[2]!.detail).toMatch(/port group 'VM Network' on all \d+ hosts/);
  });

  it('says what to fix when the port group does not exist', async () => {
    const r = await odt([...base(), '--network', 'No Such Net'], env());
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/FAIL placement +No port group 'No Such Net'/);
    expect(r.out).toContain('create it on every host');
  });

  it('says what to fix when the credentials are wrong', async () => {
    const r = await odt(base(), { ODT_VCENTER_PASSWORD: 'wrong' });
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/FAIL vcenter .*InvalidLogin.*check --vcenter, --username, ODT_VCENTER_PASSWORD/);
  });

  it('checks vCloud Director: answers, API version, vCenter attached; and a wrong password', async () => {
    const vcd = await startFakeVcd({
      username: 'admin@System',
      password: 'vcd-pass',
      vcenter: {
        url: inject('vcsimUrl'),
        username: inject('vcsimUsername'),
        password: inject('vcsimPassword'),
      },
    });
    try {
      const args = [...base(), '--vcd', vcd.url, '--vcd-username', 'admin@System'];
      const ok = await odt(args, { ...env(), ODT_VCD_PASSWORD: 'vcd-pass' });
      expect(ok.code).toBe(0);
      expect(ok.out).toMatch(/ok +vcd +vCloud Director answers, API \d+\.\d+, vCenter '.+' attached/);
      const bad = await odt(args, { ...env(), ODT_VCD_PASSWORD: 'nope' });
      expect(bad.code).not.toBe(0);
      expect(bad.out).toMatch(/FAIL vcd .*ODT_VCD_PASSWORD/);
    } finally {
      await vcd.stop();
    }
  });
});
