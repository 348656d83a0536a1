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
  it('sandbox says honestly what it can and cannot do yet, and exits 0', async () => {
    const { io, text } = capture();
    expect(await main(['sandbox'], io)).toBe(0);
    expect(text.out).toContain('Not built yet');
    expect(text.out).toContain('cannot run a transfer yet');
  });

  it('rejects an unknown command with a non-zero exit and says so', async () => {
    const { io, text } = capture();
    expect(await main(['frobnicate'], io)).not.toBe(0);
    expect(text.err).toContain("unknown command 'frobnicate'");
  });
});
