import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { certificateSha256, initAgentIdentity } from '../../../agent/identity/agent-identity.ts';
import { makeTransferKey } from '../../../agent/identity/transfer-key.ts';
import { importRole } from '../../../agent/runtime/roles.ts';
import { silentLogger } from '../../../core/ports/logger.ts';
import type { TaskRecord } from '../../../core/ports/task-queue.ts';
import { type RunningSimulator, startSimulator } from '../../peers/vsphere/simulator.ts';
import { exportItems, exportSite, importArgs, initParties, odt } from '../../support/cli.ts';
import { forgeTransfer, vcenterTrace } from '../../support/forge.ts';

// Issue #18: the ODT node trusts the enrolled agent's certificate and nothing found on the NAS,
// and a package is bound to its transfer, site, agent and recipient. `odt import` and `odt verify`
// refuse otherwise, by name, with nothing sent to vCenter.
describe('a forged or misplaced NAS is refused by odt import and odt verify (#18)', () => {
  let customer: RunningSimulator;
  let provider: RunningSimulator;
  let work: string;
  let recipient: string;
  let forged: string;
  let forgerSha: string;
  const transfer = 'tr-trust-1';
  const env = () => ({ ODT_VCENTER_PASSWORD: provider.password });
  const cert = () => join(work, 'agent', 'agent.crt.pem');
  const identity = () => join(work, 'node', 'identity.txt');

  beforeAll(async () => {
    customer = await startSimulator({ binary: inject('vcsimBinary'), apps: 0, templates: 0 });
    provider = await startSimulator({ binary: inject('vcsimBinary'), apps: 0, templates: 0 });
    work = await mkdtemp(join(tmpdir(), 'odt-trust-'));
    recipient = await initParties(work);
    await exportItems(customer, work, recipient, ['DC0_H0_VM1'], join(work, 'nas'), transfer);
    forged = join(work, 'forged');
    await cp(join(work, 'nas'), forged, { recursive: true });
    forgerSha = await forgeTransfer(join(forged, transfer), recipient, join(work, 'forger'));
  });
  afterAll(async () => {
    await customer?.stop();
    await provider?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** `odt import` of `id` from `nas` with the flags given after the usual ones (minus --agent-cert). */
  const importOf = (nas: string, id: string, flags: readonly string[], state = `state-${Math.random()}`) => {
    const args = importArgs(provider, work, nas, id, join(work, state));
    const at = args.indexOf('--agent-cert');
    args.splice(at, 2);
    return odt([...args, ...flags], env());
  };
  /** Runs `act` and asserts that it left nothing in the provider's vCenter. */
  const nothingSent = async <T>(act: () => Promise<T>): Promise<T> => {
    const before = await vcenterTrace(provider);
    const r = await act();
    expect(await vcenterTrace(provider)).toEqual(before);
    return r;
  };

  it('the forged NAS passes every hash and its own signature: only the pinned signer tells it', async () => {
    // The lab override trusts the certificate on the NAS: everything checks out, loudly.
    const lab = await odt([
      ...['verify', '--nas', forged, '--transfer', transfer, '--identity', identity()],
      '--trust-nas-signer',
    ]);
    expect(lab.code).toBe(0);
    expect(lab.err).toContain(`odt: WARNING: --trust-nas-signer: the signer is whoever made`);
    expect(lab.err).toContain(`SHA-256 ${forgerSha}`);
    expect(lab.out).toContain('signer taken from the NAS with --trust-nas-signer: NOT authenticated');
  });

  it('odt import without --agent-cert refuses before anything reaches vCenter (SIGNER_NOT_PINNED)', async () => {
    const r = await nothingSent(() => importOf(forged, transfer, []));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /odt import needs the certificate of the export agent enrolled for this transfer: nothing found on the NAS is trusted.*Pass --agent-cert <the enrolled agent's certificate>.*\[SIGNER_NOT_PINNED\]/,
    );
    expect(r.err).not.toContain('imported');
  });

  it('odt import with the enrolled agent pinned refuses the forged signer (UNTRUSTED_SIGNER)', async () => {
    const r = await nothingSent(() => importOf(forged, transfer, ['--agent-cert', cert()]));
    expect(r.code).not.toBe(0);
    expect(r.err).toContain('nothing was imported');
    expect(r.err).toMatch(
      new RegExp(
        `transfer\\.json: transfer\\.json names agent certificate ${forgerSha.slice(0, 16)}….*another key signed this transfer.*\\[UNTRUSTED_SIGNER\\]`,
      ),
    );
  });

  it('odt verify refuses it the same way', async () => {
    const without = await odt(['verify', '--nas', forged, '--transfer', transfer]);
    expect(without.code).toBe(2);
    expect(without.err).toMatch(
      /odt verify needs the certificate of the export agent .*\[SIGNER_NOT_PINNED\]/,
    );
    const pinned = await odt(['verify', '--nas', forged, '--transfer', transfer, '--agent-cert', cert()]);
    expect(pinned.code).toBe(4);
    expect(pinned.err).toContain('[UNTRUSTED_SIGNER]');
    expect(pinned.out).not.toContain('intact');
  });

  it('a genuine package under another transfer id is refused by name (TRANSFER_MISMATCH)', async () => {
    const other = 'tr-trust-2';
    const nas = join(work, 'moved');
    await cp(join(work, 'nas', transfer), join(nas, other), { recursive: true });
    const r = await nothingSent(() => importOf(nas, other, ['--agent-cert', cert()]));
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(
      /transfer\.json: transfer\.json is signed for transfer tr-trust-1, not tr-trust-2: this is another transfer's package.*\[TRANSFER_MISMATCH\]/,
    );
    const v = await odt(['verify', '--nas', nas, '--transfer', other, '--agent-cert', cert()]);
    expect(v.code).toBe(4);
    expect(v.err).toContain('[TRANSFER_MISMATCH]');
  });

  it('a package of another site is refused by name (SITE_MISMATCH); the right site passes', async () => {
    const r = await nothingSent(() =>
      importOf(join(work, 'nas'), transfer, ['--agent-cert', cert(), '--site', 'globex']),
    );
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(
      /transfer\.json is signed as exported at site 'acme', but transfer tr-trust-1 is from site 'globex'.*\[SITE_MISMATCH\]/,
    );
    const base = ['verify', '--nas', join(work, 'nas'), '--transfer', transfer, '--agent-cert', cert()];
    expect((await odt([...base, '--site', 'globex'])).err).toContain('[SITE_MISMATCH]');
    const right = await odt([...base, '--site', exportSite]);
    expect(right.err).toBe('');
    expect(right.code).toBe(0);
  });

  it("a genuine package with another agent's certificate pinned is refused (UNTRUSTED_SIGNER)", async () => {
    const other = join(work, 'other-agent');
    await odt(['agent', 'init', '--dir', other]);
    const r = await nothingSent(() =>
      importOf(join(work, 'nas'), transfer, ['--agent-cert', join(other, 'agent.crt.pem')]),
    );
    expect(r.err).toContain('[UNTRUSTED_SIGNER]');
  });

  it("a package encrypted to another node's recipient is refused by name (RECIPIENT_MISMATCH)", async () => {
    const node = join(work, 'other-node');
    await odt(['node', 'init', '--dir', node]);
    const r = await odt([
      ...['verify', '--nas', join(work, 'nas'), '--transfer', transfer, '--agent-cert', cert()],
      ...['--identity', join(node, 'identity.txt')],
    ]);
    expect(r.code).toBe(4);
    const mine = (await readFile(join(node, 'identity.txt'), 'utf8')).match(/public key: (age1\w+)/)![1]!;
    expect(r.err).toContain(
      `transfer.json is encrypted to ${recipient.slice(0, 16)}…, not to this node's identity (${mine.slice(0, 16)}…)`,
    );
    expect(r.err).toContain('[RECIPIENT_MISMATCH]');
  });

  it("the workflow's ODT node opens a keyed transfer with its own key only: a package sealed to its long-term identity is refused (RECIPIENT_MISMATCH)", async () => {
    // The genuine package of the enrolled agent, encrypted to the node's long-term recipient (as
    // `odt export --recipient` by hand does), arrives for a transfer whose key the node made.
    const stateDir = join(work, 'keyed-node-state');
    const nodeAgent = (await initAgentIdentity(join(work, 'keyed-node-agent'), { commonName: 'node' }))
      .identity;
    const view = { id: transfer, site: exportSite, providerSite: 'cloud' };
    const { signed } = await makeTransferKey({
      stateDir,
      transfer: view,
      node: { identity: nodeAgent, agentId: 'node-1' },
    });
    const agentCert = await readFile(cert(), 'utf8');
    const role = importRole({
      vcenter: {
        url: provider.url,
        username: provider.username,
        password: provider.password,
        trust: { kind: 'insecure' },
      },
      nas: join(work, 'nas'),
      identityFile: identity(),
      stateDir,
      dir: join(work, 'keyed-node-agent'),
    });
    const run = () =>
      role.run({
        task: { id: `${transfer}-import-1`, kind: 'import', itemIds: ['item-1'] } as unknown as TaskRecord,
        transfer: {
          ...view,
          phase: 'importing',
          items: [
            {
              id: 'item-1',
              kind: 'vm',
              source: 'DC0_H0_VM1',
              target: { vdc: 'vdc', placement: 'vapp', powerOn: false, deploy: false },
              state: 'exported',
            },
          ],
          exportAgent: { id: 'agt-1', certPem: agentCert, certSha256: certificateSha256(agentCert) },
          key: signed,
        },
        signal: new AbortController().signal,
        onProgress: () => {},
        log: silentLogger,
      });
    // Were it opened, the item would reach the provider's vCenter (and fail only on its VDC later).
    const refused = await nothingSent(() =>
      run().then(
        () => undefined,
        (e: unknown) => e,
      ),
    );
    expect(refused).toMatchObject({ code: 'TRANSFER_NOT_TRUSTED' });
    expect((refused as Error).message).toContain(
      `encrypted to ${recipient.slice(0, 16)}…, not to this node's identity`,
    );
    expect((refused as Error).message).toContain('[RECIPIENT_MISMATCH]');
  });
});
