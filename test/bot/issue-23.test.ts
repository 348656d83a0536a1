/**
 * Issue 23: the two error paths found while splitting the bot into modules. A `/odt` subcommand
 * that fails after it acknowledged must not acknowledge again (Bolt's HTTPReceiver throws
 * ReceiverMultipleAckError, Socket Mode drops the second answer unseen) nor show a Slack SDK error
 * as if the service had refused, and Reject on an expired transfer must say what happened instead
 * of posting an empty message.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  APPROVERS,
  buttonClick,
  commandFields,
  dmsTo,
  ephemeralsTo,
  type Harness,
  REQUESTER,
  requestTransfer,
  startHarness,
  trigger,
} from './harness.ts';

/** A response_url as Slack hands one out with a slash command: records what the app posts to it. */
async function startResponseUrl(): Promise<{ url: string; bodies: unknown[]; close(): Promise<void> }> {
  const bodies: unknown[] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/commands/1`,
    bodies,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

let h: Harness;
let responseUrl: Awaited<ReturnType<typeof startResponseUrl>>;
beforeEach(async () => {
  h = await startHarness();
  responseUrl = await startResponseUrl();
});
afterEach(async () => {
  await h?.close();
  await responseUrl?.close();
});

const [APPROVER] = APPROVERS as [string, string];

describe('issue 23: a /odt subcommand that fails after ack() answers once', () => {
  it('`/odt request` whose modal Slack refuses (trigger already used) is not shown as a service refusal', async () => {
    // GIVEN a trigger id that Slack has already exchanged for a view (as when it expired: the
    // bot acknowledged, then views.open is refused)
    const used = trigger();
    const first = await fetch(`${h.slack.url}views.open`, {
      method: 'POST',
      headers: { authorization: 'Bearer xoxb-test', 'content-type': 'application/json' },
      body: JSON.stringify({
        trigger_id: used,
        view: { type: 'modal', title: { type: 'plain_text', text: 'x' }, blocks: [] },
      }),
    });
    expect(((await first.json()) as { ok: boolean }).ok).toBe(true);

    // WHEN the requester runs `/odt request` with it
    const res = await h.post(
      new URLSearchParams({
        ...commandFields('request'),
        trigger_id: used,
        response_url: responseUrl.url,
      }).toString(),
    );

    // THEN the failure ends in app.error as any unexpected one does: the receiver answers 500 as it
    // does for every failed listener when it processes before responding (as on Lambda)
    expect(res.status).toBe(500);
    expect(h.slack.failed().map((c) => [c.method, c.response.error])).toEqual([
      ['views.open', 'exchanged_trigger_id'],
    ]);
    // AND the Slack Web API error (it carries a `code` too) is not worded as the service's answer:
    // nothing goes to response_url, app.error tells the requester that something went wrong on
    // our side (issue 23, point 2)
    expect(responseUrl.bodies).toEqual([]);
    const told = dmsTo(h.slack, REQUESTER).map((c) => c.args.text as string);
    expect(told).toHaveLength(1);
    expect(told[0]).toContain('Something went wrong on our side');
    expect(told[0]).not.toContain('exchanged_trigger_id');
  });
});

describe('issue 23: Reject on an expired transfer', () => {
  it('says that the transfer expired and what to do, as Approve does, and opens no modal', async () => {
    // GIVEN a request nobody decided in time (the workflow's expire step ran)
    const { id, message } = await requestTransfer(h);
    await h.plane.service.onStep(id, 'expire');
    expect((await h.plane.service.get(id)).phase).toBe('expired');

    // WHEN an approver presses Reject, then Approve
    const rejected = await h.interaction(buttonClick(APPROVER, 'odt_reject', id, message));
    const approved = await h.interaction(buttonClick(APPROVER, 'odt_approve', id, message));

    // THEN each click gets the same non-empty note: what happened, and what to do
    expect(rejected.status).toBe(200);
    expect(approved.status).toBe(200);
    expect(h.slack.ok('views.open')).toHaveLength(0);
    expect(h.slack.failed()).toEqual([]);
    const [onReject, onApprove] = ephemeralsTo(h.slack, APPROVER).map((c) => c.args.text as string);
    expect(onReject).toBe(
      `Transfer \`${id}\` expired: nobody approved or rejected it in time; nothing changed. The requester may ask again with \`/odt request\`.`,
    );
    expect(onApprove).toBe(onReject);
    expect((await h.plane.service.get(id)).phase).toBe('expired');
  });

  it('on a transfer another approver already approved, says who, as Approve does, and opens no modal', async () => {
    // GIVEN a transfer approved by the first approver
    const [, OTHER_APPROVER] = APPROVERS as [string, string];
    const { id, message } = await requestTransfer(h);
    await h.interaction(buttonClick(APPROVER, 'odt_approve', id, message));

    // WHEN the other approver presses Reject on the same message
    const res = await h.interaction(buttonClick(OTHER_APPROVER, 'odt_reject', id, message));

    // THEN they are told who decided, and nothing changed
    expect(res.status).toBe(200);
    expect(h.slack.ok('views.open')).toHaveLength(0);
    expect(ephemeralsTo(h.slack, OTHER_APPROVER).map((c) => c.args.text)).toEqual([
      `Transfer \`${id}\` was already approved by <@${APPROVER}>; nothing changed.`,
    ]);
    expect((await h.plane.service.get(id)).phase).toBe('approved');
  });
});
