/**
 * Issue 23, point 1, through the Slack function on AWS (functions/slack.ts: Bolt's
 * AwsLambdaReceiver over DynamoDB): the same service check as `odt serve`, so a stranger is
 * refused and nothing changes, the requester may what the rules let them, an approver may.
 * The workflow's functions act for no person; this is the one Lambda that does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Transfer } from '../../core/index.ts';
import { createRuntime, type Runtime } from '../../functions/runtime.ts';
import { postApprovalMessage } from '../bot/harness.ts';
import { inSlack, type SlackEntry, submitModalAs, takeInSlack } from '../bot/permission-clicks.ts';
import {
  APPROVER_IDS,
  PEOPLE,
  type PermissionCase,
  permissionCases,
  seedTransfer,
} from '../support/permission-cases.ts';
import { type SlackFunction, signedSlackEvent, startSlackFunction } from './support.ts';

const SIGNING = 'lambda-permissions-secret';
const CHANNEL = 'CAPPROVERS';

let fn: SlackFunction;
let runtime: Runtime;
let entry: SlackEntry;
beforeAll(async () => {
  fn = await startSlackFunction({
    tableName: 'odt-slack-permissions',
    approvers: APPROVER_IDS.join(','),
    approversChannel: CHANNEL,
    signingSecret: SIGNING,
  });
  runtime = createRuntime(fn.cfg(), { dynamodb: fn.db.client(), secrets: fn.secrets });
  entry = {
    slack: fn.slack,
    post: async (form) => {
      const res = await fn.handler(signedSlackEvent(form, SIGNING), {});
      return { status: res.statusCode, body: res.body ?? '' };
    },
  };
});
afterAll(() => fn?.close());

async function seeded(c: PermissionCase, requester: string = PEOPLE.requester) {
  const t = await seedTransfer(runtime.store.transfers, c.phase, requester);
  return { t, message: { channel: CHANNEL, ts: await postApprovalMessage(fn.slack, t.id) } };
}

const unchanged = async (t: Transfer) => expect(await runtime.service.get(t.id)).toEqual(t);

describe.each(permissionCases.filter(inSlack))('issue 23: $action through the Slack function', (c) => {
  it('a stranger is refused with who may, and nothing changes', async () => {
    const { t, message } = await seeded(c);
    const taken = await takeInSlack(entry, c, t, PEOPLE.stranger, message);
    expect(taken.modal).toBe(false);
    expect(taken.told).toEqual([
      expect.stringContaining(c.requesterMay ? `Only <@${t.requester}>` : 'Only an approver may'),
    ]);
    await unchanged(t);
    if (await submitModalAs(entry, c, t, PEOPLE.stranger, message)) await unchanged(t);
  });

  it(`the requester ${c.requesterMay ? 'may' : 'is refused'}`, async () => {
    const { t, message } = await seeded(c);
    const taken = await takeInSlack(entry, c, t, PEOPLE.requester, message);
    if (c.requesterMay) expect(c.done(await runtime.service.get(t.id)), taken.told.join('\n')).toBe(true);
    else {
      expect(taken.told.join('\n')).toContain(`${PEOPLE.requester} is not an approver`);
      await unchanged(t);
    }
  });

  it('an approver may', async () => {
    const { t, message } = await seeded(c);
    const taken = await takeInSlack(entry, c, t, PEOPLE.approver, message);
    expect(c.done(await runtime.service.get(t.id)), taken.told.join('\n')).toBe(true);
  });
});

describe('issue 23: four eyes through the Slack function', () => {
  it('an approver may not approve their own request', async () => {
    const c = permissionCases.find((x) => x.action === 'approve')!;
    const { t, message } = await seeded(c, PEOPLE.approverRequester);
    const taken = await takeInSlack(entry, c, t, PEOPLE.approverRequester, message);
    expect(taken.told).toEqual([expect.stringContaining('four eyes')]);
    await unchanged(t);
  });
});
