import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { main } from '../../cli/main.ts';

function capture() {
  const out = new PassThrough();
  const err = new PassThrough();
  const text = { out: '', err: '' };
  out.on('data', (c) => (text.out += String(c)));
  err.on('data', (c) => (text.err += String(c)));
  return { io: { out, err }, text };
}

describe('odt', () => {
  it('lists its commands in --help', async () => {
    const { io, text } = capture();
    expect(await main(['--help'], io)).toBe(0);
    for (const c of [
      'sandbox',
      'serve',
      'transfer',
      'agent',
      'node',
      'inventory',
      'export',
      'verify',
      'import',
    ]) {
      expect(text.out).toMatch(new RegExp(`\\n  ${c}\\b`));
    }
  });

  it('rejects an unknown command with a non-zero exit and says so', async () => {
    const { io, text } = capture();
    expect(await main(['frobnicate'], io)).not.toBe(0);
    expect(text.err).toContain("unknown command 'frobnicate'");
  });
});
