import { join } from 'node:path';
import { agentFiles, initAgentIdentity } from '../../agent/identity/agent-identity.ts';

/**
 * The ODT node's certificate that an export agent pins (`odt agent run --node-cert`, issue #18):
 * the node's agent identity is made in `nodeAgentDir` before either agent starts (the node's
 * `odt agent run --dir` then keeps it), and the path of its certificate is returned.
 */
export async function nodeCertificate(nodeAgentDir: string): Promise<string> {
  await initAgentIdentity(nodeAgentDir, { commonName: 'cloud-odt-node' });
  return join(nodeAgentDir, agentFiles.cert);
}
