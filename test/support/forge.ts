import { createHash, randomBytes } from 'node:crypto';
import { copyFile, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { signManifest } from '../../agent/package/transfer-manifest.ts';
import type { RunningSimulator } from '../peers/vsphere/simulator.ts';
import { odt, run } from './cli.ts';
import { segmentDigests } from './digests.ts';
import { connectTo } from './vsphere.ts';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

interface ForgedFile {
  path: string;
  name: string;
  role: string;
  size: number;
  sha256: string;
  encryptedSize: number;
  encryptedSegmentSha256: string[];
}

/**
 * Forges the transfer in `root` as anyone who can write the NAS could (issue #18): the first disk
 * of item-1 becomes other bytes encrypted to the node's public `recipient` with the `age` CLI, the
 * package's `.mf` is rewritten to agree (from the plaintext SHA-256s the manifest lists in clear),
 * and transfer.json names and is signed by a key nobody enrolled (made in `forgerDir`), whose
 * certificate replaces agent.crt.pem. Every hash and the signature check out against that
 * certificate: only pinning the enrolled agent's tells the forgery. Returns the forger's SHA-256.
 */
export async function forgeTransfer(root: string, recipient: string, forgerDir: string): Promise<string> {
  const made = await odt(['agent', 'init', '--dir', forgerDir]);
  if (made.code !== 0) throw new Error(`odt agent init failed: ${made.err}`);
  const forgerSha = /certificate SHA-256 ([0-9A-F]{64})/.exec(made.out)![1]!;
  const manifest = JSON.parse(await readFile(join(root, 'transfer.json'), 'utf8'));
  const seg = manifest.segmentSize as number;
  const files = manifest.items[0].files as ForgedFile[];
  const seal = async (plain: Buffer, f: ForgedFile) => {
    const enc = (await run('age', ['-r', recipient], { input: plain })).stdout;
    await writeFile(join(root, f.path), enc);
    f.size = plain.length;
    f.sha256 = sha256(plain);
    f.encryptedSize = enc.length;
    f.encryptedSegmentSha256 = segmentDigests(enc, seg);
  };
  const disk = files.find((f) => f.role === 'disk')!;
  await seal(randomBytes(Math.max(disk.size, 4096)), disk);
  const mf = files.find((f) => f.role === 'manifest')!;
  const mfText = files
    .filter((f) => f.role !== 'manifest')
    .map((f) => `SHA256(${f.name})= ${f.sha256}\n`)
    .join('');
  await seal(Buffer.from(mfText), mf);
  manifest.agent = { commonName: 'sneakernet-agent', certificateSha256: forgerSha };
  const bytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
  await writeFile(join(root, 'transfer.json'), bytes);
  await writeFile(
    join(root, 'transfer.json.sig'),
    signManifest(bytes, await readFile(join(forgerDir, 'agent.key.pem'), 'utf8')),
  );
  await copyFile(join(forgerDir, 'agent.crt.pem'), join(root, 'agent.crt.pem'));
  return forgerSha;
}

/** The names of the VMs a vCenter holds now, asked of it (a simulator's inventory file is from its start). */
export async function vmNames(sim: RunningSimulator): Promise<string[]> {
  const client = await connectTo(sim);
  try {
    const vms = await client.listByType(['VirtualMachine'], ['name']);
    return vms.map((v) => v.props.get('name')?.text ?? '').sort();
  } finally {
    await client.logout();
  }
}

/**
 * What an import leaves in a simulated provider vCenter: import leases asked for, VMs, and files
 * uploaded. A refused NAS must leave all three as they were.
 */
export async function vcenterTrace(
  sim: RunningSimulator,
): Promise<{ importLeases: number; vms: string[]; uploads: number }> {
  const leases = (await (await fetch(`http://${sim.host}:${sim.port}/_test/leases`)).json()) as {
    kind: string;
  }[];
  const uploads = await readdir(sim.uploadsDir, { recursive: true }).catch(() => []);
  return {
    importLeases: leases.filter((l) => l.kind === 'import').length,
    vms: await vmNames(sim),
    uploads: uploads.length,
  };
}
