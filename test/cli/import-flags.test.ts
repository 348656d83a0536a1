// Issue 4: odt import's flags and environment, checked before anything is read or asked: options
// that need --vcd, an empty password, and the warning when the signer is not pinned.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateIdentity } from '../../agent/package/age/keys.ts';
import { odt } from '../support/cli.ts';

let dir: string;
let base: string[];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'odt-import-flags-'));
  await mkdir(join(dir, 'nas', 'tr-20261101-aaaaaa'), { recursive: true });
  await writeFile(join(dir, 'nas', 'tr-20261101-aaaaaa', 'transfer.json'), '{}');
  await writeFile(join(dir, 'identity.txt'), `${generateIdentity().identity}\n`);
  base = [
    'import',
    ...['--nas', join(dir, 'nas'), '--transfer', 'tr-20261101-aaaaaa'],
    ...['--identity', join(dir, 'identity.txt'), '--state-dir', join(dir, 'state')],
    ...['--vcenter', 'https://127.0.0.1:1', '--username', 'u', '--insecure'],
  ];
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

  it('warns that the signer is taken from the NAS without --agent-cert, and not with it', async () => {
    const without = await odt(base, { ODT_VCENTER_PASSWORD: 'x' });
    await writeFile(join(dir, 'agent.crt.pem'), '-----BEGIN CERTIFICATE-----\n');
    const pinned = await odt([...base, '--agent-cert', join(dir, 'agent.crt.pem')], {
      ODT_VCENTER_PASSWORD: 'x',
    });

    // Both go on to vCenter (unreachable here): the warning does not stop the import.
    expect(without.err).toMatch(/^odt: warning: no --agent-cert: .* re-signed by anyone would pass/);
    expect(without.err).toContain('cannot reach 127.0.0.1:1');
    expect(pinned.err).not.toContain('warning');
    expect(pinned.err).toContain('cannot reach 127.0.0.1:1');
  });
});

describe('--thumbprint', () => {
  it('is refused with a plain http vCenter URL, which has no certificate to pin', async () => {
    const args = base
      .map((a) => (a === 'https://127.0.0.1:1' ? 'http://127.0.0.1:1' : a))
      .filter((a) => a !== '--insecure');
    const r = await odt(
      [...args, '--agent-cert', join(dir, 'agent.crt.pem'), '--thumbprint', `${'AB:'.repeat(31)}AB`],
      {
        ODT_VCENTER_PASSWORD: 'x',
      },
    );

    expect(r.code).not.toBe(0);
    expect(r.err).toContain('--thumbprint pins a TLS certificate, and http://127.0.0.1:1 is plain http');
    expect(r.err).not.toContain('cannot reach');
  });
});
