/**
 * Issue 23, point 1, through the Slack bot (Bolt's HTTPReceiver, requests signed as Slack signs
 * them): the bot asks the service, which decides who may (core/model/permissions.ts); the bot only
 * says it. A stranger is refused ephemerally (no modal opens), and nothing changes; the requester
 * may cancel, retry and report the customer's shipping steps; an approver may do everything but
 * decide their own request.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '@slack/bolt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Transfer, TransferService } from '../../core/index.ts';
import { SqliteStore } from '../../local/store/sqlite-store.ts';
import { type FakeSlackApi, startFakeSlackApi } from '../peers/slack/fake-slack-api.ts';
import {
  APPROVER_IDS,
  expectTakenBy,
  PEOPLE,
  type PermissionCase,
  permissionCases,
  permissionService,
  seedTransfer,
} from '../support/permission-cases.ts';
import {
  APPROVERS,
  commandFields,
  postApprovalMessage,
  signedPost,
  startTestBot,
  visible,
} from './harness.ts';
import { inSlack, type SlackEntry, submitModalAs, takeInSlack } from './permission-clicks.ts';

let dir: string;
let stores: SqliteStore;
let service: TransferService;
let slack: FakeSlackApi;
let app: App;
let entry: SlackEntry;
beforeEach(async () => {
  expect(APPROVERS).toEqual(APPROVER_IDS);
  dir = mkdtempSync(join(tmpdir(), 'odt-bot-perm-'));
  stores = SqliteStore.open(dir);
  service = permissionService(stores);
  slack = await startFakeSlackApi();
  const bot = await startTestBot(service, slack);
  app = bot.app;
  entry = {
    slack,
    post: async (form) => {
      const res = await signedPost(bot.url, form);
      return { status: res.status, body: await res.text() };
    },
  };
});
afterEach(async () => {
  await app.stop();
  await slack.close();
  stores.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A transfer in the case's phase and the message its buttons are on. */
async function seeded(c: PermissionCase, requester: string = PEOPLE.requester) {
  const t = await seedTransfer(stores.transfers, c.phase, requester);
  return { t, message: { channel: 'CAPPROVERS', ts: await postApprovalMessage(slack, t.id) } };
}

/** The refusal names who may: the requester (mentioned) or an approver, or an approver only. */
const whoMay = (c: PermissionCase, t: Transfer, user: string): string[] =>
  c.requesterMay
    ? [`Only <@${t.requester}> (who asked for \`${t.id}\`) or an approver may`]
    : ['Only an approver may', `${user} is not an approver`];

const unchanged = async (t: Transfer) => expect(await service.get(t.id)).toEqual(t);

describe.each(permissionCases.filter(inSlack))('issue 23: $action in Slack', (c) => {
  it('a stranger is refused ephemerally with who may, no modal opens, and nothing changes', async () => {
    const { t, message } = await seeded(c);
    const taken = await takeInSlack(entry, c, t, PEOPLE.stranger, message);
    expect(taken.modal).toBe(false);
    expect(taken.told).toHaveLength(1);
    for (const part of whoMay(c, t, PEOPLE.stranger)) expect(taken.told[0]).toContain(part);
    await unchanged(t);
    // Nor does a forged submission of the modal (one opened for someone else) change anything.
    const forged = await submitModalAs(entry, c, t, PEOPLE.stranger, message);
    if (forged) {
      expect(forged).toHaveLength(1);
      expect(forged[0]).not.toContain('<@');
      await unchanged(t);
    }
  });

  it(`the requester ${c.requesterMay ? 'may' : 'is refused'}`, async () => {
    const { t, message } = await seeded(c);
    const taken = await takeInSlack(entry, c, t, PEOPLE.requester, message);
    if (c.requesterMay) {
      expectTakenBy(c, await service.get(t.id), PEOPLE.requester);
      expect(taken.told.join('\n')).not.toMatch(/Only|not an approver|:no_entry:/);
    } else {
      expect(taken.modal).toBe(false);
      for (const part of whoMay(c, t, PEOPLE.requester)) expect(taken.told.join('\n')).toContain(part);
      await unchanged(t);
    }
  });

  it('an approver may', async () => {
    const { t, message } = await seeded(c);
    const taken = await takeInSlack(entry, c, t, PEOPLE.approver, message);
    expectTakenBy(c, await service.get(t.id), PEOPLE.approver, taken.told.join('\n'));
  });
});

describe('issue 23: four eyes in Slack', () => {
  it.each(permissionCases.filter((c) => c.action === 'approve' || c.action === 'reject'))(
    'an approver who asked for the transfer may not $action it: told why, no modal, nothing changes',
    async (c) => {
      const { t, message } = await seeded(c, PEOPLE.approverRequester);
      const taken = await takeInSlack(entry, c, t, PEOPLE.approverRequester, message);
      expect(taken.modal).toBe(false);
      expect(taken.told).toEqual([expect.stringContaining('four eyes')]);
      await unchanged(t);
    },
  );
});

describe('issue 23: who sees a transfer in Slack', () => {
  const command = async (text: string, user: string) => {
    const res = await entry.post(new URLSearchParams(commandFields(text, user)).toString());
    return JSON.parse(res.body) as { text: string; blocks: unknown[] };
  };

  it('`/odt status <id>`: its requester and the approvers; a stranger is told it is not theirs', async () => {
    const t = await seedTransfer(stores.transfers, 'approved');
    const stranger = await command(`status ${t.id}`, PEOPLE.stranger);
    expect(stranger.text).toContain('is not yours');
    expect(visible(stranger.blocks)).not.toContain('web-01');
    for (const who of [PEOPLE.requester, PEOPLE.approver])
      expect(visible((await command(`status ${t.id}`, who)).blocks)).toContain('web-01');
  });

  it('`/odt list`: an approver every transfer, anyone else their own', async () => {
    const mine = await seedTransfer(stores.transfers, 'requested');
    const theirs = await seedTransfer(stores.transfers, 'approved', PEOPLE.approverRequester);
    const seen = async (who: string) => visible((await command('list', who)).blocks);
    expect(await seen(PEOPLE.approver)).toContain(theirs.id);
    expect(await seen(PEOPLE.approver)).toContain(mine.id);
    expect(await seen(PEOPLE.requester)).toContain(mine.id);
    expect(await seen(PEOPLE.requester)).not.toContain(theirs.id);
    expect(await seen(PEOPLE.stranger)).not.toContain(mine.id);
  });
});
