/**
 * Issue 23: a person's action on a transfer taken the way Slack delivers it — a button on the
 * transfer's message, the modal it opens submitted, or `/odt cancel` — through any entry point of
 * the bot (Bolt's HTTPReceiver, the Slack function's AwsLambdaReceiver). Returns what the person
 * was told, so that a test checks the refusal and who it names.
 */
import type { Transfer } from '../../core/index.ts';
import type { FakeSlackApi } from '../peers/slack/fake-slack-api.ts';
import type { PermissionCase } from '../support/permission-cases.ts';
import { buttonClick, commandFields, dmsTo, ephemeralsTo, submission, text } from './harness.ts';

export interface SlackEntry {
  readonly slack: FakeSlackApi;
  /** Delivers a signed form body (a slash command or an interaction); its HTTP status and body. */
  post(form: string): Promise<{ status: number; body: string }>;
}

const button: Partial<Record<PermissionCase['action'], string>> = {
  approve: 'odt_approve',
  reject: 'odt_reject',
  'appliance-sent': 'odt_appliance_sent',
  'appliance-connected': 'odt_appliance_connected',
  shipped: 'odt_shipped',
  received: 'odt_received',
  retry: 'odt_retry',
};

/** The modal a button opens, and what it is submitted with. */
const modals: Partial<
  Record<PermissionCase['action'], { callback: string; values: Record<string, unknown> }>
> = {
  reject: { callback: 'odt_reject_modal', values: { reason: text('no NAS free until May') } },
  shipped: {
    callback: 'odt_shipped_modal',
    values: { carrier: text('DHL'), tracking: text('JD0002') },
  },
};

/** The actions Slack offers (the NAS erase is confirmed with `odt transfer event … wiped` only). */
export const inSlack = (c: PermissionCase): boolean =>
  c.action === 'cancel' || button[c.action] !== undefined;

export interface Taken {
  /** Everything the person was told: ephemerals, DMs, the command's answer, a modal's field errors. */
  readonly told: string[];
  /** Whether a modal was opened for them. */
  readonly modal: boolean;
}

const interaction = (payload: Record<string, unknown>) =>
  new URLSearchParams({ payload: JSON.stringify(payload) }).toString();

/**
 * Takes `c.action` on `t` as `user` in Slack: the button on `message` (and its modal, when one
 * opens), or `/odt cancel`.
 */
export async function takeInSlack(
  entry: SlackEntry,
  c: PermissionCase,
  t: Transfer,
  user: string,
  message: { channel: string; ts: string },
): Promise<Taken> {
  const { slack } = entry;
  const before = {
    ephemerals: ephemeralsTo(slack, user).length,
    dms: dmsTo(slack, user).length,
    views: slack.ok('views.open').length,
  };
  const told: string[] = [];
  let modal = false;
  if (c.action === 'cancel') {
    const res = await entry.post(
      new URLSearchParams(commandFields(`cancel ${t.id} not needed any more`, user)).toString(),
    );
    told.push((JSON.parse(res.body) as { text: string }).text);
  } else {
    // The retry button carries the round of the report it is on.
    const value = c.action === 'retry' ? `${t.id}:${t.history.length}` : t.id;
    const res = await entry.post(interaction(buttonClick(user, button[c.action]!, value, message)));
    if (res.status !== 200) throw new Error(`the click answered ${res.status}: ${res.body}`);
    const opened = slack.ok('views.open').slice(before.views).at(-1);
    const form = modals[c.action];
    if (opened && form) {
      modal = true;
      const view = opened.args.view as { private_metadata: string };
      const sent = await entry.post(
        interaction(submission(user, form.callback, form.values as never, view.private_metadata)),
      );
      if (sent.body) {
        const answer = JSON.parse(sent.body) as { errors?: Record<string, string> };
        told.push(...Object.values(answer.errors ?? {}));
      }
    }
  }
  told.push(
    ...ephemeralsTo(slack, user)
      .slice(before.ephemerals)
      .map((call) => String(call.args.text)),
    ...dmsTo(slack, user)
      .slice(before.dms)
      .map((call) => String(call.args.text)),
  );
  return { told, modal };
}

/**
 * A forged submission of the action's modal by `user` (a modal opened for someone else, replayed):
 * the field errors it is answered with, or [] when it is accepted. Undefined when the action has
 * no modal.
 */
export async function submitModalAs(
  entry: SlackEntry,
  c: PermissionCase,
  t: Transfer,
  user: string,
  message: { channel: string; ts: string },
): Promise<string[] | undefined> {
  const form = modals[c.action];
  if (!form) return undefined;
  const res = await entry.post(
    interaction(
      submission(user, form.callback, form.values as never, JSON.stringify({ id: t.id, ...message })),
    ),
  );
  if (!res.body) return [];
  return Object.values((JSON.parse(res.body) as { errors?: Record<string, string> }).errors ?? {});
}
