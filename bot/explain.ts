/**
 * What a person sees when a service call about a transfer is refused: who may (the service
 * decides, core/model/permissions.ts; here it is only said), user-supplied text escaped, a missing
 * transfer with the Slack command that lists them, a decision already taken with who took it.
 * Only the service's refusals (OdtError) are the person's to read; anything else (a Slack Web API
 * error, which carries a `code` of its own, or a bug) is rethrown to app.error, which logs it and
 * tells the person that something went wrong on our side.
 */
import { actionWords, OdtError, PermissionError, type Transfer } from '../core/index.ts';
import { esc, mention } from './blocks.ts';
import type { BotContext } from './bot-context.ts';

/** The error's message, for a log line (a non-Error has no message of its own). */
export const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * Who may, when the service refused `e`: the requester (mentioned) or an approver; or the
 * service's own words (an approver only, four eyes), which name the person and the transfer.
 */
export function refusalText(e: PermissionError): string {
  if (e.allowed === 'requester-or-approvers')
    return `Only ${mention(e.requester)} (who asked for \`${esc(e.transferId)}\`) or an approver may ${actionWords(e.action, 'it')}; nothing changed.`;
  return esc(e.message);
}

/** The text of a service refusal (OdtError) about transfer `id`; anything else is rethrown. */
export function problem(id: string, error: unknown): string {
  if (error instanceof PermissionError) return refusalText(error);
  if (!(error instanceof OdtError)) throw error;
  if (error.code === 'NOT_FOUND')
    return `Transfer \`${esc(id)}\` does not exist; check the id (\`/odt list\` lists transfers, \`/odt status\` yours).`;
  return esc(error.message);
}

/**
 * Why transfer `t` no longer waits for a decision (cancelled, expired, or decided), or undefined
 * while it still waits.
 */
export function decided(t: Transfer): string | undefined {
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
}

/**
 * Who may (refusalText) when the person may not; "already approved by …" (decided) when a refusal
 * comes from a decision; else problem().
 */
export async function explain(ctx: Pick<BotContext, 'service'>, id: string, error: unknown): Promise<string> {
  if (error instanceof OdtError && (error.code === 'FORBIDDEN' || error.code === 'ILLEGAL_TRANSITION')) {
    const t = await ctx.service.get(id).catch(() => undefined);
    const why = t && decided(t);
    if (why) return why;
  }
  return problem(id, error);
}
