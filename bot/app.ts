/**
 * The Slack bot: a thin Bolt adapter over the same TransferService as the admin CLI. Every
 * decision (who may approve, four eyes, legal transitions, validation) is the service's; the bot
 * maps requests to service calls and errors to what the person sees. This file wires the
 * listeners; each command, button, modal and event has its own module.
 */
import { App, type AppOptions, type Receiver } from '@slack/bolt';
import type { AgentRegistry } from '../core/ports/agents.ts';
import type { Approvers } from '../core/ports/approvers.ts';
import { type Clock, systemClock } from '../core/ports/clock.ts';
import { registerApproveButton } from './actions/approve-button.ts';
import { registerRejectButton } from './actions/reject-button.ts';
import { registerShippedButton } from './actions/shipped-button.ts';
import { registerShippingStepButtons } from './actions/shipping-step-buttons.ts';
import { approversFromEntries } from './approvers-group.ts';
import type { BotContext, BotService } from './bot-context.ts';
import { registerChatListeners } from './chat-listeners.ts';
import { registerOdtCommand } from './commands/odt-command.ts';
import { registerErrorHandler } from './error-handler.ts';
import { registerApproversGroupEvents } from './events/approvers-group-events.ts';
import type { MessageRefs } from './message-refs.ts';
import { registerReplayGuard } from './replay-guard.ts';
import { type BotRegistry, registerRequestModal } from './request-modal.ts';
import { registerRejectSubmission } from './views/reject-submission.ts';
import { registerShippedSubmission } from './views/shipped-submission.ts';

export interface BotOptions {
  readonly service: BotService;
  readonly token: string;
  readonly signingSecret?: string;
  /**
   * Who may approve: the Approvers the service holds (it decides; the bot asks the same object
   * what to show and allow), or a plain list of user ids. A SlackApprovers with user groups is
   * told of Slack's `subteam_members_changed` / `subteam_updated` events. A plain list naming a
   * user group is refused (the service would not see the group's members).
   */
  readonly approvers: readonly string[] | Approvers;
  /** Channel id where approval requests are posted. */
  readonly approversChannel: string;
  /** Default: Bolt's HTTP receiver with `signingSecret` (Socket Mode passes its own receiver). */
  readonly receiver?: Receiver;
  readonly botId?: string;
  readonly botUserId?: string;
  /** Offline tests: false, so that the first request does not call auth.test. */
  readonly tokenVerificationEnabled?: boolean;
  readonly clientOptions?: AppOptions['clientOptions'];
  readonly logLevel?: AppOptions['logLevel'];
  /** Bolt's logger (bot/bolt-logger.ts over the process's logger). Default: Bolt's console logger. */
  readonly logger?: AppOptions['logger'];
  /** Where the Slack chat notifier keeps its message refs: the bot records each transfer's thread. */
  readonly messageRefs?: MessageRefs;
  /**
   * Enrolled agents and the inventories their sites reported: the request modal's sites and items,
   * and `/odt agent enroll`. Without it both say that the bot lacks the registry.
   */
  readonly registry?: BotRegistry;
  /** Link speed the request modal starts with, in Mbit/s (the requester changes it). Default 100. */
  readonly defaultLinkMbps?: number;
  /** Door-to-door days of shipping the NAS there and back, for the ship-or-send estimate. Default 5. */
  readonly shippingTurnaroundDays?: number;
  /** How long an enrollment code from `/odt agent enroll` is valid, in ms. Default 15 minutes. */
  readonly enrollmentTtlMs?: number;
  /** The agent API URL shown in the enrollment command line (e.g. serve.json's agentUrl). */
  readonly agentApiUrl?: string;
  /**
   * Where request ids (trigger_id, event_id) are remembered so that a replayed request acts once,
   * across restarts and Lambda containers: the agent registry's nonce table (SQLite or DynamoDB).
   * Without it, an in-memory set (one process).
   */
  readonly nonces?: Pick<AgentRegistry, 'useNonce'>;
  /** The bot's time: how long request ids are kept, and the listeners' `now`. Default the system clock. */
  readonly clock?: Clock;
}

/** The bot's Bolt app with every listener registered; start it with `app.start()`. */
export function createBotApp(options: BotOptions): App {
  const approvers: Approvers = Array.isArray(options.approvers)
    ? approversFromEntries(options.approvers as readonly string[], undefined)
    : (options.approvers as Approvers);
  const app = new App({
    token: options.token,
    ...(options.receiver ? { receiver: options.receiver } : { signingSecret: options.signingSecret }),
    ...(options.botId ? { botId: options.botId } : {}),
    ...(options.botUserId ? { botUserId: options.botUserId } : {}),
    ...(options.tokenVerificationEnabled !== undefined
      ? { tokenVerificationEnabled: options.tokenVerificationEnabled }
      : {}),
    ...(options.clientOptions ? { clientOptions: options.clientOptions } : {}),
    ...(options.logLevel ? { logLevel: options.logLevel } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    extendedErrorHandler: true,
  });
  const { service, approversChannel, messageRefs } = options;
  const clock = options.clock ?? systemClock;
  const ctx: BotContext = {
    service,
    approvers,
    approversChannel,
    ...(messageRefs ? { messageRefs } : {}),
    ...(options.registry ? { registry: options.registry } : {}),
    requestModal: {
      service,
      registry: options.registry,
      approversChannel,
      defaultLinkMbps: options.defaultLinkMbps ?? 100,
      turnaroundDays: options.shippingTurnaroundDays ?? 5,
      ...(messageRefs ? { refs: messageRefs } : {}),
    },
    enrollmentTtlMs: options.enrollmentTtlMs ?? 15 * 60_000,
    ...(options.agentApiUrl ? { agentApiUrl: options.agentApiUrl } : {}),
    logger: app.logger,
    now: () => clock.now(),
  };

  // First, before any listener: retries and replays are acknowledged and dropped.
  registerReplayGuard(app, options.nonces, clock);
  registerOdtCommand(app, ctx);
  registerRequestModal(app, ctx.requestModal);
  registerApproveButton(app, ctx);
  registerRejectButton(app, ctx);
  registerRejectSubmission(app, ctx);
  registerShippingStepButtons(app, ctx);
  registerShippedButton(app, ctx);
  registerShippedSubmission(app, ctx);
  registerApproversGroupEvents(app, approvers);
  // Live progress, reports, "Retry failed items" and App Home.
  registerChatListeners(app, {
    service,
    approversChannel,
    ...(messageRefs ? { refs: messageRefs } : {}),
  });
  registerErrorHandler(app);
  return app;
}
