import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { exportRole } from '../../agent/runtime/roles.ts';
import { checkOptionsResponse } from '../peers/slack/fake-slack-api.ts';
import { type RunningSimulator, startSimulator } from '../peers/vsphere/simulator.ts';
import { type Harness, itemsSuggestion, REQUESTER, SITE, startHarness, submission, text } from './harness.ts';

// The request modal on what a real export agent reports: the agent's inventory read from the
// vSphere simulator (vim25), reported over the signed agent API, offered in the items select.

let sim: RunningSimulator;
let h: Harness;
let reported: { kind: string; name: string; path: string; sizeBytes: number }[];

beforeAll(async () => {
  sim = await startSimulator({ binary: inject('vcsimBinary'), diskSize: '3MiB' });
  const role = exportRole({
    vcenter: { url: sim.url, username: sim.username, password: sim.password, trust: { kind: 'system' } },
    nas: mkdtempSync(join(tmpdir(), 'odt-bot-nas-')),
    nodeCertPem: 'unused-by-the-inventory',
    dir: mkdtempSync(join(tmpdir(), 'odt-bot-agent-')),
  });
  reported = (await role.inventory!(new AbortController().signal)) as typeof reported;
  h = await startHarness({ inventory: reported });
}, 120_000);
afterAll(async () => {
  await h?.close();
  await sim?.stop();
});

describe('the request modal on a simulated vCenter', () => {
  it('offers every VM, template and vApp the agent reported, with kind and size', async () => {
    expect((await h.command('request')).status).toBe(200);
    const view = h.slack.ok('views.open').at(-1)!.response.view as Record<string, unknown>;
    const res = await h.interaction(itemsSuggestion(view, ''));
    const options = checkOptionsResponse(await res.json());
    const kinds = new Set(reported.map((i) => i.kind));
    expect(kinds).toEqual(new Set(['vm', 'template', 'vapp']));
    expect(options).toHaveLength(Math.min(100, reported.length));
    for (const item of reported) {
      const label = { vm: 'VM', template: 'Template', vapp: 'vApp' }[item.kind]!;
      const option = options.find((o) => o.value === `${item.kind}:${item.path}`);
      expect(option, item.path).toBeDefined();
      expect(option!.text.startsWith(`${label} `)).toBe(true);
      expect(item.sizeBytes).toBeGreaterThan(0);
    }
    // The simulator's VMs have two 3 MiB disks each: 6,291,456 bytes.
    const vm = reported.find((i) => i.kind === 'vm')!;
    expect(options.find((o) => o.value === `vm:${vm.path}`)!.text).toBe(`VM ${vm.name} · 6.3 MB`);
    const vapp = reported.find((i) => i.kind === 'vapp')! as (typeof reported)[number] & { vms: string[] };
    // Its VMs' disks: 2 VMs × 2 disks × 3 MiB = 12,582,912 bytes.
    expect(vapp.sizeBytes).toBe(vapp.vms.length * 2 * 3 * 1024 * 1024);
    expect(options.find((o) => o.value === `vapp:${vapp.path}`)!.text).toBe(
      `vApp ${vapp.name} (${vapp.vms.length} VMs) · ${Math.round(vapp.sizeBytes / 1e6)} MB`,
    );
  });

  it('a submission names the items as the agent will find them, with their reported sizes', async () => {
    const vm = reported.find((i) => i.kind === 'vm')!;
    const template = reported.find((i) => i.kind === 'template')!;
    const values = {
      site: { odt_req_site: { type: 'static_select', selected_option: { value: SITE } } },
      [`items:${SITE}`]: {
        odt_req_items: {
          type: 'multi_external_select',
          selected_options: [vm, template].map((i) => ({ value: `${i.kind}:${i.path}` })),
        },
      },
      vdc: text('acme-vdc'),
      catalog: text('golden'),
      network: text(''),
      provider_site: text(''),
      link: { odt_req_link: { type: 'number_input', value: '100' } },
    };
    const res = await h.interaction(submission(REQUESTER, 'odt_request_modal', values, '{}'));
    expect(await res.text()).toBe('');
    const [t] = await h.plane.service.list();
    const byName = (n: string) => reported.filter((i) => i.name === n).length;
    expect(t!.items.map((i) => [i.kind, i.source, i.sizeBytes])).toEqual([
      ['vm', byName(vm.name) === 1 ? vm.name : vm.path, vm.sizeBytes],
      ['template', byName(template.name) === 1 ? template.name : template.path, template.sizeBytes],
    ]);
  });
});
