/**
 * A fake Slack Web API for offline tests, written from Slack's method reference pages
 * (docs.slack.dev/reference/methods/…): chat.postMessage, chat.update, chat.postEphemeral,
 * views.open, views.publish, views.update, auth.test, conversations.members,
 * usergroups.users.list; and from the Block Kit / modal view reference
 * (docs.slack.dev/reference/views/modal-views, docs.slack.dev/reference/block-kit/blocks).
 *
 * What it does as Slack does:
 * - accepts `application/x-www-form-urlencoded` (JSON-valued arguments such as `blocks` and `view`
 *   arrive as JSON strings) and `application/json` bodies; the token comes from
 *   `Authorization: Bearer …` or a `token` argument;
 * - answers HTTP 200 with `{ ok: false, error }` for bad calls: `not_authed`, `invalid_auth`,
 *   `missing_scope` (with `needed` / `provided`), `channel_not_found`, `no_text`,
 *   `message_not_found`, `invalid_blocks`, `invalid_arguments` (with
 *   `response_metadata.messages`), `unknown_method`;
 * - enforces the documented limits: 50 blocks per message, 100 per view, 3,000 characters per
 *   section / context text, 2,000 per button value, 24 per modal title / submit / close, a
 *   `submit` when a modal has input blocks, 3,000 characters of `private_metadata`;
 * - checks input elements (block elements reference): select / checkbox options (75-character
 *   text, 150-character value, 100 options, 10 checkboxes, initial options among the options),
 *   external selects' `min_query_length` / `max_selected_items`, `number_input` bounds, unique
 *   `block_id`s of at most 255 characters;
 * - views.update takes exactly one of `view_id` / `external_id`, answers `not_found` for an unknown
 *   view and `hash_conflict` when `hash` is not the view's current one (each update makes a new
 *   hash); `checkOptionsResponse` checks an app's answer to a block_suggestion request.
 *
 * Every call (also refused ones) is recorded with its parsed arguments.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlackCall {
  readonly method: string;
  readonly args: Record<string, unknown>;
  readonly token: string | undefined;
  readonly response: Record<string, unknown>;
}

export interface FakeSlackOptions {
  /** Valid bot tokens and their scopes. Default: `xoxb-test` with every scope the bot needs. */
  readonly tokens?: Readonly<Record<string, readonly string[]>>;
  /** Channel id → member user ids (conversations.members). */
  readonly channels?: Readonly<Record<string, readonly string[]>>;
  /** User group id → user ids (usergroups.users.list). */
  readonly usergroups?: Readonly<Record<string, readonly string[]>>;
  /** User groups among `usergroups` that are disabled: listed only with `include_disabled`. */
  readonly disabledUsergroups?: readonly string[];
  readonly botUserId?: string;
  readonly botId?: string;
}

export interface FakeSlackApi {
  /** Base URL ending with `/api/`, for `clientOptions.slackApiUrl`. */
  readonly url: string;
  readonly calls: SlackCall[];
  /** Successful calls of one method. */
  ok(method: string): SlackCall[];
  /** Refused calls (ok: false). */
  failed(): SlackCall[];
  /** Current text+blocks of a posted message, after updates. */
  message(channel: string, ts: string): { text?: string; blocks?: unknown[] } | undefined;
  /** The Home tab last published for a user (views.publish). */
  home(user: string): Record<string, unknown> | undefined;
  /** A view as last opened or updated (with its id and hash), as Slack would send it back. */
  view(id: string): Record<string, unknown> | undefined;
  /**
   * Changes a user group as a Slack admin would: its members (undefined: the group is deleted),
   * and whether it is disabled. The app hears of it only through the events a test delivers.
   */
  setUsergroup(id: string, users: readonly string[] | undefined, opts?: { disabled?: boolean }): void;
  close(): Promise<void>;
}

/** The bot scopes docs/slack-app-manifest.yaml installs (test/bot/slack-scopes.test.ts checks). */
export const defaultScopes = ['chat:write', 'commands', 'usergroups:read'] as const;

const scopesOf: Record<string, readonly string[]> = {
  'chat.postMessage': ['chat:write'],
  'chat.update': ['chat:write'],
  'chat.postEphemeral': ['chat:write'],
  'views.open': [],
  'views.publish': [],
  'views.update': [],
  'auth.test': [],
  'conversations.members': ['channels:read', 'groups:read'],
  'usergroups.users.list': ['usergroups:read'],
};

class SlackError extends Error {
  constructor(
    readonly error: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(error);
  }
}

const invalidArguments = (message: string): SlackError =>
  new SlackError('invalid_arguments', { response_metadata: { messages: [`[ERROR] ${message}`] } });

const asString = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function parseJsonArg(args: Record<string, unknown>, name: string): unknown {
  const v = args[name];
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v);
  } catch {
    throw invalidArguments(`${name} must be a JSON-encoded string [json-pointer:/${name}]`);
  }
}

type Json = Record<string, unknown>;
const textOf = (o: unknown): string | undefined =>
  o && typeof o === 'object' && typeof (o as Json).text === 'string'
    ? ((o as Json).text as string)
    : undefined;

/** Block Kit checks from the blocks and elements reference. */
function checkBlocks(blocks: unknown, where: 'message' | 'view', max: number): void {
  if (!Array.isArray(blocks)) throw new SlackError('invalid_blocks_format');
  if (blocks.length > max) throw invalidArguments(`no more than ${max} items allowed [json-pointer:/blocks]`);
  const blockIds = new Set<string>();
  blocks.forEach((block, i) => {
    const b = block as Json;
    const at = `/blocks/${i}`;
    if (!b || typeof b.type !== 'string')
      throw new SlackError('invalid_blocks', { errors: [`missing type ${at}`] });
    if (b.type === 'input' && where === 'message' && b.dispatch_action !== true)
      throw new SlackError('invalid_blocks', {
        errors: [`input blocks in messages need dispatch_action ${at}`],
      });
    const text = textOf(b.text);
    if (b.type === 'section') {
      if (text === undefined && !Array.isArray(b.fields))
        throw new SlackError('invalid_blocks', { errors: [`must provide text or fields ${at}`] });
      if (text !== undefined && (text.length > 3000 || text.length === 0))
        throw new SlackError('invalid_blocks', { errors: [`text must be 1-3000 characters ${at}/text`] });
      if (Array.isArray(b.fields)) {
        if (b.fields.length > 10) throw new SlackError('invalid_blocks', { errors: [`max 10 fields ${at}`] });
        for (const f of b.fields)
          if ((textOf(f) ?? '').length > 2000)
            throw new SlackError('invalid_blocks', { errors: [`field text over 2000 ${at}/fields`] });
      }
    }
    if (b.type === 'header' && (text ?? '').length > 150)
      throw new SlackError('invalid_blocks', { errors: [`header text over 150 characters ${at}`] });
    if (b.type === 'context' && Array.isArray(b.elements) && b.elements.length > 10)
      throw new SlackError('invalid_blocks', { errors: [`max 10 context elements ${at}`] });
    const elements: unknown[] = Array.isArray(b.elements) ? b.elements : [];
    if (b.accessory) elements.push(b.accessory);
    if (b.element) elements.push(b.element);
    if (b.type === 'actions' && elements.length > 25)
      throw new SlackError('invalid_blocks', { errors: [`max 25 elements ${at}`] });
    for (const e of elements) {
      const el = e as Json;
      if (el.type === 'button') {
        if ((textOf(el.text) ?? '').length > 75)
          throw new SlackError('invalid_blocks', { errors: [`button text over 75 characters ${at}`] });
        if (typeof el.value === 'string' && el.value.length > 2000)
          throw new SlackError('invalid_blocks', { errors: [`button value over 2000 characters ${at}`] });
        if (typeof el.action_id === 'string' && el.action_id.length > 255)
          throw new SlackError('invalid_blocks', { errors: [`action_id over 255 characters ${at}`] });
      }
      checkInputElement(el, at);
    }
    checkBlockIdAndInput(b, at, blockIds);
  });
}

const blockError = (message: string): SlackError => new SlackError('invalid_blocks', { errors: [message] });

/**
 * Option objects (composition objects reference): plain_text text of at most 75 characters, a
 * value of at most 150; `max` options in all.
 */
function checkOptions(options: unknown, at: string, max = 100): Json[] {
  if (!Array.isArray(options)) throw blockError(`options must be an array ${at}`);
  if (options.length > max) throw blockError(`no more than ${max} options allowed ${at}/options`);
  for (const [i, o] of options.entries()) {
    const opt = o as Json;
    const text = opt?.text as Json | undefined;
    if (!text || typeof text.text !== 'string' || text.text.length === 0)
      throw blockError(`option needs text ${at}/options/${i}`);
    if (text.text.length > 75) throw blockError(`option text over 75 characters ${at}/options/${i}/text`);
    if (typeof opt.value !== 'string' || opt.value.length === 0 || opt.value.length > 150)
      throw blockError(`option value must be 1-150 characters ${at}/options/${i}/value`);
  }
  return options as Json[];
}

const sameOption = (a: Json, b: Json): boolean => a.value === b.value && textOf(a.text) === textOf(b.text);

/** A select's or checkboxes' initial option(s) must be among its options, text and value alike. */
function checkInitialAmong(el: Json, options: Json[], at: string): void {
  const initial = [
    ...(el.initial_option ? [el.initial_option as Json] : []),
    ...((el.initial_options as Json[] | undefined) ?? []),
  ];
  for (const i of initial)
    if (!options.some((o) => sameOption(o, i)))
      throw blockError(`initial option must match one of the options exactly ${at}`);
}

/** Elements of input blocks (block elements reference): selects, checkboxes, number input. */
function checkInputElement(el: Json, at: string): void {
  const type = el.type;
  if (type === 'static_select' || type === 'multi_static_select') {
    const hasGroups = Array.isArray(el.option_groups);
    if (hasGroups === Array.isArray(el.options))
      throw blockError(`${type} needs exactly one of options or option_groups ${at}`);
    const options = hasGroups
      ? (el.option_groups as Json[]).flatMap((g) => checkOptions(g.options, at))
      : checkOptions(el.options, at);
    if (options.length > 100) throw blockError(`no more than 100 options allowed ${at}`);
    checkInitialAmong(el, options, at);
  }
  if (type === 'external_select' || type === 'multi_external_select') {
    if (
      el.min_query_length !== undefined &&
      (!Number.isInteger(el.min_query_length) || (el.min_query_length as number) < 0)
    )
      throw blockError(`min_query_length must be a non-negative integer ${at}`);
    if (el.initial_options !== undefined) checkOptions(el.initial_options, at);
    if (el.initial_option !== undefined) checkOptions([el.initial_option], at);
  }
  if (type === 'multi_external_select' || type === 'multi_static_select') {
    if (
      el.max_selected_items !== undefined &&
      (!Number.isInteger(el.max_selected_items) || (el.max_selected_items as number) < 1)
    )
      throw blockError(`max_selected_items must be at least 1 ${at}`);
    const initial = (el.initial_options as unknown[] | undefined) ?? [];
    if (typeof el.max_selected_items === 'number' && initial.length > el.max_selected_items)
      throw blockError(`more initial_options than max_selected_items ${at}`);
  }
  if (type === 'checkboxes' || type === 'radio_buttons') {
    const options = checkOptions(el.options, at, 10);
    checkInitialAmong(el, options, at);
  }
  if (type === 'number_input') {
    if (typeof el.is_decimal_allowed !== 'boolean') throw blockError(`is_decimal_allowed is required ${at}`);
    const num = (k: string): number | undefined => {
      const v = el[k];
      if (v === undefined) return undefined;
      if (typeof v !== 'string' || !Number.isFinite(Number(v)))
        throw blockError(`${k} must be a numeric string ${at}`);
      if (!el.is_decimal_allowed && !Number.isInteger(Number(v)))
        throw blockError(`${k} must be a whole number ${at}`);
      return Number(v);
    };
    const min = num('min_value');
    const max = num('max_value');
    const initial = num('initial_value');
    if (min !== undefined && max !== undefined && min > max)
      throw blockError(`min_value over max_value ${at}`);
    if (
      initial !== undefined &&
      ((min !== undefined && initial < min) || (max !== undefined && initial > max))
    )
      throw blockError(`initial_value outside min_value..max_value ${at}`);
  }
  if (el.dispatch_action_config !== undefined) {
    const triggers = (el.dispatch_action_config as Json).trigger_actions_on;
    if (
      !Array.isArray(triggers) ||
      triggers.some((t) => t !== 'on_enter_pressed' && t !== 'on_character_entered')
    )
      throw blockError(`trigger_actions_on takes on_enter_pressed and on_character_entered ${at}`);
  }
}

/** block_id: at most 255 characters, unique in a message or view; input blocks need label and element. */
function checkBlockIdAndInput(b: Json, at: string, seen: Set<string>): void {
  if (b.block_id !== undefined) {
    if (typeof b.block_id !== 'string' || b.block_id.length === 0 || b.block_id.length > 255)
      throw blockError(`block_id must be 1-255 characters ${at}/block_id`);
    if (seen.has(b.block_id)) throw blockError(`duplicate block_id '${b.block_id}' ${at}/block_id`);
    seen.add(b.block_id);
  }
  if (b.type === 'input') {
    const label = textOf(b.label);
    if (!label || label.length > 2000) throw blockError(`input label must be 1-2000 characters ${at}/label`);
    if (!b.element || typeof (b.element as Json).type !== 'string')
      throw blockError(`input needs an element ${at}`);
    if (textOf(b.hint) !== undefined && (textOf(b.hint) as string).length > 2000)
      throw blockError(`hint over 2000 characters ${at}/hint`);
  }
  if (b.dispatch_action !== undefined && b.type !== 'input')
    throw blockError(`dispatch_action is a field of input blocks ${at}`);
}

/**
 * Checks an app's answer to a block_suggestion request (the options load URL) as Slack reads it:
 * `options` or `option_groups`, at most 100 of either, each group at most 100 options with a label
 * of at most 75 characters, each option's text at most 75 characters and value at most 150.
 * Returns the options in order; throws an Error naming the problem.
 */
export function checkOptionsResponse(body: unknown): { text: string; value: string; group?: string }[] {
  try {
    return readOptionsResponse(body);
  } catch (error) {
    if (error instanceof SlackError)
      throw new Error(String((error.extra.errors as string[] | undefined)?.[0] ?? error.error));
    throw error;
  }
}

function readOptionsResponse(body: unknown): { text: string; value: string; group?: string }[] {
  const b = body as Json;
  const hasGroups = Array.isArray(b?.option_groups);
  if (hasGroups === Array.isArray(b?.options))
    throw new Error('an options response has exactly one of options or option_groups');
  const out: { text: string; value: string; group?: string }[] = [];
  if (hasGroups) {
    const groups = b.option_groups as Json[];
    if (groups.length > 100) throw new Error('at most 100 option groups');
    for (const g of groups) {
      const label = textOf(g.label);
      if (!label || label.length > 75)
        throw new Error(`option group label must be 1-75 characters: '${label}'`);
      for (const o of checkOptions(g.options, '/option_groups'))
        out.push({ text: textOf(o.text)!, value: o.value as string, group: label });
    }
  } else {
    for (const o of checkOptions(b.options, ''))
      out.push({ text: textOf(o.text)!, value: o.value as string });
  }
  if (out.length > 100) throw new Error(`at most 100 options in all, got ${out.length}`);
  return out;
}

function checkView(view: unknown): Json {
  if (!view || typeof view !== 'object') throw invalidArguments('missing required field: view');
  const v = view as Json;
  if (v.type !== 'modal' && v.type !== 'home')
    throw invalidArguments('invalid view type [json-pointer:/view/type]');
  if (v.type === 'modal') {
    const title = textOf(v.title);
    if (!title) throw invalidArguments('missing required field: title [json-pointer:/view/title]');
    if (title.length > 24)
      throw invalidArguments('must be less than 25 characters [json-pointer:/view/title/text]');
    for (const k of ['submit', 'close'] as const)
      if ((textOf(v[k]) ?? '').length > 24)
        throw invalidArguments(`must be less than 25 characters [json-pointer:/view/${k}/text]`);
    const blocks = Array.isArray(v.blocks) ? v.blocks : [];
    if (blocks.some((b) => (b as Json).type === 'input') && !v.submit)
      throw invalidArguments('must define `submit` to use input block [json-pointer:/view/blocks/0/input]');
  }
  if (typeof v.private_metadata === 'string' && v.private_metadata.length > 3000)
    throw invalidArguments('must be less than 3001 characters [json-pointer:/view/private_metadata]');
  checkBlocks(v.blocks, 'view', 100);
  return v;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startFakeSlackApi(options: FakeSlackOptions = {}): Promise<FakeSlackApi> {
  const tokens = options.tokens ?? { 'xoxb-test': defaultScopes };
  const botUserId = options.botUserId ?? 'UBOT';
  const botId = options.botId ?? 'BBOT';
  const calls: SlackCall[] = [];
  const messages = new Map<string, { text?: string; blocks?: unknown[] }>();
  const triggers = new Set<string>();
  const views = new Map<string, Json>();
  const homes = new Map<string, Json>();
  const usergroups = new Map<string, readonly string[]>(Object.entries(options.usergroups ?? {}));
  const disabledGroups = new Set(options.disabledUsergroups ?? []);
  let seq = 0;
  const nextTs = () => `${Math.floor(Date.now() / 1000)}.${String(++seq).padStart(6, '0')}`;
  const knownChannel = (c: string) => /^[CDGU][A-Z0-9]+$/.test(c) || c.startsWith('#');

  const requireChannel = (args: Json): string => {
    const channel = asString(args.channel);
    if (!channel) throw new SlackError('channel_not_found');
    if (!knownChannel(channel)) throw new SlackError('channel_not_found');
    return channel;
  };
  const requireContent = (args: Json): { text?: string; blocks?: unknown[] } => {
    const text = asString(args.text);
    const blocks = parseJsonArg(args, 'blocks');
    if (text === undefined && blocks === undefined && args.attachments === undefined)
      throw new SlackError('no_text');
    if (blocks !== undefined) checkBlocks(blocks, 'message', 50);
    if (text !== undefined && text.length > 40000) throw new SlackError('msg_too_long');
    return {
      ...(text !== undefined ? { text } : {}),
      ...(blocks !== undefined ? { blocks: blocks as unknown[] } : {}),
    };
  };

  const methods: Record<string, (args: Json) => Json> = {
    'auth.test': () => ({
      url: 'https://fake.slack.test/',
      team: 'Fake',
      user: 'odt',
      team_id: 'TFAKE',
      user_id: botUserId,
      bot_id: botId,
    }),
    'chat.postMessage': (args) => {
      const channel = requireChannel(args);
      const content = requireContent(args);
      const ts = nextTs();
      messages.set(`${channel}/${ts}`, content);
      return { channel, ts, message: { ...content, ts, bot_id: botId, type: 'message' } };
    },
    'chat.update': (args) => {
      const channel = requireChannel(args);
      const ts = asString(args.ts);
      if (!ts) throw invalidArguments('missing required field: ts');
      const content = requireContent(args);
      if (!messages.has(`${channel}/${ts}`)) throw new SlackError('message_not_found');
      messages.set(`${channel}/${ts}`, content);
      return { channel, ts, text: content.text ?? '', message: content };
    },
    'chat.postEphemeral': (args) => {
      const channel = requireChannel(args);
      const user = asString(args.user);
      if (!user) throw invalidArguments('missing required field: user');
      const members = options.channels?.[channel];
      if (members && !members.includes(user)) throw new SlackError('user_not_in_channel');
      requireContent(args);
      return { message_ts: nextTs() };
    },
    'views.open': (args) => {
      const trigger = asString(args.trigger_id) ?? asString(args.interactivity_pointer);
      if (!trigger) throw invalidArguments('missing required field: trigger_id');
      if (triggers.has(trigger)) throw new SlackError('exchanged_trigger_id');
      const view = checkView(parseJsonArg(args, 'view'));
      triggers.add(trigger);
      const id = `V${randomBytes(4).toString('hex').toUpperCase()}`;
      const stored = { ...view, id, hash: `${Date.now()}.${seq++}`, state: { values: {} } };
      views.set(id, stored);
      return { view: stored };
    },
    'views.update': (args) => {
      const id = asString(args.view_id) ?? asString(args.external_id);
      if (!id) throw invalidArguments('missing required field: view_id or external_id');
      // "Exactly one of these arguments is required to identify the view" (views.update reference).
      if (asString(args.view_id) && asString(args.external_id))
        throw invalidArguments('pass view_id or external_id, not both');
      const view = checkView(parseJsonArg(args, 'view'));
      const current = views.get(id);
      if (!current) throw new SlackError('not_found');
      const hash = asString(args.hash);
      if (hash !== undefined && hash !== current.hash) throw new SlackError('hash_conflict');
      const stored = { ...view, id, hash: `${Date.now()}.${seq++}`, state: current.state ?? { values: {} } };
      views.set(id, stored);
      return { view: stored };
    },
    'views.publish': (args) => {
      // views.publish reference: user_id and view required, hash optional (hash_conflict when it is
      // not the current one), view_too_large over 250 kB.
      const user = asString(args.user_id);
      if (!user) throw invalidArguments('missing required field: user_id');
      if (typeof args.view === 'string' && Buffer.byteLength(args.view) > 250_000)
        throw new SlackError('view_too_large');
      const view = checkView(parseJsonArg(args, 'view'));
      if (view.type !== 'home') throw invalidArguments('views.publish only takes home views');
      const current = homes.get(user);
      const hash = asString(args.hash);
      if (hash !== undefined && hash !== current?.hash) throw new SlackError('hash_conflict');
      const stored = { ...view, id: `VHOME${user}`, hash: `${Date.now()}.${seq++}` };
      homes.set(user, stored);
      return { view: stored };
    },
    'conversations.members': (args) => {
      const channel = requireChannel(args);
      const members = options.channels?.[channel];
      if (!members) throw new SlackError('channel_not_found');
      return { members: [...members], response_metadata: { next_cursor: '' } };
    },
    'usergroups.users.list': (args) => {
      const group = asString(args.usergroup);
      if (!group) throw invalidArguments('missing required field: usergroup');
      const users = usergroups.get(group);
      if (!users) throw new SlackError('no_such_subteam');
      // "include_disabled: Allow results that involve disabled User Groups": without it a disabled
      // group is not found (the reference does not say which error; no_such_subteam is the closest).
      const includeDisabled =
        args.include_disabled === true || args.include_disabled === 'true' || args.include_disabled === '1';
      if (disabledGroups.has(group) && !includeDisabled) throw new SlackError('no_such_subteam');
      return { users: [...users] };
    },
  };

  const server: Server = createServer(async (req, res) => {
    const method = (req.url ?? '').replace(/^\/api\//, '').split('?')[0] ?? '';
    const raw = await readBody(req);
    let args: Json = {};
    const type = req.headers['content-type'] ?? '';
    if (raw !== '') {
      if (type.includes('application/json')) {
        try {
          args = JSON.parse(raw) as Json;
        } catch {
          args = {};
        }
      } else {
        args = Object.fromEntries(new URLSearchParams(raw));
      }
    }
    const auth = req.headers.authorization;
    const token = auth?.startsWith('Bearer ') ? auth.slice(7) : asString(args.token);
    let response: Json;
    try {
      const handler = methods[method];
      if (!handler) throw new SlackError('unknown_method');
      if (!token) throw new SlackError('not_authed');
      const scopes = tokens[token];
      if (!scopes) throw new SlackError('invalid_auth');
      const needed = scopesOf[method] ?? [];
      if (needed.length > 0 && !needed.some((s) => scopes.includes(s)))
        throw new SlackError('missing_scope', { needed: needed.join(','), provided: scopes.join(',') });
      response = { ok: true, ...handler(args) };
    } catch (error) {
      if (!(error instanceof SlackError)) throw error;
      response = { ok: false, error: error.error, ...error.extra };
    }
    calls.push({ method, args: decoded(args), token, response });
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(response));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/api/`,
    calls,
    ok: (method) => calls.filter((c) => c.method === method && c.response.ok === true),
    failed: () => calls.filter((c) => c.response.ok !== true),
    message: (channel, ts) => messages.get(`${channel}/${ts}`),
    home: (user) => homes.get(user),
    view: (id) => views.get(id),
    setUsergroup: (id, users, opts = {}) => {
      if (users === undefined) usergroups.delete(id);
      else usergroups.set(id, [...users]);
      if (opts.disabled) disabledGroups.add(id);
      else disabledGroups.delete(id);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Arguments with JSON-string values (`blocks`, `view`) parsed, for assertions. */
function decoded(args: Json): Json {
  const out: Json = { ...args };
  for (const k of ['blocks', 'view', 'attachments']) {
    if (typeof out[k] === 'string') {
      try {
        out[k] = JSON.parse(out[k] as string);
      } catch {
        // left as sent
      }
    }
  }
  return out;
}
