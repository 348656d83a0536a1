import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTransfer, transition } from '../../core/model/lifecycle.ts';
import { handler as agentTask } from '../../functions/agent-task.ts';
import { handler as step } from '../../functions/step.ts';
import { DynamoStore } from '../../functions/store/dynamodb-store.ts';
import { type Dynalite, request, startDynalite, startFakeSfn } from './support.ts';

// The exported `handler`s as Lambda loads them: configuration from the environment, the AWS SDK
// clients from the default chain, pointed at dynalite and a fake Step Functions endpoint through
// the SDK's service-specific endpoint variables.

let db: Dynalite;
let sfn: Awaited<ReturnType<typeof startFakeSfn>>;
let store: DynamoStore;
const saved = { ...process.env };

beforeAll(async () => {
  db = await startDynalite('odt-lambda');
  sfn = await startFakeSfn();
  Object.assign(process.env, {
    TABLE_NAME: db.tableName,
    STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:123456789012:stateMachine:Sneakernet-transfer',
    APPROVERS: 'bob',
    HEARTBEAT_SECONDS: '120',
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_ENDPOINT_URL_DYNAMODB: db.endpoint,
    AWS_ENDPOINT_URL_SFN: sfn.endpoint,
  });
  store = new DynamoStore({ client: db.client(), tableName: db.tableName });
});
afterAll(async () => {
  process.env = saved;
  await sfn?.close();
  await db?.close();
});

describe('the Lambda entry points', () => {
  it('run a step against the configured table', async () => {
    const t = createTransfer(request(), 'tr-entry-1', new Date());
    await store.transfers.create(t);
    await expect(step({ transferId: t.id, action: 'validate' })).resolves.toEqual({ ok: true });
  });

  it('queue agent work with the configured heartbeat and answer Step Functions over its API', async () => {
    const now = new Date();
    let t = createTransfer(request(), 'tr-entry-2', now);
    await store.transfers.create(t);
    for (const phase of ['approved', 'appliance-sent', 'appliance-connected'] as const) {
      t = await store.transfers.update(transition(t, phase, { actor: 'bob', at: now }));
    }
    await agentTask({ transferId: t.id, kind: 'export', taskToken: 'tok-1' });
    const task = await store.tasks.get(`${t.id}-export-1`);
    expect(task).toMatchObject({ site: 'acme', heartbeatSeconds: 120, status: 'open' });
    expect(await store.tokens.peekToken(t.id, 'export')).toBe('tok-1');

    await store.transfers.update(
      transition((await store.transfers.get(t.id))!, 'cancelled', { actor: 'a', at: now }),
    );
    await agentTask({ transferId: t.id, kind: 'export', taskToken: 'tok-2' });
    expect(sfn.calls).toEqual([
      {
        op: 'SendTaskFailure',
        body: { taskToken: 'tok-2', error: 'TransferCancelled', cause: 'the transfer was cancelled' },
      },
    ]);
  });
});
