import type { Transfer } from '../model/transfer.ts';

/**
 * Durable transfers. Every write is conditional on the version the caller read, so that each
 * transition happens exactly once even with concurrent writers (Slack double clicks, two engines).
 * Adapters: SQLite (embedded default) and DynamoDB; both pass one conformance suite.
 */
export interface TransferStore {
  get(id: string): Promise<Transfer | undefined>;
  /** Creates the transfer; throws ConflictError if the id exists. */
  create(transfer: Transfer): Promise<void>;
  /**
   * Replaces the transfer if its stored version is `transfer.version`; stores it with version + 1
   * and returns that. Throws ConflictError when another writer came first.
   */
  update(transfer: Transfer): Promise<Transfer>;
  list(filter?: { site?: string; phase?: string }): Promise<readonly Transfer[]>;
}

/** Callback tokens of waiting workflow tasks; they live here, never in chat payloads. */
export interface TokenStore {
  putToken(transferId: string, wait: string, token: string): Promise<void>;
  takeToken(transferId: string, wait: string): Promise<string | undefined>;
}
