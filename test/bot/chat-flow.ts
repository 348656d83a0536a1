/**
 * One transfer driven the way people and agents drive it: the request modal submitted, Approve,
 * "NAS sent", "NAS connected", "Shipped back" (modal) and "Received and mounted" clicked through
 * Bolt's HTTP receiver, and the export agent and ODT node working their tasks over the agent API
 * with progress heartbeats. Stops when the report is posted.
 */
import { expect } from 'vitest';
import type { ItemOutcome, TaskProgress, TaskRecord } from '../../core/index.ts';
import type { SlackCall } from '../peers/slack/fake-slack-api.ts';
import { nodeMakesKey } from '../support/fake-node.ts';
import { type ChatHarness, phase, until } from './chat-harness.ts';
import {
  APPROVERS,
  buttonClick,
  CHANNEL,
  REQUESTER,
  requestValues,
  submission,
  text,
  visible,
} from './harness.ts';

export const APPROVER = APPROVERS[0]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Flow {
  readonly id: string;
  /** The approval request: the transfer's thread. */
  readonly root: string;
  /** The shipping steps' message in the thread. */
  readonly shipping: string;
}

const posted = (h: ChatHarness, pred: (c: SlackCall) => boolean) => h.slack.ok('chat.postMessage').find(pred);

/** Request (modal, with `values`), approve, NAS sent, NAS connected. */
export async function requestAndApprove(
  h: ChatHarness,
  values = requestValues(),
  /** False when a real ODT node runs: it makes the transfer's key, signed as its export agent checks. */
  fakeNode = true,
): Promise<Flow> {
  const res = await h.interaction(submission(REQUESTER, 'odt_request_modal', values));
  expect(res.status).toBe(200);
  const request = posted(h, (c) => c.args.channel === CHANNEL && c.args.thread_ts === undefined);
  expect(
    request,
    `the approval request in the approvers channel (Slack errors: ${JSON.stringify(h.slack.failed())})`,
  ).toBeDefined();
  const root = request!.response.ts as string;
  const id = (await h.plane.service.list()).at(-1)!.id;
  await h.interaction(buttonClick(APPROVER, 'odt_approve', id, { channel: CHANNEL, ts: root }));
  // The ODT node's key for the transfer (#18), made in process when no real node runs.
  if (fakeNode) await nodeMakesKey(h.plane.service, id);
  const shippingMsg = posted(
    h,
    (c) => c.args.thread_ts === root && String(c.args.text).startsWith('Shipping of'),
  );
  expect(shippingMsg, 'the shipping steps in the thread').toBeDefined();
  const shipping = shippingMsg!.response.ts as string;
  await h.interaction(buttonClick(APPROVER, 'odt_appliance_sent', id, { channel: CHANNEL, ts: shipping }));
  await h.interaction(
    buttonClick(REQUESTER, 'odt_appliance_connected', id, { channel: CHANNEL, ts: shipping }),
  );
  return { id, root, shipping };
}

/** Claims the transfer's open task of `agent`'s site and reports progress in `steps` heartbeats. */
export async function work(
  agent: ChatHarness['exportAgent'],
  transferId: string,
  opts: { steps: number; gapMs: number; sizes: Readonly<Record<string, number>> },
): Promise<TaskRecord> {
  const open = await until(`a task of ${transferId}`, async () =>
    (await agent.listTasks()).find((t) => t.transferId === transferId),
  );
  const task = await agent.claim(open.id);
  for (let s = 1; s <= opts.steps; s++) {
    const progress: TaskProgress[] = task.itemIds.map((itemId) => {
      const total = opts.sizes[itemId] ?? 1e9;
      return {
        itemId,
        bytesDone: Math.round((total * s) / (opts.steps + 1)),
        bytesTotal: total,
        bytesPerSecond: 250e6,
      };
    });
    await agent.heartbeat(task.id, progress);
    await sleep(opts.gapMs);
  }
  return task;
}

/** Export, ship back (modal), receive, import with `outcome` per item; returns when the report is out. */
export async function exportShipImport(
  h: ChatHarness,
  flow: Flow,
  opts: { outcome: (itemId: string, bytes: number) => ItemOutcome; steps?: number; gapMs?: number },
): Promise<void> {
  const t = await h.plane.service.get(flow.id);
  const sizes = Object.fromEntries(t.items.map((i) => [i.id, i.sizeBytes ?? 1e9]));
  const pace = { steps: opts.steps ?? 3, gapMs: opts.gapMs ?? 400, sizes };
  const exportTask = await work(h.exportAgent, flow.id, pace);
  await h.exportAgent.complete(
    exportTask.id,
    exportTask.itemIds.map((itemId) => ({ itemId, ok: true, bytes: sizes[itemId]! })),
  );
  await phase(h, flow.id, 'exported');
  await shipBackAndReceive(h, flow);
  const importTask = await work(h.importAgent, flow.id, pace);
  await h.importAgent.complete(
    importTask.id,
    importTask.itemIds.map((itemId) => opts.outcome(itemId, sizes[itemId]!)),
  );
  await until('the report', () => reports(h).length > 0);
}

/** "Shipped back" clicked and its modal submitted (carrier, tracking), then "Received and mounted". */
export async function shipBackAndReceive(h: ChatHarness, flow: Flow): Promise<void> {
  const at = { channel: CHANNEL, ts: flow.shipping };
  await h.interaction(buttonClick(REQUESTER, 'odt_shipped', flow.id, at));
  const modal = h.slack.ok('views.open').at(-1)!.args.view as { private_metadata: string };
  await h.interaction(
    submission(
      REQUESTER,
      'odt_shipped_modal',
      { carrier: text('DHL'), tracking: text('JD014600006281230') },
      modal.private_metadata,
    ),
  );
  await phase(h, flow.id, 'shipped');
  await h.interaction(buttonClick(APPROVER, 'odt_received', flow.id, at));
}

/** Report messages in the approvers' channel. */
export const reports = (h: ChatHarness): SlackCall[] =>
  h.slack
    .ok('chat.postMessage')
    .filter((c) => c.args.channel === CHANNEL && visible(c.args.blocks).includes('Report of'));
