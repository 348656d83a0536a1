/**
 * The bot wired as `odt serve` wires it for Slack: the Slack chat notifier (SlackChat over a SQLite
 * refs file) is the control plane's chat, and the Bolt app (Bolt's own HTTPReceiver, requests
 * signed as Slack signs them) records each transfer's thread into the same refs. Everything talks
 * to the fake Slack Web API. The agents are enrolled over the signed agent API and act through it
 * (claim, heartbeat with progress, complete): the same calls `odt agent run` makes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { webApi } from '@slack/bolt';
import type { AgentApiClient } from '../../agent/runtime/api-client.ts';
import { SqliteMessageRefs } from '../../bot/message-refs.ts';
import { createSlackChat, type SlackChat } from '../../bot/slack-chat.ts';
import type { Transfer } from '../../core/index.ts';
import { type ControlPlane, startControlPlane } from '../../local/control-plane.ts';
import { type FakeSlackApi, startFakeSlackApi } from '../peers/slack/fake-slack-api.ts';
import { APPROVERS, CHANNEL, eventCallback, SITE, signedPost, startTestBot } from './harness.ts';
import { defaultInventory, enrollExportAgent } from './inventory.ts';

export const PROVIDER_SITE = 'provider';

export interface ChatHarness {
  readonly slack: FakeSlackApi;
  readonly plane: ControlPlane;
  readonly chat: SlackChat;
  readonly refs: SqliteMessageRefs;
  /** The export agent of `acme-dc1` and the ODT node of `provider`, over the agent API. */
  readonly exportAgent: AgentApiClient;
  readonly importAgent: AgentApiClient;
  /** The state folder (the NAS and agents' folders of a test with real agents go there too). */
  readonly stateDir: string;
  interaction(payload: Record<string, unknown>): Promise<Response>;
  /** An Events API delivery (event_callback), signed. */
  event(event: Record<string, unknown>): Promise<Response>;
  close(): Promise<void>;
}

export interface ChatHarnessOptions {
  readonly minIntervalMs?: number;
  /**
   * The bot's service.retry waits this long before it writes (the real service, slowed): two clicks
   * in flight then both read before either writes, as on a loaded server.
   */
  readonly slowRetryMs?: number;
  /** Enroll the API-level agents (default true); false when the test runs real agents. */
  readonly agents?: boolean;
  /** Passed to the control plane (the agents' heartbeat deadline). */
  readonly heartbeatSeconds?: number;
}

export async function startChatHarness(opts: ChatHarnessOptions = {}): Promise<ChatHarness> {
  const stateDir = mkdtempSync(join(tmpdir(), 'odt-slack-chat-'));
  const slack = await startFakeSlackApi();
  const refs = SqliteMessageRefs.open(join(stateDir, 'slack.sqlite'));
  const chat = createSlackChat({
    client: new webApi.WebClient('xoxb-test', { slackApiUrl: slack.url, retryConfig: { retries: 0 } }),
    approversChannel: CHANNEL,
    refs,
    minIntervalMs: opts.minIntervalMs ?? 300,
  });
  const plane = await startControlPlane({
    stateDir,
    approvers: APPROVERS,
    port: 0,
    agentPort: 0,
    chat,
    ...(opts.heartbeatSeconds ? { heartbeatSeconds: opts.heartbeatSeconds } : {}),
  });
  const agents = opts.agents ?? true;
  const exportAgent = agents ? await enrollExportAgent(plane, SITE, defaultInventory) : undefined;
  const importAgent = agents
    ? await enrollExportAgent(plane, PROVIDER_SITE, undefined, 'provider-odt-node')
    : undefined;
  const svc = plane.service;
  // The real service; only retry is slowed when asked (every other method as it is).
  const service = new Proxy(svc, {
    get(target, prop) {
      if (prop === 'retry' && opts.slowRetryMs)
        return async (id: string, actor: string) => {
          await sleep(opts.slowRetryMs!);
          return target.retry(id, actor);
        };
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const { app, url } = await startTestBot(service, slack, {
    registry: plane.registry,
    agentApiUrl: plane.agentApi.url,
    messageRefs: refs,
  });
  return {
    slack,
    plane,
    chat,
    refs,
    // Without agents, using them is a test's mistake: say so rather than fail on undefined.
    exportAgent: exportAgent ?? noAgent('export'),
    importAgent: importAgent ?? noAgent('import'),
    stateDir,
    interaction: (payload) =>
      signedPost(url, new URLSearchParams({ payload: JSON.stringify(payload) }).toString()),
    event: (event) => signedPost(url, eventCallback(event), { contentType: 'application/json' }),
    async close() {
      await app.stop();
      await chat.flush();
      await plane.close();
      refs.close();
      await slack.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

const noAgent = (role: string): AgentApiClient =>
  new Proxy({} as AgentApiClient, {
    get() {
      throw new Error(`startChatHarness({ agents: false }) enrolled no ${role} agent`);
    },
  });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` returns a value (not undefined/false), or fails naming `what`. */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  ms = 15_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Waits for the transfer to reach `phase`; on time-out, says where it is and why items failed. */
export async function phase(
  h: ChatHarness,
  id: string,
  p: Transfer['phase'],
  ms = 30_000,
): Promise<Transfer> {
  try {
    return await until(
      `${id} to be ${p}`,
      async () => {
        const t = await h.plane.service.get(id);
        return t.phase === p ? t : undefined;
      },
      ms,
    );
  } catch (error) {
    const t = await h.plane.service.get(id);
    const items = t.items.map(
      (i) => `${i.source}: ${i.result.state}${i.result.reason ? ` (${i.result.reason})` : ''}`,
    );
    throw new Error(`${(error as Error).message}; it is ${t.phase}; ${items.join('; ')}`);
  }
}
