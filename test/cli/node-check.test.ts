import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import {
  manifestBytes,
  signManifest,
  transferManifestSchema,
} from '../../agent/package/transfer-manifest.ts';
import { VimClient } from '../../agent/vsphere/client.ts';
import { startFakeVcd } from '../peers/vcd/fake-vcd.ts';
import { moRef, RawSoapClient } from '../peers/vsphere/raw-soap.ts';
import { startSimulator } from '../peers/vsphere/simulator.ts';
import { exportItems, initParties, odt } from '../support/cli.ts';

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
      ['attribute', true],
      ['datastore', true],
    ]);
    expect(results[2]!.detail).toMatch(/port group 'VM Network' on all \d+ hosts/);
    expect(results[3]!.detail).toMatch(
      /^custom attribute 'sneakernet\.import' \(key \d+\) marks the VMs imports make$/,
    );
  });

  it('says what to fix when the user may not define custom attributes', async () => {
    const { runNodeChecks } = await import('../../cli/commands/node-check.ts');
    const { VimFaultError } = await import('../../agent/vsphere/wire/soap-connection.ts');
    // The simulator grants every privilege: the refusal vCenter gives a user without it, here.
    const refusing = async (f: { vcenter: string; username: string }) => {
      const client = await VimClient.connect({
        url: f.vcenter,
        username: f.username,
        password: inject('vcsimPassword'),
        trust: { kind: 'system' },
      });
      // As a vCenter where the attribute is not defined yet (the shared simulator may have it from
      // other tests) and this user may not define it.
      const properties = client.properties.bind(client);
      client.properties = async (obj, type, paths) =>
        type === 'CustomFieldsManager' ? new Map() : properties(obj, type, paths);
      const invoke = client.invoke.bind(client);
      client.invoke = async (method, args) => {
        if (method === 'AddCustomFieldDef') {
          throw new VimFaultError(
            method,
            'NoPermission',
            'Permission to perform this operation was denied.',
            undefined,
          );
        }
        return invoke(method, args);
      };
      return client;
    };
    const results = await runNodeChecks(
      { vcenter: inject('vcsimUrl'), username: inject('vcsimUsername'), network: 'VM Network' } as never,
      refusing,
    );
    expect(results.find((r) => r.name === 'attribute')).toEqual({
      name: 'attribute',
      ok: false,
      detail: expect.stringMatching(
        new RegExp(
          `^cannot define the custom attribute 'sneakernet\\.import' that marks imported VMs \\(.*NoPermission.*\\); give ${inject('vcsimUsername')} the privileges to manage and set custom attributes$`,
        ),
      ),
    });
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

  it('names each missing prerequisite: the port group on some hosts, datastore room, the vCD password', async () => {
    const sim = await startSimulator({ binary: inject('vcsimBinary'), apps: 0, templates: 0 });
    const work = await mkdtemp(join(tmpdir(), 'odt-node-check-'));
    const vcd = await startFakeVcd({
      username: 'admin@System',
      password: 'vcd-pass',
      vcenter: { url: sim.url, username: sim.username, password: sim.password },
    });
    try {
      // A standard port group that only DC0_C0_H0 of the cluster has: HostNetworkSystem.AddPortGroup
      // (the project's client does not carry that method; a hand-written envelope does).
      const client = await VimClient.connect({
        url: sim.url,
        username: sim.username,
        password: sim.password,
        trust: { kind: 'system' },
      });
      let networkSystem: string;
      try {
        const hosts = await client.listByType(['HostSystem'], ['name', 'configManager.networkSystem']);
        const h0 = hosts.find((h) => h.props.get('name')?.text === 'DC0_C0_H0')!;
        networkSystem = h0.props.get('configManager.networkSystem')!.moref.value;
      } finally {
        await client.logout();
      }
      const raw = new RawSoapClient(sim.url);
      await raw.login(sim.username, sim.password);
      await raw.call(
        `<AddPortGroup xmlns="urn:vim25">${moRef('_this', 'HostNetworkSystem', networkSystem)}` +
          '<portgrp><name>Import Net</name><vlanId>0</vlanId><vswitchName>vSwitch0</vswitchName><policy/></portgrp>' +
          '</AddPortGroup>',
      );

      // A real transfer, its sizes inflated past the datastore's free space and re-signed by the agent.
      const recipient = await initParties(work);
      const nas = join(work, 'nas');
      await exportItems(sim, work, recipient, ['DC0_H0_VM1'], nas, 'tr-big');
      const manifestPath = join(nas, 'tr-big', 'transfer.json');
      const manifest = transferManifestSchema.parse(JSON.parse(await readFile(manifestPath, 'utf8')));
      const disk = manifest.items[0]!.files.find((f) => f.role === 'disk')!;
      (disk as { size: number }).size = 2 ** 50; // 1 PiB
      const bytes = manifestBytes(manifest);
      await writeFile(manifestPath, bytes);
      await writeFile(
        `${manifestPath}.sig`,
        signManifest(bytes, await readFile(join(work, 'agent', 'agent.key.pem'), 'utf8')),
      );

      const args = (network: string, transfer = 'tr-big') => [
        'node',
        'check',
        '--vcenter',
        sim.url,
        '--username',
        sim.username,
        '--network',
        network,
        '--nas',
        nas,
        '--transfer',
        transfer,
        '--vcd',
        vcd.url,
        '--vcd-username',
        'admin@System',
      ];
      const env = { ODT_VCENTER_PASSWORD: sim.password, ODT_VCD_PASSWORD: 'wrong' };
      const r = await odt(args('Import Net'), env);
      expect(r.code).toBe(5);
      expect(r.out).toMatch(/^ok +vcenter /m);
      expect(r.out).toMatch(/^ok +placement /m);
      expect(r.out).toMatch(
        /^FAIL network +port group 'Import Net' is missing on DC0_C0_H1, DC0_C0_H2; add it to every host/m,
      );
      expect(r.out).toMatch(
        /^FAIL datastore +LocalDS_0 has [\d.]+ GiB free, the transfer needs 1048576\.\d\d GiB; free space or pass --datastore/m,
      );
      expect(r.out).toMatch(/^FAIL vcd .*ODT_VCD_PASSWORD/m);

      // The same vCenter with VM Network (on every host) and the right vCD password: only the room fails.
      const ok = await odt(args('VM Network'), { ...env, ODT_VCD_PASSWORD: 'vcd-pass' });
      expect(ok.out).toMatch(/^ok +network +port group 'VM Network' on all 3 hosts/m);
      expect(ok.out).toMatch(/^ok +vcd /m);
      expect(ok.out).toMatch(/^FAIL datastore /m);
      expect(ok.out.match(/^FAIL/gm)).toHaveLength(1);

      // A mistyped transfer id: the NAS folder's transfers are named.
      const typo = await odt(args('VM Network', 'tr-bgi'), { ...env, ODT_VCD_PASSWORD: 'vcd-pass' });
      expect(typo.out).toMatch(
        /^FAIL datastore +cannot read the transfer's size: No transfer tr-bgi in .* \(it holds tr-big\)/m,
      );
    } finally {
      await vcd.stop();
      await sim.stop();
      await rm(work, { recursive: true, force: true });
    }
  }, 60_000);
});
