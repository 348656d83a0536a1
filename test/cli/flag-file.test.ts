// Files named by flags (--identity, --agent-cert) fail with the flag, the path and what the file
// should be, not with a bare errno message.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityFileHelp, readFlagFile } from '../../cli/flag-file.ts';
import { main } from '../../cli/main.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'odt-flag-file-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('readFlagFile', () => {
  it('names the flag, the path and what to pass for a missing file or a folder', async () => {
    const missing = join(dir, 'identity.txt');
    await expect(readFlagFile('--identity', missing, identityFileHelp)).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      message: `--identity ${missing}: no such file; pass the ODT node's age identity file (\`odt node init --dir <dir>\` wrote <dir>/identity.txt).`,
    });
    await expect(readFlagFile('--identity', dir, identityFileHelp)).rejects.toThrow(
      `--identity ${dir}: a folder, not a file;`,
    );
  });

  it('is what odt verify and odt import say of a wrong --identity or --agent-cert', async () => {
    const run = async (args: string[]) => {
      const err = new PassThrough();
      let text = '';
      err.on('data', (c) => (text += String(c)));
      const code = await main(args, { out: new PassThrough(), err });
      return { code, text };
    };
    const nas = ['--nas', dir, '--transfer', 'tr-20261101-aaaaaa'];

    const verify = await run(['verify', ...nas, '--agent-cert', join(dir, 'nope.pem')]);
    expect(verify.code).not.toBe(0);
    expect(verify.text).toContain(
      `--agent-cert ${join(dir, 'nope.pem')}: no such file; pass the exporting agent's certificate`,
    );

    const saved = process.env.ODT_VCENTER_PASSWORD;
    process.env.ODT_VCENTER_PASSWORD = 'secret';
    try {
      const vc = ['--vcenter', 'https://127.0.0.1:1', '--username', 'u', '--insecure'];
      const imp = await run(['import', ...nas, '--identity', dir, '--agent-cert', join(dir, 'a.pem'), ...vc]);
      expect(imp.code).not.toBe(0);
      expect(imp.text).toContain(`--identity ${dir}: a folder, not a file`);
    } finally {
      if (saved === undefined) delete process.env.ODT_VCENTER_PASSWORD;
      else process.env.ODT_VCENTER_PASSWORD = saved;
    }
  });
});
