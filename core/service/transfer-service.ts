import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../errors.ts';
import {
  approve,
  createTransfer,
  failedItems,
  outcome,
  record,
  reject,
  transition,
  updateItem,
} from '../model/lifecycle.ts';
import { onboardingShortfall } from '../model/onboarding.ts';
import { mayAsRequester, type PersonAction, refusal } from '../model/permissions.ts';
import {
  type ItemState,
  isCancellable,
  itemStates,
  itemTransitions,
  type TransferPhase,
} from '../model/phases.ts';
import type { ExportCapture, Item, PlacedNames, Transfer, TransferRequest } from '../model/transfer.ts';
import {
  recipientStatementSchema,
  type SignedStatement,
  statementOf,
  wipeNotePrefix,
  wipeStatementSchema,
} from '../model/transfer-key.ts';
import { type Approvers, ApproversUnavailableError } from '../ports/approvers.ts';
import type { ChatNotifier } from '../ports/chat.ts';
import type { Clock } from '../ports/clock.ts';
import type { TokenStore, TransferFilter, TransferStore } from '../ports/store.ts';
import type { ItemOutcome, TaskKind, TaskProgress, TaskQueue, TaskRecord } from '../ports/task-queue.ts';
import { type WorkflowEngine, type WorkflowWait, workflowWaits } from '../ports/workflow.ts';

export interface TransferServiceDeps {
  readonly transfers: TransferStore;
  readonly tokens: TokenStore;
  readonly tasks: TaskQueue;
  readonly workflow: WorkflowEngine;
  readonly chat: ChatNotifier;
  readonly clock: Clock;
  /**
   * Who may approve (Slack user ids and user groups, or CLI user names); asked at each decision, so
   * a directory behind it (a Slack user group) may change between two clicks.
   */
  readonly approvers: Approvers;
  readonly newId: () => string;
  /** Agents must heartbeat at least this often (the definition's HeartbeatSeconds). */
  readonly heartbeatSeconds?: number;
}

/** Events a person reports on the shipping of the NAS. */
export const shippingEvents = [
  'appliance-sent',
  'appliance-connected',
  'shipped',
  'received',
  'wiped',
] as const;
export type ShippingEvent = (typeof shippingEvents)[number];

/** Order of the main path, to tell whether a wait is already behind the transfer. */
const progressOrder: Partial<Record<TransferPhase, number>> = {
  requested: 0,
  approved: 1,
  'appliance-sent': 2,
  'appliance-connected': 3,
  exporting: 4,
  exported: 5,
  shipped: 6,
  received: 7,
  importing: 8,
  onboarding: 9,
  completed: 10,
  'completed-with-errors': 10,
  wiped: 11,
};
const reached = (t: Transfer, phase: TransferPhase): boolean =>
  (progressOrder[t.phase] ?? -1) >= (progressOrder[phase] ?? 99);

/** The item states in order along the data path (every state but `failed`). */
const itemPath: readonly ItemState[] = itemStates.filter((s) => s !== 'failed');

/**
 * The one service layer under the admin CLI, the Slack bot, the agent API and the workflow's
 * functions. Every change is a conditional write; workflow callbacks are completed only after the
 * change is stored, and a wait entered after the change completes itself (no lost wake-ups).
 */
export class TransferService {
  constructor(private readonly deps: TransferServiceDeps) {}

  // ---- people ---------------------------------------------------------------------------

  async request(request: TransferRequest): Promise<Transfer> {
    const transfer = createTransfer(request, this.deps.newId(), this.deps.clock.now());
    await this.deps.transfers.create(transfer);
    await this.deps.workflow.start(transfer.id);
    await this.deps.chat.transferChanged(transfer);
    return transfer;
  }

  /** Only an approver, never on their own request (core/model/permissions.ts). */
  async approve(id: string, actor: string): Promise<Transfer> {
    await this.permit(id, 'approve', actor);
    // Permitted: `actor` is an approver now; the lifecycle's own check sees them as one.
    const deciders = new Set([actor]);
    const t = await this.mutate(id, (t) => {
      this.explainDecided(t, actor);
      return approve(t, actor, deciders, this.deps.clock.now());
    });
    await this.completeWait(t, 'approval', { decision: 'approved' });
    return t;
  }

  /** Only an approver, never on their own request; with a reason the requester can act on. */
  async reject(id: string, actor: string, reason: string): Promise<Transfer> {
    await this.permit(id, 'reject', actor);
    const deciders = new Set([actor]);
    const t = await this.mutate(id, (t) => {
      this.explainDecided(t, actor);
      return reject(t, actor, deciders, reason, this.deps.clock.now());
    });
    await this.completeWait(t, 'approval', { decision: 'rejected' });
    return t;
  }

  /**
   * A shipping step: sent, received and mounted, erased by an approver; connected and shipped back
   * by the requester or an approver.
   */
  async event(
    id: string,
    event: ShippingEvent,
    actor: string,
    shipping?: { carrier: string; tracking: string },
  ): Promise<Transfer> {
    await this.permit(id, event, actor);
    const now = this.deps.clock.now();
    if (event === 'shipped' && !shipping) {
      throw new ValidationError('The shipped event', [
        { path: 'tracking', message: 'give the carrier and the tracking number' },
      ]);
    }
    const t = await this.mutate(id, (t) => {
      if (event === 'wiped') {
        const done = transition(t, 'wiped', { actor, at: now, note: 'NAS erase confirmed' });
        return { ...done, decision: undefined };
      }
      const next = transition(t, event, {
        actor,
        at: now,
        ...(shipping ? { note: `${shipping.carrier} ${shipping.tracking}` } : {}),
      });
      return shipping ? { ...next, shipping } : next;
    });
    // Shipped answers two waits (the export decision, then the shipping step) for one new state:
    // chat hears of it once.
    if (event === 'shipped') await this.completeWait(t, 'export-decision', { decision: 'ship' }, false);
    if (event === 'wiped') await this.completeWait(t, 'wipe', { decision: 'wipe' });
    else await this.completeWait(t, event, {});
    return t;
  }

  /**
   * "Retry the failed items": export them again before shipping, or import them again after. By
   * the requester or an approver.
   */
  async retry(id: string, actor: string): Promise<Transfer> {
    const current = await this.permit(id, 'retry', actor);
    const afterReceipt = current.history.some((h) => h.phase === 'received');
    const failed = failedItems(current);
    if (failed.length === 0) throw new ForbiddenError(`Transfer ${id} has no failed items to retry.`);
    const wait: WorkflowWait = afterReceipt ? 'wipe' : 'export-decision';
    const t = await this.mutate(id, (t) => {
      // One retry per round: a second click (another Slack container, the CLI) is refused with
      // who asked, atomically, since this runs inside the conditional write.
      if (t.decision?.value === 'retry') {
        const asked = t.history.findLast((h) => h.note?.startsWith('retry '));
        throw new ForbiddenError(
          `A retry of the failed items of ${id} was already asked for${asked ? ` by ${asked.actor} at ${asked.at}` : ''}; it starts when the agent takes the task.`,
        );
      }
      return {
        ...record(t, { actor, at: this.deps.clock.now(), note: `retry ${failed.length} failed item(s)` }),
        decision: { wait, value: 'retry' },
      };
    });
    await this.completeWait(t, wait, { decision: 'retry' });
    return t;
  }

  /** By the requester or an approver, at any wait before the import starts. */
  async cancel(id: string, actor: string, reason = 'cancelled'): Promise<Transfer> {
    await this.permit(id, 'cancel', actor);
    const t = await this.mutate(id, (t) => {
      if (!isCancellable(t.phase)) {
        throw new ForbiddenError(`Transfer ${id} is '${t.phase}' and can no longer be cancelled.`);
      }
      return transition(t, 'cancelled', { actor, at: this.deps.clock.now(), note: reason });
    });
    // Cancel ends whatever the workflow waits for (a cancelled transfer has no wipe decision).
    for (const wait of workflowWaits.filter((w) => w !== 'wipe' && w !== 'destroy-key')) {
      const token = await this.deps.tokens.takeToken(id, wait);
      if (token) await this.deps.workflow.sendTaskFailure(token, 'TransferCancelled', `${actor}: ${reason}`);
    }
    return t;
  }

  /**
   * Transfer `id` when `actor` may take `action` on it, else the refusal (NotAllowedError,
   * OwnRequestError): for what an adapter does before the action itself (opening its form) or
   * instead of one (`view`, showing a transfer). Throws ApproversUnavailableError when the approvers
   * would have to be asked and cannot be read.
   */
  authorize(id: string, action: PersonAction, actor: string): Promise<Transfer> {
    return this.permit(id, action, actor);
  }

  /**
   * The transfers `actor` may see: every one for an approver (`all`), their own for anyone else.
   * An approvers list that cannot be read shows them their own, with the reason in
   * `approversUnreadable`.
   */
  async listFor(
    actor: string,
    filter?: TransferFilter,
  ): Promise<{ transfers: readonly Transfer[]; all: boolean; approversUnreadable?: string }> {
    let approversUnreadable: string | undefined;
    const all = await this.deps.approvers.has(actor).catch((error: unknown) => {
      if (!(error instanceof ApproversUnavailableError)) throw error;
      approversUnreadable = error.message;
      return false;
    });
    const transfers = await this.deps.transfers.list(filter);
    return {
      transfers: all ? transfers : transfers.filter((t) => t.requester === actor),
      all,
      ...(approversUnreadable ? { approversUnreadable } : {}),
    };
  }

  /**
   * Whether `actor` is an approver now. Throws ApproversUnavailableError when the approvers cannot
   * be read.
   */
  isApprover(actor: string): Promise<boolean> {
    return this.deps.approvers.has(actor);
  }

  async get(id: string): Promise<Transfer> {
    const t = await this.deps.transfers.get(id);
    if (!t) throw new NotFoundError('Transfer', id);
    return t;
  }

  list(filter?: TransferFilter): Promise<readonly Transfer[]> {
    return this.deps.transfers.list(filter);
  }

  // ---- the workflow's functions ------------------------------------------------------------

  /** A callback wait was entered: keep its token, or complete it at once if its event already happened. */
  async onWait(id: string, wait: WorkflowWait, token: string): Promise<void> {
    await this.deps.tokens.putToken(id, wait, token);
    const t = await this.get(id);
    const result = t.phase === 'cancelled' ? 'cancelled' : this.waitResult(t, wait);
    if (result === undefined) return;
    const mine = await this.deps.tokens.takeToken(id, wait);
    if (!mine) return;
    if (result === 'cancelled')
      await this.deps.workflow.sendTaskFailure(mine, 'TransferCancelled', 'the transfer was cancelled');
    else await this.deps.workflow.sendTaskSuccess(mine, result);
  }

  /** The workflow asks for agent work: queue a task for the right site (once per round). */
  async onAgentTask(id: string, kind: TaskKind, token: string): Promise<void> {
    const now = this.deps.clock.now();
    if (kind === 'make-key' || kind === 'destroy-key') return this.onKeyTask(id, kind, token, now);
    const t = await this.mutate(id, (t) => {
      if (t.phase === 'cancelled') return t;
      const working: TransferPhase = kind === 'export' ? 'exporting' : 'importing';
      let next = t.phase === working ? t : transition(t, working, { actor: 'workflow', at: now });
      for (const item of next.items) {
        const s = item.result.state;
        if (kind === 'export' && (s === 'pending' || s === 'failed'))
          next = updateItem(next, item.id, { state: 'exporting' }, now);
      }
      return { ...next, decision: undefined };
    });
    if (t.phase === 'cancelled') {
      await this.deps.workflow.sendTaskFailure(token, 'TransferCancelled', 'the transfer was cancelled');
      return;
    }
    const taskId = roundTaskId(t, kind);
    const itemIds = t.items
      .filter((i) => (kind === 'export' ? i.result.state === 'exporting' : isImportable(i)))
      .map((i) => i.id);
    await this.deps.tokens.putToken(id, kind, token);
    const existing = await this.deps.tasks.get(taskId);
    if (!existing) {
      // A concurrent entry (a resumed runner racing a retry) may have queued it: that is fine.
      await this.enqueueOnce(
        {
          id: taskId,
          kind,
          site: kind === 'export' ? t.site : t.providerSite,
          transferId: id,
          itemIds,
          heartbeatSeconds: this.deps.heartbeatSeconds ?? 600,
        },
        now,
      );
    }
    await this.deps.chat.transferChanged(t);
  }

  /** The workflow's plain steps, by action name; each is idempotent (it may run again after a restart). */
  async onStep(id: string, action: string): Promise<Record<string, unknown>> {
    const now = this.deps.clock.now();
    const stamp = { actor: 'workflow', at: now };
    switch (action) {
      case 'validate': {
        await this.get(id);
        return { ok: true };
      }
      case 'expire': {
        const t = await this.mutate(id, (t) =>
          t.phase === 'requested' ? transition(t, 'expired', { ...stamp, note: 'no decision in time' }) : t,
        );
        await this.deps.chat.transferChanged(t);
        return { phase: t.phase };
      }
      case 'export-outcome': {
        // The custody log names the export agent that wrote the NAS (issue #18).
        const by = await this.roundHolder(id, 'export');
        const t = await this.mutate(id, (t) => {
          if (t.phase !== 'exporting') return t;
          const failed = t.items.filter((i) => i.result.state === 'failed').length;
          return transition(t, failed === t.items.length ? 'failed' : 'exported', { ...stamp, actor: by });
        });
        await this.deps.chat.transferChanged(t);
        return { allOk: t.items.every((i) => i.result.state === 'exported'), phase: t.phase };
      }
      case 'export-failed':
      case 'import-failed': {
        const kind: TaskKind = action === 'export-failed' ? 'export' : 'import';
        const working = kind === 'export' ? 'exporting' : 'importing';
        const why = await this.taskFailure(id, kind, now);
        const t = await this.mutate(id, (t) => {
          if (t.phase !== working) return t;
          let next = t;
          // Every item the task did not finish fails with its reason, so that "retry the failed
          // items" takes them again once the cause is fixed (an import refused as a whole left
          // them `exported`, with nothing to retry).
          for (const item of t.items) {
            if (why.itemIds && !why.itemIds.includes(item.id)) continue;
            if (kind === 'export' ? item.result.state === 'exporting' : isUnimported(item))
              next = updateItem(
                next,
                item.id,
                { state: 'failed', reason: why.reason, ...(why.code ? { code: why.code } : {}) },
                now,
              );
          }
          return transition(next, 'failed', stamp);
        });
        await this.deps.chat.transferChanged(t);
        return { phase: t.phase };
      }
      case 'import-outcome': {
        // ...and the ODT node that verified the NAS and imported it.
        const by = await this.roundHolder(id, 'import');
        const t = await this.mutate(id, (t) => {
          if (t.phase !== 'importing') return t;
          const end = outcome(t);
          return end === 'failed'
            ? transition(t, 'failed', stamp)
            : transition(transition(t, 'onboarding', { ...stamp, actor: by }), end, stamp);
        });
        await this.deps.chat.transferChanged(t);
        return { phase: t.phase };
      }
      case 'report': {
        await this.deps.chat.report(await this.get(id));
        return {};
      }
      case 'wipe': {
        const t = await this.mutate(id, (t) =>
          t.phase === 'wiped'
            ? t
            : {
                ...transition(t, 'wiped', { ...stamp, note: 'no NAS erase confirmed in time; closed' }),
                decision: undefined,
              },
        );
        await this.deps.chat.transferChanged(t);
        return { phase: t.phase };
      }
      case 'key-failed': {
        // No node made the transfer's key: nothing can be exported safely, so nothing is.
        const why = await this.keyTaskFailure(id, 'make-key', now);
        const t = await this.mutate(id, (t) =>
          isCancellable(t.phase)
            ? transition(t, 'cancelled', { ...stamp, note: `no key for this transfer: ${why}` })
            : t,
        );
        await this.deps.chat.transferChanged(t);
        return { phase: t.phase };
      }
      case 'key-not-destroyed': {
        const why = await this.keyTaskFailure(id, 'destroy-key', now);
        const t = await this.mutate(id, (t) =>
          record(t, {
            ...stamp,
            note: `the ODT node did not confirm that it destroyed the transfer's key: ${why}; destroy <state-dir>/transfer-keys/${id}.txt on the node by hand`,
          }),
        );
        await this.deps.chat.transferChanged(t);
        return { phase: t.phase };
      }
      case 'cancel': {
        const t = await this.mutate(id, (t) =>
          t.phase === 'cancelled' || !isCancellable(t.phase) ? t : transition(t, 'cancelled', stamp),
        );
        return { phase: t.phase };
      }
      case 'timed-out': {
        const t = await this.mutate(id, (t) =>
          isCancellable(t.phase)
            ? transition(t, 'cancelled', { ...stamp, note: 'timed out waiting for the next step' })
            : t,
        );
        await this.deps.chat.transferChanged(t);
        return { phase: t.phase };
      }
      default:
        throw new ValidationError('The workflow step', [
          { path: 'action', message: `unknown action '${action}'` },
        ]);
    }
  }

  // ---- agents ------------------------------------------------------------------------------

  /** Tasks an agent of `site` may claim now. */
  openTasks(site: string): Promise<readonly TaskRecord[]> {
    return this.deps.tasks.listOpen(site, this.deps.clock.now());
  }

  claimTask(taskId: string, site: string, agentId: string): Promise<TaskRecord> {
    return this.deps.tasks.claim(taskId, site, agentId, this.deps.clock.now());
  }

  async taskHeartbeat(taskId: string, agentId: string, progress: readonly TaskProgress[]): Promise<void> {
    await this.deps.tasks.heartbeat(taskId, agentId, progress, this.deps.clock.now());
    const task = (await this.deps.tasks.get(taskId))!;
    const token = await this.deps.tokens.peekToken(task.transferId, task.kind);
    if (token) await this.deps.workflow.sendTaskHeartbeat(token);
    const t = await this.deps.transfers.get(task.transferId);
    if (t) await this.deps.chat.progress(t, progress);
  }

  /**
   * Ends a task with its per-item outcomes. A `make-key` or `destroy-key` task (the ODT node's)
   * covers no items and ends with the node's signed statement instead; its signature is checked
   * by whoever relies on it (the export agent, a reader of the wipe statement), not here.
   */
  async taskComplete(
    taskId: string,
    agentId: string,
    outcomes: readonly ItemOutcome[],
    statement?: SignedStatement,
  ): Promise<void> {
    const pending = await this.deps.tasks.get(taskId);
    if (pending && (pending.kind === 'make-key' || pending.kind === 'destroy-key')) {
      return this.keyTaskComplete(pending, agentId, statement);
    }
    await this.deps.tasks.complete(taskId, agentId, outcomes, this.deps.clock.now());
    const task = (await this.deps.tasks.get(taskId))!;
    const now = this.deps.clock.now();
    const t = await this.mutate(task.transferId, (t) => {
      let next = t;
      for (const o of outcomes) {
        const item = next.items.find((i) => i.id === o.itemId);
        if (!item || !task.itemIds.includes(o.itemId)) continue;
        if (!o.ok) {
          next = updateItem(
            next,
            item.id,
            {
              state: 'failed',
              reason: o.reason ?? 'failed',
              ...(o.code ? { code: o.code } : {}),
              ...(o.names ? { names: o.names } : {}),
            },
            now,
          );
          continue;
        }
        const target: ItemState =
          task.kind === 'export' ? 'exported' : ((o as { state?: ItemState }).state ?? 'imported');
        next = advanceItem(next, item, target, o.bytes, now, o.names, o.capture);
        // An import that stopped short of what the item asked (a VDC, power-on) is not a success,
        // whatever the node says: the item fails with why, and "retry" finishes it (issue #19).
        const short = task.kind === 'import' ? onboardingShortfall(item.target, target) : undefined;
        if (short)
          next = updateItem(next, item.id, { state: 'failed', reason: short, code: 'NOT_ONBOARDED' }, now);
      }
      return next;
    });
    const token = await this.deps.tokens.takeToken(task.transferId, task.kind);
    if (token)
      await this.deps.workflow.sendTaskSuccess(token, {
        outcomes: outcomes.map((o) => ({ itemId: o.itemId, ok: o.ok })),
      });
    await this.deps.chat.transferChanged(t);
  }

  async taskFail(taskId: string, agentId: string, code: string, reason: string): Promise<void> {
    await this.deps.tasks.fail(taskId, agentId, code, reason, this.deps.clock.now());
    const task = (await this.deps.tasks.get(taskId))!;
    const token = await this.deps.tokens.takeToken(task.transferId, task.kind);
    if (token) await this.deps.workflow.sendTaskFailure(token, code, reason);
  }

  // ---- internals ---------------------------------------------------------------------------

  /**
   * The ODT node's key tasks (issue #18): queued once per transfer for the provider site. Done
   * already (the key is signed, or its destruction recorded; a resumed runner enters the state
   * again): the wait ends at once. A transfer without a key of its own has nothing to destroy.
   */
  private async onKeyTask(
    id: string,
    kind: 'make-key' | 'destroy-key',
    token: string,
    now: Date,
  ): Promise<void> {
    await this.deps.tokens.putToken(id, kind, token);
    // Read once the token is kept: a node that answers from now on finds it (no lost wake-up).
    const t = await this.get(id);
    const cancelled = kind === 'make-key' && t.phase === 'cancelled';
    const done = kind === 'make-key' ? t.key !== undefined : !t.key || keyDestroyed(t);
    if (cancelled || done) {
      const mine = await this.deps.tokens.takeToken(id, kind);
      if (!mine) return;
      if (cancelled)
        await this.deps.workflow.sendTaskFailure(mine, 'TransferCancelled', 'the transfer was cancelled');
      else await this.deps.workflow.sendTaskSuccess(mine, {});
      return;
    }
    await this.enqueueOnce(this.keyTask(t, kind), now);
  }

  /** The ODT node's key task of transfer `t`: one per kind, at its provider site, covering no items. */
  private keyTask(t: Transfer, kind: 'make-key' | 'destroy-key'): Parameters<TaskQueue['enqueue']>[0] {
    return {
      id: `${t.id}-${kind}`,
      kind,
      site: t.providerSite,
      transferId: t.id,
      itemIds: [],
      heartbeatSeconds: this.deps.heartbeatSeconds ?? 600,
    };
  }

  /** Stores the node's signed recipient, or records its signed wipe statement in the history. */
  private async keyTaskComplete(
    task: TaskRecord,
    agentId: string,
    statement: SignedStatement | undefined,
  ): Promise<void> {
    const id = task.transferId;
    if (!statement) {
      throw new ValidationError(`The result of task ${task.id}`, [
        { path: 'statement', message: `a ${task.kind} task ends with the node's signed statement` },
      ]);
    }
    const current = await this.get(id);
    if (task.kind === 'make-key') {
      const s = statementOf(recipientStatementSchema, statement, "The node's recipient statement");
      if (s.transferId !== id || s.site !== current.site || s.providerSite !== current.providerSite) {
        throw new ValidationError("The node's recipient statement", [
          {
            path: 'transferId',
            message: `is for transfer ${s.transferId} (${s.site} → ${s.providerSite}), not ${id} (${current.site} → ${current.providerSite})`,
          },
        ]);
      }
    } else {
      const s = statementOf(wipeStatementSchema, statement, "The node's wipe statement");
      const made = current.key && statementOf(recipientStatementSchema, current.key, 'The transfer key');
      if (s.transferId !== id || s.keyFingerprint !== made?.keyFingerprint) {
        throw new ValidationError("The node's wipe statement", [
          {
            path: 'keyFingerprint',
            message: `names key ${s.keyFingerprint} of transfer ${s.transferId}, not ${made?.keyFingerprint ?? 'none'} of ${id}`,
          },
        ]);
      }
    }
    const now = this.deps.clock.now();
    await this.deps.tasks.complete(task.id, agentId, [], now);
    const t = await this.mutate(id, (t) => {
      if (task.kind === 'make-key') {
        // The first signed key stands: the export may already have used it.
        // Kept on the transfer, not as a history entry: the custody log records what happens to
        // the NAS and its data; the wipe statement at the end names the key.
        return t.key ? t : { ...t, key: statement };
      }
      if (keyDestroyed(t)) return t;
      const s = statementOf(wipeStatementSchema, statement, "The node's wipe statement");
      return record(t, {
        actor: agentId,
        at: now,
        note: `${wipeNotePrefix}: ${s.keyFingerprint} at ${s.destroyedAt} by node ${s.node}; NAS erase confirmed by ${s.nasEraseConfirmedBy}; signed statement ${statement.payload}.${statement.signature}`,
      });
    });
    const token = await this.deps.tokens.takeToken(id, task.kind);
    if (token) await this.deps.workflow.sendTaskSuccess(token, {});
    if (task.kind === 'destroy-key') await this.deps.chat.transferChanged(t);
    // A key that arrives once the transfer has ended (the node answered as it was cancelled, after
    // the workflow found no key to destroy) is destroyed at once, not left on the node.
    else if ((t.phase === 'cancelled' || t.phase === 'wiped') && !keyDestroyed(t)) {
      await this.enqueueOnce(this.keyTask(t, 'destroy-key'), now);
    }
  }

  /**
   * The agent that held the current round's task of `kind` (the export agent, or the ODT node):
   * who acted, for the custody log; 'workflow' when no task of this round was held.
   */
  private async roundHolder(id: string, kind: 'export' | 'import'): Promise<string> {
    return (await this.deps.tasks.get(roundTaskId(await this.get(id), kind)))?.holder ?? 'workflow';
  }

  /**
   * Why the current round's task of `kind` ended without a result: the agent's own code and reason
   * when it reported the failure, else that it went silent. A task still open or held (a heartbeat
   * or overall timeout) is cancelled, so that a late agent cannot finish it beside a retry.
   */
  private async taskFailure(
    id: string,
    kind: 'export' | 'import',
    now: Date,
  ): Promise<{ reason: string; code?: string; itemIds?: readonly string[] }> {
    const t = await this.get(id);
    const task = await this.deps.tasks.get(roundTaskId(t, kind));
    if (!task) return { reason: `the ${kind} task failed or timed out` };
    if (task.error) {
      return {
        reason: `the ${kind} task failed: ${task.error.reason}`,
        code: task.error.code,
        itemIds: task.itemIds,
      };
    }
    const silent = `the ${kind} task timed out: no result from the ${kind === 'export' ? 'export agent' : 'ODT node'} in time`;
    await this.deps.tasks.cancel(task.id, 'TIMED_OUT', silent, now);
    return { reason: silent, code: 'TIMED_OUT', itemIds: task.itemIds };
  }

  /** Why the node's key task ended without its statement; a task still open or held is withdrawn. */
  private async keyTaskFailure(id: string, kind: 'make-key' | 'destroy-key', now: Date): Promise<string> {
    const task = await this.deps.tasks.get(`${id}-${kind}`);
    if (!task) return `the ${kind} task was not queued`;
    if (task.error) return `${task.error.reason} [${task.error.code}]`;
    const silent = `no ODT node of site '${task.site}' answered the ${kind} task in time`;
    await this.deps.tasks.cancel(task.id, 'TIMED_OUT', silent, now);
    return silent;
  }

  private async enqueueOnce(task: Parameters<TaskQueue['enqueue']>[0], now: Date): Promise<void> {
    try {
      await this.deps.tasks.enqueue(task, now);
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
    }
  }

  private waitResult(t: Transfer, wait: WorkflowWait): Record<string, unknown> | undefined {
    switch (wait) {
      case 'approval':
        if (t.phase === 'rejected') return { decision: 'rejected' };
        return reached(t, 'approved') ? { decision: 'approved' } : undefined;
      case 'appliance-sent':
      case 'appliance-connected':
      case 'shipped':
      case 'received':
        return reached(t, wait) ? {} : undefined;
      case 'export-decision':
        if (t.decision?.wait === wait) return { decision: t.decision.value };
        return reached(t, 'shipped') ? { decision: 'ship' } : undefined;
      case 'wipe':
        if (t.decision?.wait === wait) return { decision: t.decision.value };
        return t.phase === 'wiped' ? { decision: 'wipe' } : undefined;
      default:
        return undefined;
    }
  }

  /** Answers the workflow's wait `wait` with `output` (if it waits), and tells chat unless `notify` is false. */
  private async completeWait(
    t: Transfer,
    wait: WorkflowWait,
    output: Record<string, unknown>,
    notify = true,
  ): Promise<void> {
    const token = await this.deps.tokens.takeToken(t.id, wait);
    if (token) await this.deps.workflow.sendTaskSuccess(token, output);
    if (notify) await this.deps.chat.transferChanged(t);
  }

  /**
   * Reads transfer `id` and throws the refusal when `actor` may not take `action` on it, before
   * anything changes. Who requested a transfer never changes, and whether someone is an approver
   * is asked now (a Slack user group may change between two clicks), as for a decision.
   */
  private async permit(id: string, action: PersonAction, actor: string): Promise<Transfer> {
    const t = await this.get(id);
    if (mayAsRequester(action, t, actor)) return t;
    const refused = refusal(action, t, { id: actor, isApprover: await this.deps.approvers.has(actor) });
    if (refused) throw refused;
    return t;
  }

  private explainDecided(t: Transfer, actor: string): void {
    if (t.phase !== 'requested' && t.approver && t.approver !== actor) {
      throw new ForbiddenError(
        `Transfer ${t.id} was already ${t.phase === 'rejected' ? 'rejected' : 'approved'} by ${t.approver}.`,
      );
    }
  }

  /** Read, change, conditional write; on a lost race, read again and re-decide (a few times). */
  private async mutate(id: string, change: (t: Transfer) => Transfer): Promise<Transfer> {
    for (let attempt = 0; ; attempt++) {
      const current = await this.get(id);
      const next = change(current);
      if (next === current) return current;
      try {
        return await this.deps.transfers.update(next);
      } catch (error) {
        if (!(error instanceof ConflictError) || attempt >= 4) throw error;
      }
    }
  }
}

/** Whether the node's signed statement that it destroyed the transfer's key is in the history. */
export const keyDestroyed = (t: Transfer): boolean =>
  t.history.some((h) => h.note?.startsWith(`${wipeNotePrefix}: `));

/**
 * The id of the current round's task of `kind`: one round per time the transfer entered
 * `exporting` (or `importing`), as onAgentTask queues it.
 */
const roundTaskId = (t: Transfer, kind: 'export' | 'import'): string =>
  `${t.id}-${kind}-${t.history.filter((h) => h.phase === (kind === 'export' ? 'exporting' : 'importing')).length}`;

/** Not yet imported: importable, or on its way (an import task that failed did not finish it). */
const isUnimported = (i: Item): boolean => isImportable(i) || i.result.state === 'importing';

/** Exported and not yet imported, or failed after it was exported (a retry imports it again). */
const isImportable = (i: Item): boolean =>
  i.result.state === 'exported' ||
  i.result.state === 'verified' ||
  (i.result.state === 'failed' && i.result.bytes > 0);

function advanceItem(
  t: Transfer,
  item: Item,
  target: ItemState,
  bytes: number | undefined,
  now: Date,
  names?: PlacedNames,
  capture?: ExportCapture,
): Transfer {
  let next = t;
  let state = item.result.state;
  if (state === 'failed') {
    next = updateItem(next, item.id, { state: target === 'exported' ? 'exporting' : 'verified' }, now);
    state = target === 'exported' ? 'exporting' : 'verified';
  }
  const from = itemPath.indexOf(state);
  const to = itemPath.indexOf(target);
  for (let i = from + 1; i <= to; i++) {
    const s = itemPath[i]!;
    if (!itemTransitions[state].includes(s)) break;
    next = updateItem(
      next,
      item.id,
      {
        state: s,
        ...(bytes !== undefined ? { bytes } : {}),
        ...(names ? { names } : {}),
        ...(capture ? { capture } : {}),
      },
      now,
    );
    state = s;
  }
  // Already there (a rerun): the names are still news.
  if (names && state === item.result.state) next = updateItem(next, item.id, { state, names }, now);
  return next;
}
