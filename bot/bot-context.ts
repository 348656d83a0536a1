/**
 * What the bot's listeners share: the service they are thin over, who approves, where approval
 * requests go, the logger. Built once by createBotApp (bot/app.ts) and passed to every module.
 */
import type { App } from '@slack/bolt';
import type { TransferService } from '../core/index.ts';
import type { Approvers } from '../core/ports/approvers.ts';
import type { MessageRefs } from './message-refs.ts';
import type { BotRegistry, RequestModalDeps } from './request-modal.ts';

/** The Slack Web API client a listener is handed. */
export type WebClient = App['client'];

/** The service calls the bot makes. */
export type BotService = Pick<
  TransferService,
  'request' | 'approve' | 'reject' | 'event' | 'cancel' | 'get' | 'list' | 'listFor' | 'retry' | 'authorize'
>;

export interface BotContext {
  readonly service: BotService;
  /**
   * The Approvers the service decides with: told of Slack's group changes, and asked who may enroll,
   * list or revoke agents. Who may act on a transfer the service decides (`authorize`, `listFor`).
   */
  readonly approvers: Approvers;
  /** Channel id where approval requests are posted. */
  readonly approversChannel: string;
  /** Where each transfer's thread (its approval request) is recorded, when the bot knows. */
  readonly messageRefs?: MessageRefs;
  /** Enrolled agents and their inventories; without it `/odt agent` says the bot lacks it. */
  readonly registry?: BotRegistry;
  /** The request modal's dependencies (bot/request-modal.ts). */
  readonly requestModal: RequestModalDeps;
  /** How long an enrollment code from `/odt agent enroll` is valid, in ms. */
  readonly enrollmentTtlMs: number;
  /** The agent API URL shown in the enrollment command line. */
  readonly agentApiUrl?: string;
  readonly logger: App['logger'];
  readonly now: () => Date;
}
