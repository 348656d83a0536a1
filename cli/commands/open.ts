import { join } from 'node:path';
import type { Command } from 'commander';
import { parseIdentityFile } from '../../agent/package/age/keys.ts';
import { openOva } from '../../agent/package/open-ova.ts';
import { transferFolderProblem } from '../../agent/package/verify.ts';
import { idSchema, OdtError, parseOrThrow } from '../../core/index.ts';
import { identityFileHelp, readFlagFile } from '../flag-file.ts';
import type { Io } from '../io.ts';
import { ttyProgress } from '../progress.ts';
import { type SignerFlags, signerCertificate, signerOptionHelp } from '../trusted-signer.ts';

interface OpenFlags extends SignerFlags {
  nas: string;
  transfer: string;
  item: string;
  identity: string;
  site?: string;
  out: string;
}

/**
 * `odt open`: one item of a transfer, verified and decrypted, as a standard OVA (agent/package/
 * open-ova.ts), for another platform or to check a package by hand. Signer pinning as `odt verify`.
 */
export function registerOpen(program: Command, io: Io): void {
  program
    .command('open')
    .description('verify and decrypt one item of a transfer on the NAS into a standard OVA (ODT node)')
    .requiredOption('--nas <dir>', 'NAS mount point')
    .requiredOption('--transfer <id>', 'transfer id')
    .requiredOption('--item <id>', 'the item: its id in the package (item-1) or its name')
    .requiredOption('--identity <file>', "the ODT node's age identity file")
    .requiredOption('--out <file.ova>', 'the OVA to write (never overwritten)')
    .option('--agent-cert <file>', signerOptionHelp.agentCert)
    .option('--trust-nas-signer', signerOptionHelp.trustNasSigner)
    .option('--site <name>', 'the customer site the transfer is from: the signed manifest must name it')
    .action(async (o: OpenFlags) => {
      const transferId = parseOrThrow(idSchema, o.transfer, '--transfer');
      const site = o.site === undefined ? undefined : parseOrThrow(idSchema, o.site, '--site');
      const root = join(o.nas, transferId);
      const signer = await signerCertificate(o, root, io, 'odt open');
      const identities = parseIdentityFile(await readFlagFile('--identity', o.identity, identityFileHelp));
      const missing = await transferFolderProblem(root);
      if (missing) throw new OdtError('NOT_FOUND', `${missing} (--nas ${o.nas}, --transfer ${transferId})`);
      const tty = (io.out as NodeJS.WriteStream).isTTY === true;
      const bars = tty ? ttyProgress(io.out as NodeJS.WriteStream) : undefined;
      const r = await openOva({
        root,
        transferId,
        item: o.item,
        identities,
        agentCertPem: signer.certPem,
        ...(site ? { site } : {}),
        out: o.out,
        ...(bars
          ? {
              onPlan: (n: number) => bars.plan?.(n),
              onProgress: (p: Parameters<typeof bars.update>[0]) => bars.update(p),
            }
          : {}),
      });
      bars?.end();
      io.out.write(
        `${o.out}: ${r.item.id} (${r.item.name}) as an OVA, ${r.entries.length} files, ${r.bytes} bytes, every one checked against the signed manifest:\n${r.entries.map((e) => `  ${e.name} (${e.size} bytes)\n`).join('')}`,
      );
    });
}
