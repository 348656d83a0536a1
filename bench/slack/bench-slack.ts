// bench/slack: how fast the bot acknowledges Slack, on the command, modal-submission, button and
// type-ahead paths, with at least 200 requests each.
//
//   npx tsx bench/slack/bench-slack.ts [--requests 200] [--slack-latency-ms 0,150]
//
// The bot runs on Bolt's HTTPReceiver with processBeforeResponse: the HTTP response leaves only
// when the listener has finished, as on AWS Lambda (AwsLambdaReceiver), so the measured time is the
// whole listener: signature check, the service call on the embedded control plane (SQLite, the
// durable runner), and every Slack Web API call the listener makes. Requests are signed as Slack
// signs them; the Web API is the fake from test/peers/slack, reached through a proxy that adds
// `--slack-latency-ms` to every call (Slack's own round trip, which the fake does not have).
// Slack gives an app 3 seconds to acknowledge; the p99 of every path must stay well inside.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import {
  APPROVERS,
  buttonClick,
  CHANNEL,
  type Harness,
  REQUESTER,
  requestValues,
  SITE,
  startHarness,
  submission,
} from '../../test/bot/harness.ts';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '200' },
    'slack-latency-ms': { type: 'string', default: '0,150' },
  },
});
const N = Number(values.requests);
const latencies = values['slack-latency-ms'].split(',').map(Number);

/** A proxy in front of the fake Web API that waits `delay` ms before forwarding each call. */
async function delayingProxy() {
  let target = '';
  let delay = 0;
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    await new Promise((r) => setTimeout(r, delay));
    const upstream = await fetch(new URL(req.url!.replace(/^\/api\//, ''), target), {
      method: req.method ?? 'POST',
      headers: {
        'content-type': String(req.headers['content-type'] ?? 'application/x-www-form-urlencoded'),
        ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      },
      body: Buffer.concat(chunks),
    });
    res.writeHead(upstream.status, { 'content-type': 'application/json' });
    res.end(Buffer.from(await upstream.arrayBuffer()));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/`,
    set(to: string, ms: number) {
      target = to;
      delay = ms;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

async function timed(run: () => Promise<Response>): Promise<number> {
  const t0 = performance.now();
  const res = await run();
  await res.arrayBuffer();
  const ms = performance.now() - t0;
  if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
  return ms;
}

const results: { latency: number; path: string; p50: number; p99: number; max: number; n: number }[] = [];
for (const latency of latencies) {
  const proxy = await delayingProxy();
  const h: Harness = await startHarness({
    bot: { clientOptions: { slackApiUrl: proxy.url, retryConfig: { retries: 0 } } },
  });
  proxy.set(h.slack.url, latency);
  const paths: Record<string, number[]> = { command: [], submission: [], button: [], 'type-ahead': [] };
  try {
    const suggestion = {
      type: 'block_suggestion',
      team: { id: 'TFAKE', domain: 'fake' },
      user: { id: REQUESTER, team_id: 'TFAKE' },
      api_app_id: 'AODT',
      token: 'legacy',
      action_id: 'odt_req_items',
      block_id: `items:${SITE}`,
      value: 'web',
      view: {
        id: 'VBENCH',
        type: 'modal',
        callback_id: 'odt_request_modal',
        private_metadata: '',
        state: { values: { site: requestValues().site! } },
      },
    };
    const offered = (await (await h.interaction(suggestion)).json()) as {
      option_groups?: unknown[];
      options?: unknown[];
    };
    if ((offered.option_groups ?? offered.options ?? []).length === 0)
      throw new Error('the type-ahead offered nothing');
    // Warm-up (JIT, SQLite statements), not counted.
    for (let i = 0; i < 10; i++) await timed(() => h.command('help'));
    for (let i = 0; i < N; i++) {
      paths.command!.push(await timed(() => h.command('status')));
      paths['type-ahead']!.push(await timed(() => h.interaction(suggestion)));
      const before = h.slack.ok('chat.postMessage').filter((c) => c.args.channel === CHANNEL).length;
      paths.submission!.push(
        await timed(() => h.interaction(submission(REQUESTER, 'odt_request_modal', requestValues()))),
      );
      const posted = h.slack.ok('chat.postMessage').filter((c) => c.args.channel === CHANNEL);
      if (posted.length !== before + 1) throw new Error('the submission posted no approval message');
      const ts = posted.at(-1)!.response.ts as string;
      const id = (await h.plane.service.list()).at(-1)!.id;
      paths.button!.push(
        await timed(() =>
          h.interaction(buttonClick(APPROVERS[0]!, 'odt_approve', id, { channel: CHANNEL, ts })),
        ),
      );
      if ((await h.plane.service.get(id)).phase !== 'approved') throw new Error(`${id} was not approved`);
    }
  } finally {
    await h.close();
    await proxy.close();
  }
  for (const [path, ms] of Object.entries(paths)) {
    const sorted = [...ms].sort((a, b) => a - b);
    results.push({
      latency,
      path,
      p50: pct(sorted, 50),
      p99: pct(sorted, 99),
      max: sorted.at(-1)!,
      n: ms.length,
    });
  }
}

console.log(`bench/slack: ${N} requests per path; response sent after the listener ends (as on Lambda)`);
console.log('Slack API latency  path          n      p50 ms   p99 ms   max ms   margin to 3 s (p99)');
for (const r of results)
  console.log(
    `${String(r.latency).padStart(8)} ms        ${r.path.padEnd(12)} ${String(r.n).padStart(4)} ${r.p50.toFixed(1).padStart(9)} ${r.p99.toFixed(1).padStart(8)} ${r.max.toFixed(1).padStart(8)}   ${(3000 / r.p99).toFixed(0)}x`,
  );
const rss = process.memoryUsage().rss / 1e6;
console.log(
  `RSS of the bench process at the end (bot, control plane and fakes in one): ${rss.toFixed(0)} MB`,
);
