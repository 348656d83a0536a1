/**
 * The request modal's listeners: open (from `/odt request`), the items select's options
 * (block_suggestion, type-ahead), live updates when the site, the selection or the link speed
 * changes (block_actions → views.update), and the submission (view_submission → the service).
 */
import { type App, webApi } from '@slack/bolt';
import { type Transfer, type TransferService, ValidationError } from '../core/index.ts';
import type { AgentRegistry, SiteInventory } from '../core/ports/agents.ts';
import { approvalMessage, section } from './blocks.ts';
import type { MessageRefs } from './message-refs.ts';
import { requestModalView } from './request-blocks.ts';
import {
  blockOfIssue,
  chosenSite,
  estimate,
  estimateText,
  inventoryEntries,
  itemOptions,
  itemsBlockId,
  itemsBlockOf,
  linkSpeed,
  parseMeta,
  parseRequestForm,
  type RequestModalMeta,
  requestIds,
  resolveSelection,
  type StateValues,
} from './request-form.ts';

type WebClient = App['client'];

export type BotRegistry = Pick<AgentRegistry, 'issueCode' | 'getInventory' | 'list'> &
  Partial<Pick<AgentRegistry, 'get' | 'revoke'>>;

export interface RequestModalDeps {
  readonly service: Pick<TransferService, 'request'>;
  readonly registry: BotRegistry | undefined;
  readonly approversChannel: string;
  readonly defaultLinkMbps: number;
  readonly turnaroundDays: number;
  /** Where the approval request is recorded as the transfer's thread (decisions from the Home tab update it). */
  readonly refs?: MessageRefs;
}

const noRegistry =
  'This bot was started without the agent registry, so it cannot list sites or inventories; start it with `registry` in its options (odt serve does).';

/** Sites that have an enrolled, unrevoked agent and a reported inventory, sorted. */
export async function sitesWithInventory(registry: BotRegistry): Promise<string[]> {
  const sites = [...new Set((await registry.list()).filter((a) => !a.revoked).map((a) => a.site))].sort();
  const reported = await Promise.all(
    sites.map(async (s) => ((await registry.getInventory(s)) ? s : undefined)),
  );
  return reported.filter((s): s is string => s !== undefined);
}

interface ViewLike {
  id?: string;
  hash?: string;
  private_metadata?: string;
  state?: { values?: StateValues };
}

/** Builds the modal for the current state of a view (or a new one). */
async function buildView(
  deps: RequestModalDeps,
  registry: BotRegistry,
  values: StateValues | undefined,
  meta: RequestModalMeta,
) {
  const sites = await sitesWithInventory(registry);
  let site = chosenSite(values, meta);
  if (!site && sites.length === 1) site = sites[0];
  if (site && !sites.includes(site)) site = undefined;
  const inventory: SiteInventory | undefined = site ? await registry.getInventory(site) : undefined;
  const entries = inventoryEntries(inventory);
  // Items chosen for another site do not carry over: only this site's items block counts.
  const own = site ? values?.[itemsBlockId(site)]?.[requestIds.itemsAction]?.selected_options : undefined;
  const selectedValues = (own ?? []).map((o) => o.value);
  const { found } = resolveSelection(entries, selectedValues);
  const link = values ? linkSpeed(values) : deps.defaultLinkMbps;
  const total = found.reduce((n, e) => n + e.sizeBytes, 0);
  return requestModalView({
    sites,
    ...(site ? { site } : {}),
    entries,
    ...(inventory ? { reportedAt: inventory.reportedAt } : {}),
    selected: found,
    ...(values ? { values } : {}),
    linkMbps: link,
    defaultLinkMbps: deps.defaultLinkMbps,
    ...(found.length > 0 && link !== undefined
      ? { estimate: estimate(total, found.length, link, deps.turnaroundDays) }
      : {}),
    privateMetadata: JSON.stringify(site ? { site } : {}),
  });
}

/** `/odt request`: opens the modal with the sites that reported an inventory. */
export async function openRequestModal(client: WebClient, triggerId: string, deps: RequestModalDeps) {
  if (!deps.registry) {
    await client.views.open({
      trigger_id: triggerId,
      view: {
        type: 'modal',
        callback_id: requestIds.callback,
        title: { type: 'plain_text', text: 'Request a transfer' },
        close: { type: 'plain_text', text: 'Close' },
        blocks: [section(noRegistry)],
      } as never,
    });
    return;
  }
  const view = await buildView(deps, deps.registry, undefined, {});
  await client.views.open({ trigger_id: triggerId, view: view as never });
}

/** The `error` of a call Slack refused (e.g. `hash_conflict`); undefined for any other error. */
const platformError = (e: unknown): string | undefined =>
  e instanceof webApi.WebAPIPlatformError ? e.data.error : undefined;

export function registerRequestModal(app: App, deps: RequestModalDeps): void {
  // Type-ahead for the items select: the chosen site's inventory, filtered by what was typed.
  app.options({ type: 'block_suggestion', action_id: requestIds.itemsAction }, async ({ body, ack }) => {
    const view = body.view as ViewLike | undefined;
    const site = chosenSite(view?.state?.values, parseMeta(view?.private_metadata));
    if (!deps.registry || !site) {
      await ack({ options: [] });
      return;
    }
    const entries = inventoryEntries(await deps.registry.getInventory(site));
    await ack(itemOptions(entries, body.value ?? '') as never);
  });

  // The site, the selection or the link speed changed: rebuild the modal in place.
  app.action(
    {
      type: 'block_actions',
      action_id: new RegExp(
        `^(${requestIds.siteAction}|${requestIds.itemsAction}|${requestIds.linkAction})$`,
      ),
    },
    async ({ ack, body, client, logger }) => {
      await ack();
      const view = (body as { view?: ViewLike }).view;
      if (!view?.id || !deps.registry) return;
      const next = await buildView(deps, deps.registry, view.state?.values, parseMeta(view.private_metadata));
      try {
        await client.views.update({
          view_id: view.id,
          ...(view.hash ? { hash: view.hash } : {}),
          view: next as never,
        });
      } catch (error) {
        // A newer change already updated the view; its own update carries the latest state.
        if (platformError(error) === 'hash_conflict') {
          logger.debug('request modal changed meanwhile; update skipped');
          return;
        }
        throw error;
      }
    },
  );

  app.view(requestIds.callback, async ({ ack, body, view, client }) => {
    if (!deps.registry) {
      await ack({ response_action: 'errors', errors: { [requestIds.siteBlock]: noRegistry } });
      return;
    }
    const values = view.state.values as StateValues;
    const meta = parseMeta(view.private_metadata);
    const site = chosenSite(values, meta);
    const parsed = parseRequestForm({
      values,
      meta,
      requester: body.user.id,
      inventory: site ? await deps.registry.getInventory(site) : undefined,
      turnaroundDays: deps.turnaroundDays,
    });
    if ('errors' in parsed) {
      await ack({ response_action: 'errors', errors: parsed.errors });
      return;
    }
    let t: Transfer;
    try {
      t = await deps.service.request(parsed.request);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      const itemsBlock = itemsBlockOf(values, site);
      const errors: Record<string, string> = {};
      for (const issue of error.issues)
        errors[blockOfIssue(issue.path, itemsBlock, parsed.itemBlocks)] ??= issue.message;
      await ack({ response_action: 'errors', errors });
      return;
    }
    await ack();
    const posted = await client.chat.postMessage({
      channel: deps.approversChannel,
      ...approvalMessage(t, parsed.estimate),
    });
    if (deps.refs && posted.ts)
      await deps.refs.update(t.id, { channel: posted.channel ?? deps.approversChannel, threadTs: posted.ts });
    const text = `Your transfer \`${t.id}\` was requested; the approvers were asked.`;
    await client.chat.postMessage({
      channel: t.requester,
      text,
      blocks: [section(text), section(estimateText(parsed.estimate))],
    });
  });
}
