import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type AgentIdentity, initAgentIdentity } from '../../../agent/identity/agent-identity.ts';
import {
  destroyTransferKey,
  makeTransferKey,
  signStatement,
  transferKeyPath,
  trustedRecipient,
  verifyWipeStatement,
} from '../../../agent/identity/transfer-key.ts';
import { exportRole } from '../../../agent/runtime/roles.ts';
import type { RoleWork } from '../../../agent/runtime/run-agent.ts';
import type { Transfer } from '../../../core/model/transfer.ts';
import { recipientStatementSchema, statementOf } from '../../../core/model/transfer-key.ts';
import { silentLogger } from '../../../core/ports/logger.ts';
import type { TaskRecord } from '../../../core/ports/task-queue.ts';
import { nasErase } from '../../../shared/agent-api.ts';
import { runCli, runCliOk } from '../package/age/age-cli.ts';

// Issue #18: a key per transfer, made and signed by the ODT node, checked by the export agent
// against the node certificate it pinned, and destroyed by the wipe.

const transfer = { id: 'tr-key-1', site: 'acme', providerSite: 'cloud' };
let node: AgentIdentity;
let stranger: AgentIdentity;
let stateDir: string;

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'odt-transfer-key-'));
  [node, stranger] = await Promise.all([
    initAgentIdentity(join(dir, 'node'), { commonName: 'cloud-odt-node' }).then((r) => r.identity),
    initAgentIdentity(join(dir, 'stranger'), { commonName: 'control-plane-attacker' }).then(
      (r) => r.identity,
    ),
  ]);
  stateDir = join(dir, 'state');
}, 60_000);

const make = (id = transfer.id) =>
  makeTransferKey({ stateDir, transfer: { ...transfer, id }, node: { identity: node, agentId: 'node-1' } });

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return 'none';
};

describe('the key per transfer', () => {
  it('is made once, 0600 in a 0700 folder, and its recipient signed by the node is trusted with the node pinned', async () => {
    const first = await make();
    expect(first.created).toBe(true);
    expect((await stat(first.path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(stateDir, 'transfer-keys'))).mode & 0o777).toBe(0o700);
    const again = await make();
    expect(again.created).toBe(false);
    expect(again.statement.recipient).toBe(first.statement.recipient);
    expect(trustedRecipient(first.signed, node.certPem, transfer)).toMatchObject({
      transferId: transfer.id,
      recipient: first.statement.recipient,
      node: 'node-1',
      nodeCertSha256: node.certSha256,
    });
  });

  it('refuses an unsigned recipient, one signed by another key, a tampered one, and one of another transfer', async () => {
    const { signed, statement } = await make();
    expect(codeOf(() => trustedRecipient(undefined, node.certPem, transfer))).toBe('RECIPIENT_UNSIGNED');
    // Whoever controls the control plane signs with a key of its own: not the pinned node's.
    const forged = signStatement(stranger.keyPem, statement);
    expect(codeOf(() => trustedRecipient(forged, node.certPem, transfer))).toBe('RECIPIENT_UNTRUSTED');
    expect(() => trustedRecipient(forged, node.certPem, transfer)).toThrow(
      /not signed by the pinned ODT node/,
    );
    // The node's signature over another recipient.
    const swapped = {
      ...signed,
      payload: Buffer.from(
        JSON.stringify({
          ...statement,
          recipient: 'age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj',
        }),
      ).toString('base64'),
    };
    expect(codeOf(() => trustedRecipient(swapped, node.certPem, transfer))).toBe('RECIPIENT_UNTRUSTED');
    // Genuine, but for another transfer: an older transfer's key is not reused.
    const other = await make('tr-key-2');
    expect(codeOf(() => trustedRecipient(other.signed, node.certPem, transfer))).toBe('RECIPIENT_UNTRUSTED');
    expect(() => trustedRecipient(other.signed, node.certPem, transfer)).toThrow(
      /signed this recipient for transfer tr-key-2/,
    );
  });

  it('the export agent refuses before it asks vCenter anything (RECIPIENT_UNSIGNED, RECIPIENT_UNTRUSTED)', async () => {
    const { statement } = await make();
    // vCenter on a port nothing listens on: reaching it would fail with ECONNREFUSED instead.
    const role = exportRole({
      vcenter: { url: 'https://127.0.0.1:1', username: 'u', password: 'p', trust: { kind: 'insecure' } },
      nas: stateDir,
      nodeCertPem: node.certPem,
      dir: stateDir,
    });
    const task = {
      id: `${transfer.id}-export-1`,
      kind: 'export',
      itemIds: ['item-1'],
    } as unknown as TaskRecord;
    const work = (key?: ReturnType<typeof signStatement>): RoleWork => ({
      task,
      transfer: { ...transfer, phase: 'exporting', items: [], ...(key ? { key } : {}) },
      signal: new AbortController().signal,
      onProgress: () => {},
      log: silentLogger,
    });
    await expect(role.run(work())).rejects.toMatchObject({ code: 'RECIPIENT_UNSIGNED' });
    await expect(role.run(work(signStatement(stranger.keyPem, statement)))).rejects.toMatchObject({
      code: 'RECIPIENT_UNTRUSTED',
    });
  });

  it('the wipe destroys it: the age CLI decrypts with it before, and with nothing the node holds after', async () => {
    const { signed, statement, path } = await make();
    const sealed = await runCliOk('age', ['-r', statement.recipient], Buffer.from('the NAS'));
    expect((await runCliOk('age', ['-d', '-i', path], sealed)).toString()).toBe('the NAS');
    const copy = `${path}.before-wipe`;
    await writeFile(copy, await readFile(path));
    const wiped = await destroyTransferKey({
      stateDir,
      transfer: {
        ...transfer,
        key: signed,
        phase: 'wiped',
        nasErase: { by: 'bob', at: '2026-12-08T00:00:00.000Z' },
      },
      node: { identity: node, agentId: 'node-1' },
    });
    await expect(stat(transferKeyPath(stateDir, transfer.id))).rejects.toMatchObject({ code: 'ENOENT' });
    const opened = await runCli('age', ['-d', '-i', path], sealed);
    expect(opened.code).not.toBe(0);
    // The copy taken before is the control: the file held the key, and only it opened the NAS.
    expect((await runCliOk('age', ['-d', '-i', copy], sealed)).toString()).toBe('the NAS');
    expect(verifyWipeStatement(wiped.signed, node.certPem)).toMatchObject({
      transferId: transfer.id,
      keyFingerprint: statement.keyFingerprint,
      nasEraseConfirmedBy: 'bob',
      nasEraseConfirmedAt: '2026-12-08T00:00:00.000Z',
      node: 'node-1',
    });
    expect(() => verifyWipeStatement(wiped.signed, stranger.certPem)).toThrow(/does not verify/);
    // A rerun (the node crashed before it reported) signs again; nothing is left to remove.
    const again = await destroyTransferKey({
      stateDir,
      transfer: { ...transfer, key: signed, phase: 'cancelled' },
      node: { identity: node, agentId: 'node-1' },
    });
    expect(statementOf(recipientStatementSchema, signed, 'k').keyFingerprint).toBe(
      again.statement.keyFingerprint,
    );
    expect(again.statement.nasEraseConfirmedBy).toMatch(/^nobody: the transfer ended cancelled/);
  });

  it("another node's key is not destroyed here (TRANSFER_KEY_MISSING)", async () => {
    const { signed } = await make('tr-key-3');
    await expect(
      destroyTransferKey({
        stateDir,
        transfer: { ...transfer, id: 'tr-key-3', key: signed, phase: 'wiped' },
        node: { identity: stranger, agentId: 'node-2' },
      }),
    ).rejects.toMatchObject({ code: 'TRANSFER_KEY_MISSING' });
    expect((await stat(transferKeyPath(stateDir, 'tr-key-3'))).isFile()).toBe(true);
  });
});

describe('who confirmed the NAS erase, as the agent API tells the node', () => {
  const wiped = (actor: string) =>
    ({
      history: [
        { at: '2026-12-08T00:00:00.000Z', actor: 'alice', phase: 'requested' },
        { at: '2026-12-08T01:00:00.000Z', actor, phase: 'wiped', note: 'x' },
        { at: '2026-12-08T01:00:01.000Z', actor: 'node-1', phase: 'wiped', note: 'key destroyed: …' },
      ],
    }) as unknown as Transfer;

  it('is the person who moved it to wiped; nobody when the workflow closed it unconfirmed', () => {
    expect(nasErase(wiped('bob'))).toEqual({ nasErase: { by: 'bob', at: '2026-12-08T01:00:00.000Z' } });
    expect(nasErase(wiped('workflow'))).toEqual({});
  });
});
