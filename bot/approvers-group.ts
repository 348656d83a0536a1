/**
 * The approvers as a Slack admin configures them: user ids (U…, W…) and user groups (S…, e.g.
 * @sneakernet-approvers), mixed in one list. A group's members come from `usergroups.users.list`
 * (bot scope usergroups:read), are kept at most `maxAgeMs` (60 s) and read again at once when Slack
 * sends `subteam_members_changed` or `subteam_updated`. A group that cannot be read (scope missing,
 * unknown or disabled group, bad token) is logged and refuses with ApproversUnavailableError naming
 * the group and the fix: it never lets anyone through. Plain user ids are answered without Slack.
 *
 * No Bolt import at run time: the functions' configuration checks entries with `isUserGroupId`.
 */
import { ValidationError } from '../core/errors.ts';
import { type Approvers, ApproversUnavailableError, fixedApprovers } from '../core/ports/approvers.ts';

/** A Slack user group id (`S0123ABCD`), as opposed to a user id or a CLI user name. */
export const isUserGroupId = (entry: string): boolean => /^S[A-Z0-9]{6,}$/.test(entry);

/** The one Web API method this needs (a Bolt / @slack/web-api WebClient has it). */
export interface UsergroupsClient {
  readonly usergroups: {
    readonly users: {
      list(args: { usergroup: string }): Promise<{ users?: string[] }>;
    };
  };
}

export interface SlackApproversOptions {
  /** The client, or how to get it (on Lambda: from the Slack secret, on first use). */
  readonly client: UsergroupsClient | (() => Promise<UsergroupsClient>);
  /** How long a group's members are trusted without asking Slack again. Default 60 s. */
  readonly maxAgeMs?: number;
  readonly now?: () => number;
  readonly log?: (meta: Record<string, unknown>, message: string) => void;
}

/** `subteam_members_changed` (Events API): the delta of a group's members. */
export interface SubteamMembersChangedEvent {
  readonly subteam_id: string;
  readonly added_users?: readonly string[];
  readonly removed_users?: readonly string[];
}

/** `subteam_updated` (Events API): the group as it is now; `users` is cut at 500 (`user_count` is not). */
export interface SubteamUpdatedEvent {
  readonly subteam: {
    readonly id: string;
    readonly users?: readonly string[];
    readonly user_count?: number | string;
    /** Non-zero when the group was disabled. */
    readonly date_delete?: number;
  };
}

interface Members {
  readonly users: ReadonlySet<string>;
  readonly at: number;
}

const setting = 'the approvers setting (ODT_APPROVERS / `odt serve --approvers`, or APPROVERS on AWS)';

/** What to do about a Slack error code of usergroups.users.list. */
function fixFor(code: string): string {
  switch (code) {
    case 'missing_scope':
      return 'add the bot scope usergroups:read to the Slack app (docs/slack-app-manifest.yaml) and reinstall it to the workspace';
    case 'no_such_subteam':
      return `check the group id in ${setting} (in Slack: the group's page → ⋯ → Copy group ID), and that the group is enabled`;
    case 'plan_upgrade_required':
      return `this Slack plan has no user groups; list the approvers' user ids in ${setting} instead`;
    case 'not_authed':
    case 'invalid_auth':
    case 'token_revoked':
    case 'account_inactive':
      return 'check the bot token (SLACK_BOT_TOKEN, or botToken in the Slack secret on AWS)';
    default:
      return 'Slack did not answer as expected; try again in a minute, and check the logs if it persists';
  }
}

/** The Slack error code of a failed Web API call (`data.error`), else the error's message. */
const slackCode = (error: unknown): string =>
  (error as { data?: { error?: string } })?.data?.error ??
  (error instanceof Error ? error.message : String(error));

/** The approvers port over Slack: user ids as given, user groups read from Slack and kept fresh. */
export class SlackApprovers implements Approvers {
  /** Plain entries (user ids, names): approvers whatever Slack says. */
  readonly users: ReadonlySet<string>;
  /** The user group ids among the entries. */
  readonly groups: readonly string[];
  private readonly members = new Map<string, Members>();
  private readonly reading = new Map<string, Promise<ReadonlySet<string>>>();
  private readonly disabled = new Set<string>();
  /** Bumped by each event, so that a read begun before it does not overwrite what it said. */
  private readonly generation = new Map<string, number>();
  private readonly maxAgeMs: number;
  private readonly now: () => number;
  private readonly log: NonNullable<SlackApproversOptions['log']>;
  private client: Promise<UsergroupsClient> | undefined;

  constructor(
    entries: readonly string[],
    private readonly options: SlackApproversOptions,
  ) {
    this.users = new Set(entries.filter((e) => !isUserGroupId(e)));
    this.groups = [...new Set(entries.filter(isUserGroupId))];
    this.maxAgeMs = options.maxAgeMs ?? 60_000;
    this.now = options.now ?? Date.now;
    this.log =
      options.log ??
      ((meta, message) => console.log(JSON.stringify({ level: 'warn', ...meta, msg: message })));
  }

  async has(id: string): Promise<boolean> {
    if (this.users.has(id)) return true;
    const answers = await Promise.allSettled(this.groups.map((g) => this.membersOf(g)));
    if (answers.some((a) => a.status === 'fulfilled' && a.value.has(id))) return true;
    const failed = answers.find((a): a is PromiseRejectedResult => a.status === 'rejected');
    if (failed) throw failed.reason;
    return false;
  }

  /** `subteam_members_changed`: applies the delta now, then reads the group again. */
  async membersChanged(event: SubteamMembersChangedEvent): Promise<void> {
    const group = event.subteam_id;
    if (!this.groups.includes(group)) return;
    this.bump(group);
    const known = this.members.get(group);
    if (known) {
      const users = new Set(known.users);
      for (const u of event.removed_users ?? []) users.delete(u);
      for (const u of event.added_users ?? []) users.add(u);
      this.members.set(group, { users, at: this.now() });
    }
    await this.refreshQuietly(group);
  }

  /** `subteam_updated`: a disabled group refuses; otherwise its members as sent, or read again when cut. */
  async groupUpdated(event: SubteamUpdatedEvent): Promise<void> {
    const { subteam } = event;
    if (!this.groups.includes(subteam.id)) return;
    this.bump(subteam.id);
    if (subteam.date_delete && subteam.date_delete > 0) {
      this.disabled.add(subteam.id);
      this.members.delete(subteam.id);
      this.log({ group: subteam.id }, 'approvers group disabled in Slack; its members may no longer approve');
      return;
    }
    this.disabled.delete(subteam.id);
    const count = Number(subteam.user_count);
    if (subteam.users && count === subteam.users.length) {
      this.members.set(subteam.id, { users: new Set(subteam.users), at: this.now() });
      return;
    }
    await this.refreshQuietly(subteam.id);
  }

  private bump(group: string): void {
    this.generation.set(group, (this.generation.get(group) ?? 0) + 1);
    this.reading.delete(group);
  }

  private membersOf(group: string): Promise<ReadonlySet<string>> {
    if (this.disabled.has(group)) {
      return Promise.reject(
        new ApproversUnavailableError(
          group,
          `The approvers group ${group} is disabled in Slack, so nobody in it may approve; enable it again, or name another group or user ids in ${setting}. Nothing changed.`,
        ),
      );
    }
    const known = this.members.get(group);
    if (known && this.now() - known.at < this.maxAgeMs) return Promise.resolve(known.users);
    return this.read(group);
  }

  private read(group: string): Promise<ReadonlySet<string>> {
    const pending = this.reading.get(group);
    if (pending) return pending;
    const reading: Promise<ReadonlySet<string>> = this.fetch(group).finally(() => {
      if (this.reading.get(group) === reading) this.reading.delete(group);
    });
    this.reading.set(group, reading);
    return reading;
  }

  private async fetch(group: string): Promise<ReadonlySet<string>> {
    const generation = this.generation.get(group) ?? 0;
    try {
      this.client ??= Promise.resolve(
        typeof this.options.client === 'function' ? this.options.client() : this.options.client,
      ).catch((error: unknown) => {
        this.client = undefined;
        throw error;
      });
      const client = await this.client;
      const out = await client.usergroups.users.list({ usergroup: group });
      const users: ReadonlySet<string> = new Set(out.users ?? []);
      if ((this.generation.get(group) ?? 0) === generation)
        this.members.set(group, { users, at: this.now() });
      return users;
    } catch (error) {
      const code = slackCode(error);
      this.log({ group, error: code }, 'approvers group unreadable; approvals by its members are refused');
      throw new ApproversUnavailableError(
        group,
        `The approvers group ${group} cannot be read from Slack (${code}), so nobody in it may approve now; ${fixFor(code)}. Nothing changed.`,
        { cause: error },
      );
    }
  }

  /** Reads the group again after an event; a failure is logged (the next decision reports it). */
  private async refreshQuietly(group: string): Promise<void> {
    await this.read(group).catch(() => undefined);
  }
}

/**
 * The approvers from a configured list: a SlackApprovers when it names a user group (which needs
 * the Slack client), a plain list otherwise. Throws, naming the group, when a group is listed and
 * there is no Slack client to read it with.
 */
export function approversFromEntries(
  entries: readonly string[],
  slack: SlackApproversOptions | undefined,
): Approvers {
  const groups = entries.filter(isUserGroupId);
  if (slack) return new SlackApprovers(entries, slack);
  if (groups.length > 0) {
    throw new ValidationError('The approvers list', [
      {
        path: 'approvers',
        message:
          `${groups.join(', ')} is a Slack user group, whose members only the Slack bot can read: ` +
          'configure Slack (SLACK_BOT_TOKEN with SLACK_APP_TOKEN or SLACK_SIGNING_SECRET; SLACK_SECRET_ARN on AWS), or list user ids',
      },
    ]);
  }
  return fixedApprovers(entries);
}
