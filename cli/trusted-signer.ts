import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentError } from '../agent/errors.ts';
import { certificateSha256 } from '../agent/identity/agent-identity.ts';
import { certificateFile } from '../agent/package/transfer-manifest.ts';
import { transferFolderProblem } from '../agent/package/verify.ts';
import { OdtError } from '../core/index.ts';
import { agentCertHelp, readFlagFile } from './flag-file.ts';
import type { Io } from './io.ts';

/** The flags that say whose signature a transfer must carry (`odt import`, `odt verify`). */
export interface SignerFlags {
  agentCert?: string;
  trustNasSigner?: boolean;
}

/**
 * Neither --agent-cert nor --trust-nas-signer: the transfer would be trusted on a certificate found
 * on the NAS, which anyone who can write the NAS can put there.
 */
export class SignerNotPinnedError extends AgentError<'SIGNER_NOT_PINNED'> {
  constructor(command: string) {
    super(
      'SIGNER_NOT_PINNED',
      `${command} needs the certificate of the export agent enrolled for this transfer: nothing found on the NAS is trusted (anyone who can write it can re-encrypt a disk to this node and sign with a key of their own). Pass --agent-cert <the enrolled agent's certificate> (agent.crt.pem in the export agent's --dir, the one the control plane enrolled); in a lab only, --trust-nas-signer takes the one on the NAS.`,
    );
    this.name = 'SignerNotPinnedError';
  }
}

export const signerOptionHelp = {
  agentCert: "the enrolled export agent's certificate (PEM): the signer must be this agent",
  trustNasSigner:
    'LABS ONLY: trust the signer certificate found on the NAS instead of --agent-cert (anyone who can write the NAS passes)',
} as const;

/**
 * The certificate the signature over transfer.json in `root` is checked against: --agent-cert; or,
 * with --trust-nas-signer (labs), the one on the NAS, after a warning on stderr naming its SHA-256.
 * Neither: SignerNotPinnedError, before anything else is read or asked.
 */
export async function signerCertificate(
  flags: SignerFlags,
  root: string,
  io: Io,
  command: string,
): Promise<{ certPem: string; pinned: boolean }> {
  if (flags.agentCert && flags.trustNasSigner) {
    throw new OdtError(
      'VALIDATION_FAILED',
      '--agent-cert and --trust-nas-signer contradict each other: keep --agent-cert (the enrolled agent) and drop --trust-nas-signer.',
    );
  }
  if (flags.agentCert) {
    return { certPem: await readFlagFile('--agent-cert', flags.agentCert, agentCertHelp), pinned: true };
  }
  if (!flags.trustNasSigner) throw new SignerNotPinnedError(command);
  const missing = await transferFolderProblem(root);
  if (missing) throw new OdtError('NOT_FOUND', missing);
  const path = join(root, certificateFile);
  let certPem: string;
  let sha: string;
  try {
    certPem = await readFile(path, 'utf8');
    sha = certificateSha256(certPem);
  } catch (error) {
    throw new OdtError(
      'VALIDATION_FAILED',
      `--trust-nas-signer: ${path} is missing or not a certificate (${(error as Error).message}); pass --agent-cert <the enrolled agent's certificate> instead.`,
      { cause: error },
    );
  }
  io.err.write(
    `odt: WARNING: --trust-nas-signer: the signer is whoever made ${path}, SHA-256 ${sha}. This certificate came with the NAS, so the check proves nothing about who exported it: anyone who can write the NAS can re-encrypt a disk to this node and sign. Labs only; before trusting the result, compare this SHA-256 with the enrolled export agent's (odt agent list), or pass --agent-cert.\n`,
  );
  return { certPem, pinned: false };
}
