import { readFile } from 'node:fs/promises';
import { codeOf } from '../../core/errors.ts';
import { onboardingAsked } from '../../core/model/onboarding.ts';
import type { ItemTarget } from '../../core/model/transfer.ts';
import { recipientStatementSchema, statementOf } from '../../core/model/transfer-key.ts';
import type { AgentTransferView } from '../../core/ports/agents.ts';
import type { ItemOutcome } from '../../core/ports/task-queue.ts';
import { AgentError } from '../errors.ts';
import { exportTransfer } from '../export/export-transfer.ts';
import { importPlan } from '../file-progress.ts';
import { loadAgentIdentity } from '../identity/agent-identity.ts';
import {
  destroyTransferKey,
  makeTransferKey,
  readTransferIdentity,
  TransferKeyError,
  transferKeyPath,
  trustedRecipient,
} from '../identity/transfer-key.ts';
import { importTransfer } from '../import/import-transfer.ts';
import { describeNas, inspectNas } from '../nas/nas-check.ts';
import { parseIdentityFile } from '../package/age/keys.ts';
import { captureText, deltaSync } from '../package/transfer-manifest.ts';
import { VcdClient } from '../vcd/client.ts';
import { VimClient } from '../vsphere/client.ts';
import { readInventory } from '../vsphere/inventory.ts';
import type { PlacementInput } from '../vsphere/placement.ts';
import type { TlsTrust } from '../vsphere/wire/tls.ts';
import type { AgentRole, RoleResult, RoleWork } from './run-agent.ts';

/** vCenter (or vCloud Director) access: credentials stay on the agent's machine. */
export interface Endpoint {
  readonly url: string;
  readonly username: string;
  readonly password: string;
  readonly trust: TlsTrust;
}

export interface ExportRoleOptions {
  readonly vcenter: Endpoint;
  readonly nas: string;
  /**
   * The ODT node's certificate, pinned on this side (`odt agent run --node-cert`): each transfer's
   * recipient must be signed by it, so the control plane cannot choose the key (issue #18).
   */
  readonly nodeCertPem: string;
  /** The agent directory (its key signs the transfer manifest). */
  readonly dir: string;
  readonly parallel?: number;
  /** Accept a NAS folder without the marker of `odt nas init` (`--nas-plain-folder`: labs, tests). */
  readonly nasPlainFolder?: boolean;
  /** Refuse running VMs instead of exporting them live from a snapshot (`--cold-only`, issue #21). */
  readonly coldOnly?: boolean;
  /** Switch Changed Block Tracking on where it is off (`--enable-cbt`: it changes the customer's VM). */
  readonly enableChangeTracking?: boolean;
}

const reasonOf = (e: Error): Pick<ItemOutcome, 'reason' | 'code'> => {
  const code = codeOf(e);
  return { reason: e.message.slice(0, 2000), ...(code === undefined ? {} : { code }) };
};

/** Customer site: export the task's items into the encrypted, signed package on the NAS. */
export function exportRole(options: ExportRoleOptions): AgentRole {
  const connect = () =>
    VimClient.connect({
      url: options.vcenter.url,
      username: options.vcenter.username,
      password: options.vcenter.password,
      trust: options.vcenter.trust,
    });
  return {
    name: 'export',
    async run({ task, transfer, signal, onProgress, onPlan, log }: RoleWork): Promise<ItemOutcome[]> {
      if (task.kind !== 'export') {
        throw new AgentError(
          'EXPORT_FAILED',
          `an export agent does not do ${task.kind} tasks (task ${task.id})`,
        );
      }
      // Before vCenter is asked anything: an unsigned or foreign recipient ends the task here.
      const key = trustedRecipient(transfer.key, options.nodeCertPem, transfer);
      log.info(
        { recipient: key.recipient, keyFingerprint: key.keyFingerprint, node: key.node },
        "encrypting to the transfer's own key, signed by the pinned ODT node",
      );
      const agent = await loadAgentIdentity(options.dir);
      const client = await connect();
      try {
        // All items in the transfer's order, so the package's item ids are the transfer's; items
        // already complete on the NAS are kept as they are (a retry re-sends nothing complete).
        const result = await exportTransfer({
          client,
          nas: options.nas,
          transferId: transfer.id,
          items: transfer.items.map((i) => i.source),
          recipient: key.recipient,
          // Signed into transfer.json: the ODT node refuses it for a transfer of another site.
          site: transfer.site,
          agent,
          ...(options.parallel ? { parallel: options.parallel } : {}),
          ...(options.coldOnly ? { coldOnly: true } : {}),
          ...(options.enableChangeTracking ? { enableChangeTracking: true } : {}),
          // The NAS is checked (there, marked, writable, room) before any byte: a refusal fails the task.
          nasPlainFolder: options.nasPlainFolder ?? false,
          onWarning: (message) => log.warn({ nas: options.nas }, message),
          signal,
          onProgress,
          ...(onPlan ? { onPlan } : {}),
        });
        return task.itemIds.map((itemId): ItemOutcome => {
          const failure = result.failures.find((f) => f.itemId === itemId);
          if (failure) return { itemId, ok: false, ...reasonOf(failure.error) };
          const item = result.items.find((i) => i.id === itemId);
          if (!item) return { itemId, ok: false, reason: 'not exported (the export stopped before it)' };
          return {
            itemId,
            ok: true,
            bytes: item.files.reduce((n, f) => n + f.size, 0),
            // How it was read (live from a snapshot, or cold) and whether it can be delta-synced later.
            capture: { read: captureText(item.capture), deltaSync: deltaSync(item.capture).ready },
          };
        });
      } finally {
        await client.logout().catch(() => {});
      }
    },
    async inventory() {
      const client = await connect();
      try {
        return (await readInventory(client)).map(({ ref, ...rest }) => ({ ...rest, moref: ref.value }));
      } finally {
        await client.logout().catch(() => {});
      }
    },
  };
}

export interface ImportRoleOptions {
  readonly vcenter: Endpoint;
  readonly nas: string;
  /** The ODT node's long-term age identity file (packages made by hand, transfers without a key). */
  readonly identityFile: string;
  /** The node's state folder (import journal, and each transfer's own key: `transfer-keys/`). */
  readonly stateDir: string;
  /** The node's agent folder: its enrolled key signs each transfer's recipient and wipe statement. */
  readonly dir: string;
  readonly placement?: PlacementInput;
  /** vCloud Director: with it, each imported item is onboarded as its target in the request says. */
  readonly vcd?: Endpoint & {
    /** Org VDC network for items whose target names none. */
    readonly defaultNetwork?: string;
  };
  readonly parallel?: number;
}

/** Provider site (ODT node): verify, decrypt, import into vCenter, onboard into vCloud Director. */
export function importRole(options: ImportRoleOptions): AgentRole {
  return {
    name: 'import',
    async run(work: RoleWork): Promise<ItemOutcome[] | RoleResult> {
      if (work.task.kind === 'make-key' || work.task.kind === 'destroy-key') return keyTask(options, work);
      const { task, transfer, signal, onProgress, onPlan, log } = work;
      if (!options.vcd) {
        // Every item of a request names a VDC: without vCloud Director settings, this node can
        // put them in vCenter only; they end failed (VCD_NOT_CONFIGURED), to be retried (#19).
        const asked = transfer.items.filter((i) => task.itemIds.includes(i.id));
        log.warn(
          {
            items: asked.map((i) => ({ itemId: i.id, asked: onboardingAsked(i.target) })),
          },
          'this ODT node has no vCloud Director settings (--vcd): the items will be imported into vCenter only and end failed (VCD_NOT_CONFIGURED) until it is restarted with them and the failed items are retried',
        );
      }
      if (!transfer.exportAgent) {
        throw Object.assign(
          new Error(
            `no enrolled, unrevoked export agent of site '${transfer.site}' completed the export of ${transfer.id}; the package's signer cannot be pinned`,
          ),
          { code: 'SIGNER_UNKNOWN' },
        );
      }
      // Which NAS came back: its marker (odt nas init) names it in the node's log (#19).
      const nas = await inspectNas(options.nas).catch(() => undefined);
      log.info({ nasPath: options.nas, nas: nas ? describeNas(nas) : null }, 'reading the NAS');
      const identities = await importIdentities(options, transfer);
      const client = await VimClient.connect({
        url: options.vcenter.url,
        username: options.vcenter.username,
        password: options.vcenter.password,
        trust: options.vcenter.trust,
      });
      const vcd = options.vcd
        ? await VcdClient.connect({
            url: options.vcd.url,
            username: options.vcd.username,
            password: options.vcd.password,
            trust: options.vcd.trust,
          })
        : undefined;
      try {
        const targetOf = (itemId: string): ItemTarget => {
          const item = transfer.items.find((i) => i.id === itemId);
          if (!item) throw new Error(`item ${itemId} is not in transfer ${transfer.id}`);
          const network = item.target.network ?? options.vcd?.defaultNetwork;
          return { ...item.target, ...(network ? { network } : {}) };
        };
        const results = await importTransfer({
          client,
          nas: options.nas,
          transferId: transfer.id,
          identities,
          // The signer and the binding come from the control plane with the task, never the NAS.
          agentCertPem: transfer.exportAgent.certPem,
          site: transfer.site,
          stateDir: options.stateDir,
          ...(options.placement ? { placement: options.placement } : {}),
          ...(options.parallel ? { parallel: options.parallel } : {}),
          signal,
          onProgress,
          // The whole import's size, from the signed manifest once verified: the task progress log's total.
          ...(onPlan ? { onVerified: (manifest) => onPlan(importPlan(manifest.items)) } : {}),
          // An item imported by an earlier run moves nothing: its files count as kept.
          onItem: (r) => {
            if (r.skipped)
              for (const f of importPlan([r.item]))
                onProgress({
                  item: f.item,
                  file: f.file,
                  bytes: f.bytes,
                  total: f.bytes,
                  done: true,
                  skipped: true,
                });
          },
          // The check of the NAS, file by file (`<item>/<file>.age`), before anything reaches vCenter.
          onVerifyProgress: (p) =>
            onProgress({
              item: p.item,
              file: p.file,
              bytes: p.bytes,
              total: p.total,
              stage: 'verifying',
            }),
          // Always with the targets: without a vCD client, an item that asks for a VDC fails.
          vcd: { client: vcd, target: (item) => targetOf(item.id) },
        });
        return task.itemIds.map((itemId): ItemOutcome => {
          const r = results.find((x) => x.item.id === itemId);
          if (!r)
            return {
              itemId,
              ok: false,
              reason: 'not imported (missing from the package, or stopped before it)',
            };
          const bytes = r.item.files.reduce((n, f) => n + f.size, 0);
          // What its VMs are called in vCenter (and its vApp or template in vCloud Director): the
          // report shows them, so that two items of one name can be told apart.
          const names = r.record
            ? {
                names: {
                  vcenter: (r.record.members ?? [r.record]).map((m) => m.name),
                  ...(r.onboarded ? { vcd: r.onboarded.name } : {}),
                },
              }
            : {};
          if (!r.ok) {
            const e = r.error ?? new Error('failed');
            return {
              itemId,
              ok: false,
              bytes,
              ...reasonOf(e),
              reason: `${r.failedAt ?? 'import'}: ${e.message}`,
              ...names,
            };
          }
          const state = r.onboarded ? (r.onboarded.poweredOn ? 'powered-on' : 'onboarded') : 'imported';
          return { itemId, ok: true, bytes, state, ...names };
        });
      } finally {
        await client.logout().catch(() => {});
        await vcd?.logout().catch(() => {});
      }
    },
  };
}

/**
 * The ODT node's key tasks (issue #18): make the transfer's own identity and sign its recipient,
 * or destroy it and sign that it is gone.
 */
async function keyTask(options: ImportRoleOptions, { task, transfer, log }: RoleWork): Promise<RoleResult> {
  const node = { identity: await loadAgentIdentity(options.dir), agentId: task.holder ?? 'unknown' };
  if (task.kind === 'make-key') {
    const made = await makeTransferKey({ stateDir: options.stateDir, transfer, node });
    log.info(
      { path: made.path, recipient: made.statement.recipient, keyFingerprint: made.statement.keyFingerprint },
      made.created ? "made the transfer's own key" : "signed the transfer's key made before",
    );
    return { outcomes: [], statement: made.signed };
  }
  if (!transfer.key) return { outcomes: [] };
  const wiped = await destroyTransferKey({
    stateDir: options.stateDir,
    transfer: { ...transfer, key: transfer.key },
    node,
  });
  log.info(
    {
      keyFingerprint: wiped.statement.keyFingerprint,
      nasEraseConfirmedBy: wiped.statement.nasEraseConfirmedBy,
    },
    "destroyed the transfer's key",
  );
  return { outcomes: [], statement: wiped.signed };
}

/**
 * The identity an import decrypts with: the transfer's own when it has one (then only that one, so
 * a package encrypted to any other key is refused), else the node's long-term identity.
 */
async function importIdentities(options: ImportRoleOptions, transfer: AgentTransferView): Promise<string[]> {
  if (transfer.key) {
    const own = await readTransferIdentity(options.stateDir, transfer.id);
    if (own === undefined) {
      const made = statementOf(recipientStatementSchema, transfer.key, 'The transfer key');
      throw new TransferKeyError(
        'TRANSFER_KEY_MISSING',
        `this ODT node holds no key for transfer ${transfer.id} in ${transferKeyPath(options.stateDir, transfer.id)}: it was made by node ${made.node} (certificate SHA-256 ${made.nodeCertSha256}) with --node-dir of that node; run the import there, or with its state folder`,
      );
    }
    return [own];
  }
  return parseIdentityFile(await readFile(options.identityFile, 'utf8'));
}
