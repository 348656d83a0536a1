/**
 * Least privilege in Slack (issue #18): the manifest's bot scopes are exactly those that the Web
 * API methods, events and slash commands the bot uses require. The methods are read from the
 * source (bot/, functions/, local/, cli/): every `<…>.<family>.<method>(` chain that names a method
 * of Bolt's WebClient, and every `apiCall('<method>'`. A method, event or listener kind missing
 * from the tables below fails the test until its scope is looked up in Slack's reference.
 *
 * Not counted, because the bot token's scopes do not cover them: `auth.test` (Bolt's token check,
 * no scope), `apps.connections.open` (Socket Mode, the app-level token's connections:write), and
 * `respond()` (the command's response_url, no token).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { webApi } from '@slack/bolt';
import { describe, expect, it } from 'vitest';
import { defaultScopes } from '../peers/slack/fake-slack-api.ts';

const root = join(import.meta.dirname, '..', '..');

/**
 * The bot scope each Web API method needs, from the Facts of its page in Slack's method reference
 * (docs.slack.dev/reference/methods/<method>); none for the views methods.
 */
const methodScopes: Readonly<Record<string, readonly string[]>> = {
  'chat.postMessage': ['chat:write'], // also to a user id: the app's DM (Messages tab), no im:write
  'chat.postEphemeral': ['chat:write'],
  'chat.update': ['chat:write'],
  'views.open': [],
  'views.update': [],
  'views.publish': [],
  'usergroups.users.list': ['usergroups:read'],
};

/** The scope each Events API event needs (docs.slack.dev/reference/events/<event>, Required Scopes). */
const eventScopes: Readonly<Record<string, readonly string[]>> = {
  app_home_opened: [],
  subteam_members_changed: ['usergroups:read'],
  subteam_updated: ['usergroups:read'],
};

/** Listener kinds that need a scope of their own: slash commands and shortcuts need `commands`. */
const listenerScopes: Readonly<Record<string, readonly string[]>> = {
  command: ['commands'],
  shortcut: ['commands'],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => join(e.parentPath, e.name));
}

const webClient = new webApi.WebClient();
/** True when `path` (e.g. ['chat', 'postMessage']) names a method of Bolt's WebClient. */
const isWebApiMethod = (path: readonly string[]): boolean => {
  let at: unknown = webClient;
  for (const name of path) {
    if (at === null || (typeof at !== 'object' && typeof at !== 'function')) return false;
    if (!Object.hasOwn(at as object, name)) return false;
    at = (at as Record<string, unknown>)[name];
  }
  return typeof at === 'function';
};

/** What the bot's source uses: Web API methods, events listened to, and listener kinds. */
function used(texts: readonly string[]) {
  const methods = new Set<string>();
  const events = new Set<string>();
  const listeners = new Set<string>();
  for (const text of texts) {
    // `client.chat.postMessage(`, `app.client.chat\n  .postMessage(`, `client.usergroups.users.list(`:
    // the longest tail of the chain that is a WebClient method (`approvers.users.has(` is none).
    for (const m of text.matchAll(/[A-Za-z_$][\w$]*(?:\s*\??\.\s*[A-Za-z_$][\w$]*)+(?=\s*\()/g)) {
      const chain = m[0].split('.').map((s) => s.replace(/[\s?]/g, ''));
      for (let i = 0; i < chain.length - 1; i++) {
        const tail = chain.slice(i);
        if (isWebApiMethod(tail)) {
          methods.add(tail.join('.'));
          break;
        }
      }
    }
    for (const m of text.matchAll(/\bapiCall\(\s*['"`]([\w.]+)['"`]/g)) methods.add(m[1]!);
    // Bolt's `say` (a listener argument) posts with chat.postMessage.
    if (/\(\s*\{[^}]*\bsay\b[^}]*\}\s*\)\s*=>/.test(text)) methods.add('chat.postMessage');
    for (const m of text.matchAll(/\bapp\.event\(\s*['"`]([\w.]+)['"`]/g)) events.add(m[1]!);
    for (const m of text.matchAll(/\bapp\.(command|shortcut|message)\(/g)) listeners.add(m[1]!);
  }
  return { methods, events, listeners };
}

/** The list under `path` (nested keys) in the manifest, read by indentation. */
function manifestList(yaml: string, path: readonly string[]): string[] {
  const lines = yaml.split('\n');
  let depth = -1;
  let i = 0;
  for (const key of path) {
    const at = lines.findIndex((l, j) => j >= i && new RegExp(`^\\s*${key}:\\s*(#.*)?$`).test(l));
    if (at < 0) throw new Error(`the manifest has no ${path.join('.')}`);
    const indent = lines[at]!.search(/\S/);
    if (indent <= depth) throw new Error(`the manifest's ${key} is not under ${path.join('.')}`);
    depth = indent;
    i = at + 1;
  }
  const items: string[] = [];
  for (; i < lines.length; i++) {
    const item = /^(\s*)- ([^\s#]+)/.exec(lines[i]!);
    if (!item || item[1]!.length <= depth) break;
    items.push(item[2]!);
  }
  return items;
}

const manifest = readFileSync(join(root, 'docs', 'slack-app-manifest.yaml'), 'utf8');
const manifestScopes = manifestList(manifest, ['oauth_config', 'scopes', 'bot']);
const texts = ['bot', 'functions', 'local', 'cli'].flatMap(sourceFiles).map((f) => readFileSync(f, 'utf8'));
const use = used(texts);

describe('the Slack app asks for the scopes the bot uses, and no others (issue #18)', () => {
  it('finds the Web API methods, events and slash command in the source', () => {
    // A guard on the reader: these calls are known to be there.
    expect([...use.methods]).toEqual(
      expect.arrayContaining(['chat.postMessage', 'chat.update', 'views.open', 'usergroups.users.list']),
    );
    expect([...use.events]).toContain('app_home_opened');
    expect([...use.listeners]).toContain('command');
  });

  it("knows the scope of every method, event and listener kind the bot uses (Slack's reference)", () => {
    expect([...use.methods].filter((m) => !(m in methodScopes))).toEqual([]);
    expect([...use.events].filter((e) => !(e in eventScopes))).toEqual([]);
    expect([...use.listeners].filter((l) => !(l in listenerScopes))).toEqual([]);
  });

  it('the manifest requests exactly the bot scopes those need', () => {
    const needed = new Set([
      ...[...use.methods].flatMap((m) => methodScopes[m] ?? []),
      ...[...use.events].flatMap((e) => eventScopes[e] ?? []),
      ...[...use.listeners].flatMap((l) => listenerScopes[l] ?? []),
    ]);
    expect([...manifestScopes].sort()).toEqual([...needed].sort());
  });

  it('the fake Web API grants the test token what the manifest installs, no more', () => {
    expect([...defaultScopes].sort()).toEqual([...manifestScopes].sort());
  });
});
