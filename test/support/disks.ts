import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { RunningSimulator } from '../peers/vsphere/simulator.ts';
import { run } from './cli.ts';

/** Decrypts `file` with the age CLI and the node identity under `work`; asserts it succeeded. */
export async function ageDecrypt(work: string, file: string): Promise<Buffer> {
  const r = await run('age', ['-d', '-i', join(work, 'node', 'identity.txt'), file]);
  expect(r.stderr, file).toBe('');
  expect(r.code, file).toBe(0);
  return r.stdout;
}

/**
 * Asserts that each disk of `vm` in the simulator, exported into the item folder `itemDir`,
 * decrypts with the age CLI (the node identity under `work`) to the simulator's own disk bytes,
 * and that the folder holds no other disk of `vm`. `vm` must have a disk (`disks` of them).
 */
export async function expectDisksDecrypt(
  sim: Pick<RunningSimulator, 'readInventory'>,
  work: string,
  itemDir: string,
  vm: string,
  disks?: number,
): Promise<void> {
  const source = (await sim.readInventory()).vms.find((v) => v.name === vm);
  expect(source, `${vm} in the simulator`).toBeDefined();
  if (disks !== undefined) expect(source!.disks).toHaveLength(disks);
  else expect(source!.disks.length, `${vm} has disks to check`).toBeGreaterThan(0);
  const names = source!.disks.map((_, i) => `${vm}-disk-${i}.vmdk.age`);
  const onNas = (await readdir(itemDir)).filter(
    (f) => f.startsWith(`${vm}-disk-`) && f.endsWith('.vmdk.age'),
  );
  expect(onNas.sort()).toEqual([...names].sort());
  for (const [i, disk] of source!.disks.entries()) {
    const plain = await ageDecrypt(work, join(itemDir, names[i]!));
    expect(plain.equals(await readFile(disk.path)), `disk ${i} decrypts to the source bytes`).toBe(true);
  }
}
