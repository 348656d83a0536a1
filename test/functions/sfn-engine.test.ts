import { SFNClient } from '@aws-sdk/client-sfn';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskTokenError } from '../../core/ports/workflow.ts';
import { SfnEngine } from '../../functions/sfn-engine.ts';
import { type SfnCall, startFakeSfn } from './support.ts';

const arn = 'arn:aws:states:us-east-1:123456789012:stateMachine:T-transfer';
let fake: Awaited<ReturnType<typeof startFakeSfn>> | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

async function engine(respond?: (call: SfnCall) => Record<string, unknown> | { error: string }) {
  fake = await startFakeSfn(respond);
  const client = new SFNClient({
    endpoint: fake.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
  return { engine: new SfnEngine({ client, stateMachineArn: arn }), calls: fake.calls };
}

describe('SfnEngine', () => {
  it('starts one execution named by the transfer id, with the transfer id as input', async () => {
    const { engine: e, calls } = await engine(() => ({ executionArn: `${arn}:x`, startDate: 1 }));
    await e.start('tr-1');
    expect(calls).toEqual([
      { op: 'StartExecution', body: { stateMachineArn: arn, name: 'tr-1', input: '{"transferId":"tr-1"}' } },
    ]);
  });

  it('treats ExecutionAlreadyExists as success (start is idempotent), other errors propagate', async () => {
    const { engine: e } = await engine((c) =>
      c.body.name === 'tr-dup' ? { error: 'ExecutionAlreadyExists' } : { error: 'StateMachineDoesNotExist' },
    );
    await expect(e.start('tr-dup')).resolves.toBeUndefined();
    await expect(e.start('tr-2')).rejects.toMatchObject({ name: 'StateMachineDoesNotExist' });
  });

  it('sends task success, failure (within the API’s length limits) and heartbeat', async () => {
    const { engine: e, calls } = await engine();
    await e.sendTaskSuccess('tok-1', { decision: 'approved' });
    await e.sendTaskFailure('tok-2', 'TransferCancelled', 'x'.repeat(40_000));
    await e.sendTaskHeartbeat('tok-3');
    expect(calls.map((c) => c.op)).toEqual(['SendTaskSuccess', 'SendTaskFailure', 'SendTaskHeartbeat']);
    expect(calls[0]!.body).toEqual({ taskToken: 'tok-1', output: '{"decision":"approved"}' });
    expect(calls[1]!.body).toMatchObject({ taskToken: 'tok-2', error: 'TransferCancelled' });
    expect((calls[1]!.body.cause as string).length).toBe(32_768);
    expect(calls[2]!.body).toEqual({ taskToken: 'tok-3' });
  });

  it.each(['TaskTimedOut', 'TaskDoesNotExist', 'InvalidToken'] as const)(
    'turns %s into a TaskTokenError of that name with a clear message',
    async (code) => {
      const { engine: e } = await engine(() => ({ error: code }));
      for (const call of [
        () => e.sendTaskSuccess('t', {}),
        () => e.sendTaskFailure('t', 'E', 'c'),
        () => e.sendTaskHeartbeat('t'),
      ]) {
        const error = await call().then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(error).toBeInstanceOf(TaskTokenError);
        expect(error).toMatchObject({ name: code, code });
        expect((error as Error).message).toMatch(code === 'InvalidToken' ? /not valid/ : /no longer waiting/);
      }
    },
  );

  it('lets other errors through unchanged', async () => {
    const { engine: e } = await engine(() => ({ error: 'ThrottlingException' }));
    await expect(e.sendTaskHeartbeat('t')).rejects.toMatchObject({ name: 'ThrottlingException' });
  });
});
