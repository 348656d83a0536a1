import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { odt } from '../support/cli.ts';

// Issue #18: the export agent needs the ODT node's certificate, pinned on its own side; the
// recipient flag of before is refused with what to give instead. Both before any network call
// (the agent API's URL here answers nothing).
describe('odt agent run --role export: the node certificate', () => {
  const run = async (extra: string[]) => {
    const dir = await mkdtemp(join(tmpdir(), 'odt-node-cert-'));
    const args = [
      'agent',
      'run',
      '--role',
      'export',
      '--dir',
      join(dir, 'agent'),
      '--server',
      'http://127.0.0.1:1',
    ];
    const vc = ['--vcenter', 'https://127.0.0.1:1', '--username', 'u', '--nas', dir];
    return { dir, result: await odt([...args, ...vc, ...extra], { ODT_VCENTER_PASSWORD: 'p' }) };
  };

  it('is required, and --recipient is refused naming --node-cert (exit 2)', async () => {
    const none = (await run([])).result;
    expect(none.code).toBe(2);
    expect(none.err).toContain("node-cert: is required: the ODT node's certificate");
    const old = (await run(['--recipient', 'age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj']))
      .result;
    expect(old.code).toBe(2);
    expect(old.err).toContain('recipient: is no longer taken');
    expect(old.err).toContain('--node-cert');
  });

  it('must be a certificate: another file is refused naming the flag and the file (exit 2)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'odt-node-cert-'));
    const notCert = join(dir, 'identity.txt');
    await writeFile(notCert, 'AGE-SECRET-KEY-1QQQ\n');
    const { result } = await run(['--node-cert', notCert]);
    expect(result.code).toBe(2);
    expect(result.err).toContain(`--node-cert ${notCert} is not the ODT node's certificate`);
    expect(result.err).not.toContain('AGE-SECRET-KEY');
  });
});
