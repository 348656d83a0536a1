// Issue 4: odt import's flags and environment, checked before anything is read or asked: options
// that need --vcd, an empty password, and (#18) the refusal when the signer is not pinned.
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initAgentIdentity } from '../../agent/identity/agent-identity.ts';
import { generateIdentity } from '../../agent/package/age/keys.ts';
import { odt } from '../support/cli.ts';

let dir: string;
let base: string[];
let unpinned: string[];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'odt-import-flags-'));
  await mkdir(join(dir, 'nas', 'tr-20261101-aaaaaa'), { recursive: true });
  await writeFile(join(dir, 'nas', 'tr-20261101-aaaaaa', 'transfer.json'), '{}');
  await writeFile(join(dir, 'identity.txt'), `${generateIdentity().identity}\n`);
  await writeFile(join(dir, 'agent.crt.pem'), '-----BEGIN CERTIFICATE-----\n');
  unpinned = [
    'import',
    ...['--nas', join(dir, 'nas'), '--transfer', 'tr-20261101-aaaaaa'],
    ...['--identity', join(dir, 'identity.txt'), '--state-dir', join(dir, 'state')],
    ...['--vcenter', 'https://127.0.0.1:1', '--username', 'u', '--insecure'],
  ];
  base = [...unpinned, '--agent-cert', join(dir, 'agent.crt.pem')];
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('odt import flags', () => {
  it('refuses vCloud Director options without --vcd, naming each', async () => {
    const r = await odt([...base, '--vdc', 'acme-vdc', '--power-on'], { ODT_VCENTER_PASSWORD: 'x' });

    expect(r.code).not.toBe(0);
    expect(r.err).toContain('--vdc: needs --vcd <url>');
    expect(r.err).toContain('--power-on: needs --vcd <url>');
    expect(r.err).not.toContain('cannot reach');
  });

  it('takes an empty ODT_VCENTER_PASSWORD as unset, and says what to export', async () => {
    const r = await odt(base, { ODT_VCENTER_PASSWORD: '' });

    expect(r.code).not.toBe(0);
    expect(r.err).toContain(
      'ODT_VCENTER_PASSWORD: is not set; export ODT_VCENTER_PASSWORD with the vCenter password',
    );
  });

  it('refuses without --agent-cert, naming the fix, before anything is asked (#18)', async () => {
    const without = await odt(unpinned, { ODT_VCENTER_PASSWORD: 'x' });

    expect(without.code).toBe(2);
    expect(without.err).toMatch(
      /^odt: odt import needs the certificate of the export agent enrolled for this transfer: nothing found on the NAS is trusted .* Pass --agent-cert <the enrolled agent's certificate> .*--trust-nas-signer .*\[SIGNER_NOT_PINNED\]\n$/,
    );
    expect(without.err).not.toContain('cannot reach');
  });

  it('with --trust-nas-signer (labs), warns loudly, naming the SHA-256 of the certificate on the NAS (#18)', async () => {
    const forger = await initAgentIdentity(join(dir, 'forger'));
    await copyFile(
      join(dir, 'forger', 'agent.crt.pem'),
      join(dir, 'nas', 'tr-20261101-aaaaaa', 'agent.crt.pem'),
    );
    const lab = await odt([...unpinned, '--trust-nas-signer'], { ODT_VCENTER_PASSWORD: 'x' });
    const pinned = await odt(base, { ODT_VCENTER_PASSWORD: 'x' });
    const both = await odt([...base, '--trust-nas-signer'], { ODT_VCENTER_PASSWORD: 'x' });

    // It goes on to vCenter (unreachable here), after the warning.
    expect(lab.err).toMatch(
      new RegExp(
        `^odt: WARNING: --trust-nas-signer: the signer is whoever made .*agent\\.crt\\.pem, SHA-256 ${forger.identity.certSha256}\\. .*proves nothing about who exported it`,
      ),
    );
    expect(lab.err).toContain('cannot reach 127.0.0.1:1');
    expect(pinned.err).not.toContain('WARNING');
    expect(pinned.err).toContain('cannot reach 127.0.0.1:1');
    expect(both.err).toContain('--agent-cert and --trust-nas-signer contradict each other');
    expect(both.err).not.toContain('cannot reach');
  });
});

describe('--thumbprint', () => {
  it('is refused with a plain http vCenter URL, which has no certificate to pin', async () => {
    const args = base
      .map((a) => (a === 'https://127.0.0.1:1' ? 'http://127.0.0.1:1' : a))
      .filter((a) => a !== '--insecure');
    const r = await odt([...args, '--thumbprint', `${'AB:'.repeat(31)}AB`], {
      ODT_VCENTER_PASSWORD: 'x',
    });

    expect(r.code).not.toBe(0);
    expect(r.err).toContain('--thumbprint pins a TLS certificate, and http://127.0.0.1:1 is plain http');
    expect(r.err).not.toContain('cannot reach');
  });
});
