import type { TransferPhase } from '../model/phases.ts';
import type { Transfer } from '../model/transfer.ts';
import type { TaskQueue } from './task-queue.ts';

/** Which transfers `TransferStore.list` returns; every given field must match. */
export interface TransferFilter {
  /** Customer site (the export side). */
  readonly site?: string;
  /** Provider site (the ODT node's side). */
  readonly providerSite?: string;
  /** One phase, or any of several. */
  readonly phase?: TransferPhase | readonly TransferPhase[];
}

/**
 * Durable transfers. Every write is conditional on the version the caller read, so that each
 * transition happens exactly once even with concurrent writers (Slack double clicks, two engines).
 * Adapters: SQLite (embedded default) and DynamoDB; both pass one conformance suite.
 */
export interface TransferStore {
  get(id: string): Promise<Transfer | undefined>;
  /** Stores a new transfer as given (normally version 0); throws ConflictError if the id exists. */
  create(transfer: Transfer): Promise<void>;
  /**
   * Replaces the transfer if its stored version is `transfer.version`; stores it with version + 1
   * and returns that. Throws ConflictError when another writer came first, NotFoundError when
   * there is no such transfer.
   */
  update(transfer: Transfer): Promise<Transfer>;
  /** Matching transfers, oldest first (by `createdAt`, then id). */
  list(filter?: TransferFilter): Promise<readonly Transfer[]>;
}

/**
 * Callback tokens of waiting workflow tasks (`.waitForTaskToken`), keyed by transfer and the name
 * of the wait (e.g. `approval`, `export`). They live here, never in chat payloads.
 */
export interface TokenStore {
  /** Stores the token of a wait, replacing an older token of the same wait (a retried state). */
  putToken(transferId: string, wait: string, token: string): Promise<void>;
  /**
   * Reads and deletes the token in one atomic step: of concurrent callers exactly one gets it,
   * the others (and every later call) get undefined. Use it right before SendTaskSuccess/Failure.
   */
  takeToken(transferId: string, wait: string): Promise<string | undefined>;
  /** Reads the token without taking it (heartbeats, or showing what a transfer waits for). */
  peekToken(transferId: string, wait: string): Promise<string | undefined>;
}

/** Everything durable that the control plane keeps; each adapter provides all three. */
export interface Stores {
  readonly transfers: TransferStore;
  readonly tokens: TokenStore;
  readonly tasks: TaskQueue;
}
