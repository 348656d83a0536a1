import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { signManifest } from '../../agent/package/transfer-manifest.ts';

/**
 * SHA-256 (hex) of each `size`-byte slice of `bytes`, the last shorter, one for no bytes: what
 * transfer.json /2 records of an encrypted file, worked out here with nothing but node:crypto, as
 * a reference independent of the code under test (segment-hash.mjs).
 */
export function segmentDigests(bytes: Uint8Array, size: number): string[] {
  const count = Math.max(1, Math.ceil(bytes.length / size));
  return Array.from({ length: count }, (_, i) =>
    createHash('sha256')
      .update(bytes.subarray(i * size, (i + 1) * size))
      .digest('hex'),
  );
}

/**
 * Makes the transfer at `root` one of `segmentSize`-byte segments: each file's digests worked out
 * again, transfer.json re-signed with the agent key at `agentKeyPath` (as the agent itself would
 * sign it). Returns the manifest as written.
 */
export async function resignWithSegments(
  root: string,
  agentKeyPath: string,
  segmentSize: number,
): Promise<{ items: { files: { path: string; role: string; encryptedSize: number; sha256: string }[] }[] }> {
  const m = JSON.parse(await readFile(join(root, 'transfer.json'), 'utf8'));
  m.segmentSize = segmentSize;
  for (const item of m.items) {
    for (const f of item.files) {
      f.encryptedSegmentSha256 = segmentDigests(await readFile(join(root, f.path)), segmentSize);
    }
  }
  const bytes = Buffer.from(`${JSON.stringify(m, null, 2)}\n`);
  await writeFile(join(root, 'transfer.json'), bytes);
  await writeFile(join(root, 'transfer.json.sig'), signManifest(bytes, await readFile(agentKeyPath, 'utf8')));
  return m;
}
