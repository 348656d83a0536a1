import type { AgentIdentity } from '../../agent/identity/agent-identity.ts';
import { keyFingerprint, signStatement } from '../../agent/identity/transfer-key.ts';
import { generateIdentity } from '../../agent/package/age/keys.ts';
import type { TransferService } from '../../core/index.ts';
import type { RecipientStatement, SignedStatement, WipeStatement } from '../../core/model/transfer-key.ts';
import { until } from './until.ts';

/**
 * The ODT node's key tasks (issue #18) done in process, for tests that drive the workflow with
 * fake agents through the service layer: it answers `make-key` with a recipient statement and
 * `destroy-key` with a wipe statement. The service stores them without checking the signature
 * (the export agent and a reader of the wipe statement do: agent/identity/transfer-key.ts), so
 * this fake does not sign; the real node is tested in test/agent/identity and the end-to-end tests.
 */
const unsigned = (statement: RecipientStatement | WipeStatement): SignedStatement => ({
  payload: Buffer.from(JSON.stringify(statement)).toString('base64'),
  signature: Buffer.from('not signed: a fake node').toString('base64'),
});

/** The statement a node would sign for a key task of transfer `t` (unsigned here). */
export function statementFor(
  kind: string,
  t: {
    id: string;
    site: string;
    providerSite: string;
    key?: SignedStatement;
    history: readonly { phase: string; actor: string }[];
  },
  agent: string,
  signer?: AgentIdentity,
): SignedStatement {
  const seal = (statement: RecipientStatement | WipeStatement) =>
    signer ? signStatement(signer.keyPem, statement) : unsigned(statement);
  const now = new Date().toISOString();
  if (kind === 'make-key') {
    const { recipient } = generateIdentity();
    return seal({
      type: 'sneakernet-transfer-recipient/1',
      transferId: t.id,
      site: t.site,
      providerSite: t.providerSite,
      recipient,
      keyFingerprint: keyFingerprint(recipient),
      node: agent,
      nodeCertSha256: signer?.certSha256 ?? 'FAKE',
      createdAt: now,
    });
  }
  const made = JSON.parse(Buffer.from(t.key!.payload, 'base64').toString('utf8')) as RecipientStatement;
  const erased = t.history.findLast((h) => h.phase === 'wiped');
  return seal({
    type: 'sneakernet-key-wipe/1',
    transferId: t.id,
    keyFingerprint: made.keyFingerprint,
    recipient: made.recipient,
    destroyedAt: now,
    nasEraseConfirmedBy: erased?.actor ?? 'nobody',
    node: agent,
    nodeCertSha256: signer?.certSha256 ?? 'FAKE',
  });
}

/** Answers one open key task of `site`; returns whether there was one. */
export async function answerKeyTask(
  service: TransferService,
  site: string,
  agent = 'fake-node',
): Promise<boolean> {
  const task = (await service.openTasks(site)).find((t) => t.kind === 'make-key' || t.kind === 'destroy-key');
  if (!task) return false;
  await service.claimTask(task.id, site, agent);
  const t = await service.get(task.transferId);
  await service.taskComplete(task.id, agent, [], statementFor(task.kind, t, agent));
  return true;
}

/**
 * Waits until transfer `id` has its key: answers its `make-key` task at the provider site, unless
 * a real node there took it first (then waits for that node's answer).
 */
export async function nodeMakesKey(service: TransferService, id: string, ms = 5000): Promise<void> {
  const t = await service.get(id);
  await until(
    async () => (await service.get(id)).key !== undefined || (await answerKeyTask(service, t.providerSite)),
    `the make-key task of ${id}`,
    ms,
    10,
  );
}

/**
 * A fake node answering the key tasks of `site` in the background, every 10 ms, until `stop()`:
 * for tests where the workflow reaches them at times the test does not follow step by step.
 */
export function fakeNode(service: TransferService, site: string): { stop(): Promise<void> } {
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      await answerKeyTask(service, site).catch(() => false);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/**
 * The same over the admin API's task routes (local/control-api.ts), for tests and benches that
 * drive `odt serve` from outside: answers one open key task of `site`; returns whether there was one.
 */
export async function answerKeyTaskOverApi(
  api: <T>(method: string, path: string, body?: unknown) => Promise<T>,
  site: string,
  transfer: {
    id: string;
    site: string;
    providerSite: string;
    key?: SignedStatement;
    history: readonly { phase: string; actor: string }[];
  },
  agent = 'fake-node',
  /** Signs as this node would (an export agent that pins its certificate then trusts the key). */
  signer?: AgentIdentity,
): Promise<boolean> {
  const tasks = await api<{ id: string; kind: string; transferId: string }[]>('GET', `/tasks?site=${site}`);
  const task = tasks.find(
    (t) => (t.kind === 'make-key' || t.kind === 'destroy-key') && t.transferId === transfer.id,
  );
  if (!task) return false;
  await api('POST', `/tasks/${task.id}/claim`, { site, agent });
  await api('POST', `/tasks/${task.id}/complete`, {
    agent,
    statement: statementFor(task.kind, transfer, agent, signer),
  });
  return true;
}
