/**
 * The Slack bot: a thin Bolt adapter over the same TransferService as the admin CLI. Every
 * decision (who may approve, four eyes, legal transitions, validation) is the service's; the bot
 * maps requests to service calls and errors to what the person sees.
 */
import { App, type AppOptions, type Receiver } from '@slack/bolt';
import type { ShippingEvent, Transfer, TransferService } from '../core/index.ts';
import type { AgentRegistry } from '../core/ports/agents.ts';
import type { Approvers } from '../core/ports/approvers.ts';
import { agentsUsage, listAgentsReply, revokeAgentReply } from './agents.ts';
import {
  approversFromEntries,
  SlackApprovers,
  type SubteamMembersChangedEvent,
  type SubteamUpdatedEvent,
} from './approvers-group.ts';
import {
  actions,
  approvalMessage,
  callbacks,
  esc,
  helpText,
  isSlackUser,
  listBlocks,
  type ModalRef,
  mention,
  plainText,
  rejectModal,
  section,
  shippedModal,
  shippingMessage,
  statusBlocks,
} from './blocks.ts';
import { answerClick, publishHome, registerChatListeners } from './chat-listeners.ts';
import { enrollReply } from './enroll.ts';
import type { MessageRefs } from './message-refs.ts';
import { type BotRegistry, openRequestModal, registerRequestModal } from './request-modal.ts';

type WebClient = App['client'];

/** The fields of a click on one of the bot's transfer buttons (a block_actions payload) it reads. */
interface TransferClick {
  readonly user: { id: string };
  readonly trigger_id: string;
  readonly channel?: { id: string };
  readonly message?: { ts: string };
  readonly view?: { type?: string };
}

/** A transfer button's click: the transfer id is the button's value. */
const clicked = (body: unknown, action: unknown): { id: string; b: TransferClick } => ({
  id: (action as { value: string }).value,
  b: body as TransferClick,
});

export type BotService = Pick<
  TransferService,
  'request' | 'approve' | 'reject' | 'event' | 'cancel' | 'get' | 'list' | 'retry'
>;

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
}

const shippedRefusal = (t: Transfer): string =>
  `Only ${mention(t.requester)} (who asked for \`${t.id}\`) or an approver may report that the NAS was shipped back; nothing changed.`;

interface CodedError {
  code?: string;
  message: string;
  issues?: readonly { path: string; message: string }[];
}
const coded = (e: unknown): CodedError => (e instanceof Error ? (e as CodedError) : { message: String(e) });

/** Slack signs a request for five minutes (Bolt refuses older ones); an id is kept that long. */
const replayWindowMs = 5 * 60_000;

/** In-memory request ids, for a bot without `nonces`: a replayed or retried request acts once. */
class Seen {
  private readonly seen = new Map<string, number>();
  constructor(private readonly ttlMs = 2 * replayWindowMs) {}
  firstTime(key: string): boolean {
    const now = Date.now();
    for (const [k, at] of this.seen) if (now - at > this.ttlMs) this.seen.delete(k);
    if (this.seen.has(key)) return false;
    this.seen.set(key, now);
    return true;
  }
}

type StateValues = Record<
  string,
  Record<string, { value?: string | null; selected_options?: { value: string }[] }>
>;
const field = (values: StateValues, block: string): string => (values[block]?.value?.value ?? '').trim();

export function createBotApp(options: BotOptions): App {
  const { service, approversChannel } = options;
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
    extendedErrorHandler: true,
  });
  const seen = new Seen();
  const firstTime = (key: string): Promise<boolean> | boolean =>
    options.nonces ? options.nonces.useNonce('slack', key, new Date(), replayWindowMs) : seen.firstTime(key);
  const requestDeps = {
    service,
    registry: options.registry,
    approversChannel,
    defaultLinkMbps: options.defaultLinkMbps ?? 100,
    turnaroundDays: options.shippingTurnaroundDays ?? 5,
    ...(options.messageRefs ? { refs: options.messageRefs } : {}),
  };

  /**
   * The approval request of transfer `id`: the clicked message, else (a click on the Home tab) the
   * one recorded when the request was posted, so that the channel never shows stale buttons.
   */
  const approvalRequest = async (
    id: string,
    b: { channel?: { id: string }; message?: { ts: string } },
  ): Promise<{ channel: string; ts?: string }> => {
    if (b.message) return { channel: b.channel?.id ?? approversChannel, ts: b.message.ts };
    const ref = await options.messageRefs?.get(id);
    return { channel: ref?.channel ?? approversChannel, ...(ref?.threadTs ? { ts: ref.threadTs } : {}) };
  };

  // Slack retries (X-Slack-Retry-Num) and replays of a request already handled are acknowledged
  // and dropped: the first delivery acted.
  app.use(async (args) => {
    const body = args.body as { trigger_id?: string; event_id?: string };
    const ack = (args as unknown as { ack?: () => Promise<void> }).ack;
    const id = body.trigger_id ?? body.event_id;
    const duplicate = (args.context.retryNum ?? 0) > 0 || (id !== undefined && !(await firstTime(id)));
    if (duplicate) {
      if (ack) await ack();
      return;
    }
    await args.next();
  });

  /**
   * A DM to a transfer's requester. A requester that is no Slack user (a transfer asked for with
   * the CLI) gets none; a failed DM is logged, never reported to the clicker as if their step failed.
   */
  const tell = async (client: WebClient, user: string, text: string) => {
    if (!isSlackUser(user)) return;
    await client.chat
      .postMessage({ channel: user, text, blocks: [section(text)] })
      .catch((error: unknown) => {
        app.logger.warn(`odt bot: could not tell ${user}: ${coded(error).message}`);
      });
  };

  /**
   * What a person sees for a coded service error about transfer `id`: user-supplied text escaped,
   * a missing transfer with the Slack command that lists them. Uncoded errors are rethrown.
   */
  const problem = (id: string, error: unknown): string => {
    const e = coded(error);
    if (e.code === undefined) throw error;
    if (e.code === 'NOT_FOUND')
      return `Transfer \`${esc(id)}\` does not exist; check the id (\`/odt list\` lists transfers, \`/odt status\` yours).`;
    return esc(e.message);
  };

  /**
   * Why transfer `t` no longer waits for a decision (cancelled, expired, or decided), or undefined
   * while it still waits.
   */
  const decided = (t: Transfer): string | undefined => {
    if (t.phase === 'cancelled') {
      const by = t.history.findLast((h) => h.phase === 'cancelled')?.actor;
      return `Transfer \`${t.id}\` was cancelled${by ? ` by ${mention(by)}` : ''}; nothing changed.`;
    }
    if (t.phase === 'expired')
      return `Transfer \`${t.id}\` expired: nobody approved or rejected it in time; nothing changed. The requester may ask again with \`/odt request\`.`;
    if (t.approver && t.phase !== 'requested') {
      const what = t.phase === 'rejected' ? 'rejected' : 'approved';
      return `Transfer \`${t.id}\` was already ${what} by ${mention(t.approver)}; nothing changed.`;
    }
    return undefined;
  };

  /** "already approved by …" when a decision exists, else the service's message. */
  async function explain(id: string, error: unknown): Promise<string> {
    const e = coded(error);
    if (e.code === 'FORBIDDEN' || e.code === 'ILLEGAL_TRANSITION') {
      const t = await service.get(id).catch(() => undefined);
      const why = t && decided(t);
      if (why) return why;
    }
    return problem(id, error);
  }

  /** Whether `user` may report a shipping step of `t`: approvers always, the requester for `party` steps. */
  const mayReport = async (t: Transfer, user: string, who: 'approver' | 'party'): Promise<boolean> =>
    (who === 'party' && t.requester === user) || (await approvers.has(user));

  // ---- /odt ---------------------------------------------------------------------------------
  app.command('/odt', async ({ command, ack, respond, client }) => {
    const [sub = 'help', ...rest] = command.text.trim().split(/\s+/).filter(Boolean);
    // One ack per request (a second one throws in Bolt's HTTP receiver and is dropped unseen in
    // Socket Mode): what is said after it goes to the command's response_url.
    let acked = false;
    const reply = async (text: string, blocks = [section(text)]) => {
      const message = { response_type: 'ephemeral' as const, text, blocks };
      if (acked) {
        await respond(message);
        return;
      }
      acked = true;
      await ack(message);
    };
    try {
      switch (sub.toLowerCase()) {
        case 'request':
          acked = true;
          await ack();
          await openRequestModal(client, command.trigger_id, requestDeps);
          return;
        case 'agent': {
          const verb = (rest[0] ?? '').toLowerCase();
          if (verb === 'list' || verb === 'revoke') {
            const deps = { registry: options.registry, approvers, now: () => new Date() };
            const answer =
              verb === 'list'
                ? await listAgentsReply(command.user_id, rest.slice(1), deps)
                : await revokeAgentReply(command.user_id, rest.slice(1), deps);
            await reply(answer.text, answer.blocks);
            if (answer.announce)
              await client.chat.postMessage({
                channel: approversChannel,
                text: answer.announce,
                blocks: [section(answer.announce)],
              });
            return;
          }
          if (verb !== 'enroll') {
            await reply(`Agents (approvers only): ${agentsUsage}.`);
            return;
          }
          const answer = await enrollReply(command.user_id, rest.slice(1), {
            registry: options.registry,
            approvers,
            ttlMs: options.enrollmentTtlMs ?? 15 * 60_000,
            agentApiUrl: options.agentApiUrl,
            now: () => new Date(),
          });
          await reply(answer.text, answer.blocks);
          return;
        }
        case 'status': {
          const id = rest[0];
          if (id) {
            const t = await service.get(id);
            // A transfer names a customer's VMs and sites: its requester and the approvers see it.
            if (t.requester !== command.user_id && !(await approvers.has(command.user_id))) {
              await reply(
                `:no_entry: Transfer \`${t.id}\` is not yours; only its requester and the approvers see it. \`/odt status\` lists your transfers.`,
              );
              return;
            }
            await reply(`Transfer ${t.id}: ${t.phase}`, statusBlocks(t));
          } else {
            const mine = (await service.list()).filter((t) => t.requester === command.user_id);
            await reply(`Your transfers: ${mine.length}`, listBlocks(mine, 'Your transfers'));
          }
          return;
        }
        case 'list': {
          // Approvers see every transfer; anyone else their own (others' name their VMs and sites).
          // An approvers group that cannot be read counts as "not an approver" here: the person
          // still sees their own transfers, and the reason is said with them.
          let unreadable: string | undefined;
          const isApprover = await approvers.has(command.user_id).catch((error: unknown) => {
            unreadable = (error as Error).message;
            return false;
          });
          const all = await service.list();
          if (!isApprover) {
            const mine = all.filter((t) => t.requester === command.user_id);
            const blocks = listBlocks(mine, 'Your transfers');
            await reply(
              `Your transfers: ${mine.length}`,
              unreadable
                ? [...blocks, section(`:warning: Only your own transfers: ${esc(unreadable)}`)]
                : blocks,
            );
            return;
          }
          await reply(`Transfers: ${all.length}`, listBlocks(all, 'Transfers'));
          return;
        }
        case 'cancel': {
          const id = rest[0];
          if (!id) {
            await reply('Which transfer? `/odt cancel <id>`');
            return;
          }
          const current = await service.get(id);
          if (current.requester !== command.user_id && !(await approvers.has(command.user_id))) {
            await reply(
              `:no_entry: Only ${mention(current.requester)} (who asked for \`${current.id}\`) or an approver may cancel it; nothing changed.`,
            );
            return;
          }
          const reason = rest.slice(1).join(' ') || 'cancelled in Slack';
          const t = await service.cancel(id, command.user_id, reason);
          await reply(`Transfer \`${t.id}\` is cancelled.`);
          // The approval request loses its buttons (when the bot knows where it is).
          const request = await options.messageRefs?.get(t.id);
          if (request?.threadTs && request.channel && current.phase === 'requested')
            await client.chat
              .update({ channel: request.channel, ts: request.threadTs, ...approvalMessage(t) })
              .catch((error: unknown) =>
                app.logger.warn(`odt bot: approval request of ${t.id}: ${coded(error).message}`),
              );
          if (t.requester !== command.user_id)
            await tell(
              client,
              t.requester,
              `Your transfer \`${t.id}\` was cancelled by ${mention(command.user_id)}: ${esc(reason)}`,
            );
          return;
        }
        case 'help':
          await reply(helpText);
          return;
        default:
          await reply(`I do not know \`${sub}\`.\n\n${helpText}`);
      }
    } catch (error) {
      await reply(`:warning: ${problem(rest[0] ?? '', error)}`);
    }
  });

  // ---- the request modal (bot/request-modal.ts) ------------------------------------------------
  registerRequestModal(app, requestDeps);

  // ---- approval -------------------------------------------------------------------------------
  app.action(actions.approve, async ({ ack, body, action, client }) => {
    await ack();
    const { id, b } = clicked(body, action);
    let t: Transfer;
    try {
      t = await service.approve(id, b.user.id);
    } catch (error) {
      await answerClick(client, b.channel?.id, b.user.id, await explain(id, error));
      return;
    }
    // Approved: a Slack error from here on goes to app.error, never to the approver as a refusal.
    const request = await approvalRequest(id, b);
    if (request.ts)
      await client.chat.update({ channel: request.channel, ts: request.ts, ...approvalMessage(t) });
    await client.chat.postMessage({
      channel: request.channel,
      ...(request.ts ? { thread_ts: request.ts } : {}),
      ...shippingMessage(t),
    });
    await tell(
      client,
      t.requester,
      `Your transfer \`${t.id}\` was approved by ${mention(b.user.id)}. Next, the NAS is sent to you; when it is connected at your site, press *NAS connected* on this app's Home tab.`,
    );
  });

  app.action(actions.reject, async ({ ack, body, action, client }) => {
    await ack();
    const { id, b } = clicked(body, action);
    const channel = b.channel?.id;
    let isApprover: boolean;
    let t: Transfer;
    try {
      isApprover = await approvers.has(b.user.id);
      t = await service.get(id);
    } catch (error) {
      await answerClick(client, channel, b.user.id, await explain(id, error));
      return;
    }
    if (!isApprover) {
      await answerClick(
        client,
        channel,
        b.user.id,
        `${mention(b.user.id)} is not an approver; only approvers may reject.`,
      );
      return;
    }
    if (t.phase !== 'requested') {
      const why =
        decided(t) ??
        `Transfer \`${t.id}\` is ${t.phase} and no longer waits for a decision; nothing changed.`;
      await answerClick(client, channel, b.user.id, why);
      return;
    }
    const request = await approvalRequest(id, b);
    const ref: ModalRef = {
      id,
      channel: request.channel,
      ...(request.ts ? { ts: request.ts } : {}),
      ...(b.view?.type === 'home' ? { home: true } : {}),
    };
    await client.views.open({ trigger_id: b.trigger_id, view: rejectModal(ref) as never });
  });

  app.view(callbacks.reject, async ({ ack, body, view, client }) => {
    const ref = JSON.parse(view.private_metadata) as ModalRef;
    const reason = field(view.state.values as StateValues, 'reason');
    let t: Transfer;
    try {
      t = await service.reject(ref.id, body.user.id, reason);
    } catch (error) {
      // A field's error is plain text in Slack: no mention markup there.
      await ack({ response_action: 'errors', errors: { reason: plainText(await explain(ref.id, error)) } });
      return;
    }
    await ack();
    if (ref.channel && ref.ts)
      await client.chat.update({ channel: ref.channel, ts: ref.ts, ...approvalMessage(t) });
    // Opened from the Home tab: the tab refreshed on the click, before the decision; again now.
    if (ref.home) await publishHome(client, { service, approvers }, body.user.id);
    await tell(
      client,
      t.requester,
      `Your transfer \`${t.id}\` was rejected by ${mention(body.user.id)}: ${esc(t.rejectReason ?? reason)}`,
    );
  });

  // ---- shipping steps -------------------------------------------------------------------------
  const steps: [string, ShippingEvent, 'approver' | 'party'][] = [
    [actions.applianceSent, 'appliance-sent', 'approver'],
    [actions.applianceConnected, 'appliance-connected', 'party'],
    [actions.received, 'received', 'approver'],
  ];
  for (const [actionId, event, who] of steps) {
    app.action(actionId, async ({ ack, body, action, client }) => {
      await ack();
      const { id, b } = clicked(body, action);
      const channel = b.channel?.id ?? approversChannel;
      let t: Transfer;
      try {
        const current = await service.get(id);
        if (!(await mayReport(current, b.user.id, who))) {
          await answerClick(
            client,
            b.channel?.id,
            b.user.id,
            `Only ${who === 'approver' ? 'an approver' : 'the requester or an approver'} may report this step.`,
          );
          return;
        }
        t = await service.event(id, event, b.user.id);
      } catch (error) {
        await answerClick(client, b.channel?.id, b.user.id, await explain(id, error));
        return;
      }
      if (b.message) await client.chat.update({ channel, ts: b.message.ts, ...shippingMessage(t) });
      // The customer's next step is theirs: say what it is and where the button is.
      if (event === 'appliance-sent')
        await tell(
          client,
          t.requester,
          `The NAS for your transfer \`${t.id}\` is on its way. When it is connected at your site, press *NAS connected* on this app's Home tab.`,
        );
    });
  }

  app.action(actions.shipped, async ({ ack, body, action, client }) => {
    await ack();
    const { id, b } = clicked(body, action);
    try {
      const t = await service.get(id);
      if (!(await mayReport(t, b.user.id, 'party'))) {
        await answerClick(client, b.channel?.id, b.user.id, shippedRefusal(t));
        return;
      }
    } catch (error) {
      await answerClick(client, b.channel?.id, b.user.id, await explain(id, error));
      return;
    }
    const ref: ModalRef = {
      id,
      ...(b.channel ? { channel: b.channel.id } : {}),
      ...(b.message ? { ts: b.message.ts } : {}),
      ...(b.view?.type === 'home' ? { home: true } : {}),
    };
    await client.views.open({ trigger_id: b.trigger_id, view: shippedModal(ref) as never });
  });

  app.view(callbacks.shipped, async ({ ack, body, view, client }) => {
    const ref = JSON.parse(view.private_metadata) as ModalRef;
    const values = view.state.values as StateValues;
    const shipping = { carrier: field(values, 'carrier'), tracking: field(values, 'tracking') };
    const missing: Record<string, string> = {};
    if (!shipping.carrier) missing.carrier = 'name the carrier';
    if (!shipping.tracking) missing.tracking = 'give the tracking number';
    if (Object.keys(missing).length > 0) {
      await ack({ response_action: 'errors', errors: missing });
      return;
    }
    let t: Transfer;
    try {
      const current = await service.get(ref.id);
      if (!(await mayReport(current, body.user.id, 'party'))) {
        // Field errors are plain text: no mention markup.
        await ack({
          response_action: 'errors',
          errors: { tracking: 'Only the requester or an approver may report this; nothing changed.' },
        });
        return;
      }
      t = await service.event(ref.id, 'shipped', body.user.id, shipping);
    } catch (error) {
      const e = coded(error);
      if (e.code === undefined) throw error;
      await ack({ response_action: 'errors', errors: { tracking: e.message } });
      return;
    }
    await ack();
    if (ref.channel && ref.ts)
      await client.chat.update({ channel: ref.channel, ts: ref.ts, ...shippingMessage(t) });
    if (ref.home) await publishHome(client, { service, approvers }, body.user.id);
  });

  // ---- the approvers group: Slack says when its members change ---------------------------------
  if (approvers instanceof SlackApprovers) {
    app.event('subteam_members_changed', async ({ event }) => {
      await approvers.membersChanged(event as unknown as SubteamMembersChangedEvent);
    });
    app.event('subteam_updated', async ({ event }) => {
      await approvers.groupUpdated(event as unknown as SubteamUpdatedEvent);
    });
  }

  // Live progress, reports, "Retry failed items" and App Home (bot/chat-listeners.ts).
  registerChatListeners(app, {
    service,
    approvers,
    approversChannel,
    ...(options.messageRefs ? { refs: options.messageRefs } : {}),
  });

  // The one place errors end up: logged (the error, never the payload), and the person whose
  // command or click failed is told, instead of silence or Slack's generic failure alone. Rethrown
  // so that the receiver answers as it would without this handler.
  app.error(async ({ error, logger, body }: { error: Error; logger: App['logger']; body: unknown }) => {
    logger.error(`odt bot: a listener failed: ${error.name}: ${error.message}`);
    const b = body as { user?: { id?: string }; user_id?: string } | undefined;
    const user = b?.user?.id ?? b?.user_id;
    if (user && isSlackUser(user)) {
      const text =
        ':warning: Something went wrong on our side, so your last `/odt` command or click may not have taken effect. Check with `/odt status`, try again in a minute, and tell an ODT administrator if it keeps failing.';
      await app.client.chat
        .postMessage({ channel: user, text, blocks: [section(text)] })
        .catch((e: unknown) => logger.warn(`odt bot: could not tell ${user}: ${coded(e).message}`));
    }
    throw error;
  });

  return app;
}
