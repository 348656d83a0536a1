import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JsonLinesChat } from '../../core/service/json-lines-chat.ts';
import type { TransferService } from '../../core/service/transfer-service.ts';
import { agentTaskEvent, agentTaskHandler } from '../../functions/agent-task.ts';
import { awaitEvent, awaitHandler } from '../../functions/await.ts';
import { createService } from '../../functions/runtime.ts';
import { stepEvent, stepHandler } from '../../functions/step.ts';
import { type WorkflowFunctionName, workflowFunctions } from '../../infra/function-access.ts';
import { definitionPath, localArns, substitute } from '../../shared/workflow-definition.ts';
import { type Dynalite, functionConfig, RecordingEngine, request, startDynalite } from './support.ts';

// The workflow's three Lambda handlers over the real DynamoDB adapter (dynalite) and a recording
// WorkflowEngine; "people" (the bot or the admin CLI) act through their own service on the same table.

let db: Dynalite;
let people: TransferService;
const peopleEngine = new RecordingEngine();
const chatLines: string[] = [];
/** Per function: its engine, the DynamoDB operations and engine calls it made (for the IAM check). */
const fns = {} as Record<
  WorkflowFunctionName,
  { engine: RecordingEngine; dynamo: Set<string>; service: TransferService }
>;

beforeAll(async () => {
  db = await startDynalite();
  const cfg = functionConfig(db);
  for (const name of Object.keys(workflowFunctions) as WorkflowFunctionName[]) {
    const dynamo = new Set<string>();
    const engine = new RecordingEngine();
    const service = createService(cfg, {
      dynamodb: db.client((op) => dynamo.add(op)),
      workflow: engine,
      chat: new JsonLinesChat((line) => chatLines.push(line), { source: 'chat' }),
    });
    fns[name] = { engine, dynamo, service };
  }
  people = createService(cfg, {
    dynamodb: db.client(),
    workflow: peopleEngine,
    chat: new JsonLinesChat(() => {}),
  });
});
afterAll(() => db?.close());

const step = (event: unknown) => stepHandler(() => fns.Step.service)(event);
const wait = (event: unknown) => awaitHandler(() => fns.Await.service)(event);
const agentTask = (event: unknown) => agentTaskHandler(() => fns.AgentTask.service)(event);
const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as Error,
  );

describe('step', () => {
  it('runs a plain step and returns its result', async () => {
    const t = await people.request(request());
    expect(await step({ transferId: t.id, action: 'validate' })).toEqual({ ok: true });
  });

  it('lets typed errors propagate with their name as the errorType', async () => {
    expect(await errorOf(step({ transferId: 'tr-missing', action: 'validate' }))).toMatchObject({
      name: 'NotFoundError',
    });
    const t = await people.request(request());
    const unknown = await errorOf(step({ transferId: t.id, action: 'teleport' }));
    expect(unknown).toMatchObject({ name: 'ValidationError' });
    expect(unknown?.message).toMatch(/unknown action 'teleport'/);
  });

  it('rejects a malformed event, naming the field', async () => {
    const e = await errorOf(step({ transferId: '', action: 'validate' }));
    expect(e).toMatchObject({ name: 'ValidationError' });
    expect(e?.message).toMatch(/The step event is not valid: transferId/);
  });

  it('expires a transfer nobody decided on, and tells the chat', async () => {
    const t = await people.request(request());
    chatLines.length = 0;
    expect(await step({ transferId: t.id, action: 'expire' })).toEqual({ phase: 'expired' });
    expect(chatLines.map((l) => JSON.parse(l))).toMatchObject([
      { source: 'chat', event: 'changed', transfer: t.id, phase: 'expired' },
    ]);
  });
});

describe('await', () => {
  it('keeps the token while the event has not happened; the person’s action completes it', async () => {
    const t = await people.request(request());
    const before = fns.Await.engine.calls.length;
    await wait({ transferId: t.id, wait: 'approval', taskToken: 'tok-approval-1' });
    expect(fns.Await.engine.calls.length).toBe(before);
    expect(await people.get(t.id)).toMatchObject({ phase: 'requested' });
    // the token is in the store (not in any message): the approver's service takes it
    await people.approve(t.id, 'bob');
    expect(peopleEngine.calls.at(-1)).toEqual({
      op: 'success',
      token: 'tok-approval-1',
      output: { decision: 'approved' },
    });
  });

  it('completes at once when the event already happened (no lost wake-up)', async () => {
    const t = await people.request(request());
    await people.approve(t.id, 'bob');
    await wait({ transferId: t.id, wait: 'approval', taskToken: 'tok-late' });
    expect(fns.Await.engine.calls.at(-1)).toEqual({
      op: 'success',
      token: 'tok-late',
      output: { decision: 'approved' },
    });
  });

  it('fails the wait with TransferCancelled on a cancelled transfer', async () => {
    const t = await people.request(request());
    await people.cancel(t.id, 'alice');
    await wait({ transferId: t.id, wait: 'approval', taskToken: 'tok-c' });
    expect(fns.Await.engine.calls.at(-1)).toMatchObject({
      op: 'failure',
      token: 'tok-c',
      error: 'TransferCancelled',
    });
  });

  it('rejects an unknown wait or a missing token', async () => {
    const t = await people.request(request());
    expect(await errorOf(wait({ transferId: t.id, wait: 'export', taskToken: 'x' }))).toMatchObject({
      name: 'ValidationError',
    });
    const e = await errorOf(wait({ transferId: t.id, wait: 'approval' }));
    expect(e?.message).toMatch(/taskToken/);
  });
});

describe('agent-task', () => {
  async function readyToExport(): Promise<string> {
    const t = await people.request(request());
    await people.approve(t.id, 'bob');
    await people.event(t.id, 'appliance-sent', 'bob');
    await people.event(t.id, 'appliance-connected', 'alice');
    return t.id;
  }

  it('queues one export task for the customer’s site and keeps the token', async () => {
    const id = await readyToExport();
    await agentTask({ transferId: id, kind: 'export', taskToken: 'tok-export' });
    // Lambda or Step Functions may deliver the same invocation twice: still one task
    await agentTask({ transferId: id, kind: 'export', taskToken: 'tok-export' });
    expect(await people.get(id)).toMatchObject({ phase: 'exporting' });
    const open = (await people.openTasks('acme')).filter((task) => task.transferId === id);
    expect(open).toHaveLength(1);
    expect(open[0]).toMatchObject({ kind: 'export', site: 'acme', heartbeatSeconds: 600 });
    expect(open[0]!.itemIds).toHaveLength(2);
    // an agent completes it through the service: the stored token completes the workflow's task
    await people.claimTask(open[0]!.id, 'acme', 'agent-1');
    await people.taskComplete(
      open[0]!.id,
      'agent-1',
      open[0]!.itemIds.map((itemId) => ({ itemId, ok: true, bytes: 1 })),
    );
    expect(peopleEngine.calls.at(-1)).toMatchObject({ op: 'success', token: 'tok-export' });
    expect(await step({ transferId: id, action: 'export-outcome' })).toEqual({
      allOk: true,
      phase: 'exported',
    });
  });

  it('fails the task with TransferCancelled when the transfer was cancelled', async () => {
    const id = await readyToExport();
    await people.cancel(id, 'alice');
    await agentTask({ transferId: id, kind: 'export', taskToken: 'tok-x' });
    expect(fns.AgentTask.engine.calls.at(-1)).toMatchObject({
      op: 'failure',
      token: 'tok-x',
      error: 'TransferCancelled',
    });
  });

  it('rejects an unknown kind', async () => {
    expect(await errorOf(agentTask({ transferId: 'x', kind: 'copy', taskToken: 't' }))).toMatchObject({
      name: 'ValidationError',
    });
  });
});

describe('the handlers and the one workflow definition', () => {
  type State = { Type: string; Resource?: string; Parameters?: Record<string, unknown> };
  const definition = JSON.parse(substitute(readFileSync(definitionPath, 'utf8'), localArns)) as {
    States: Record<string, State>;
  };
  /** The event each Task state sends its function, as Step Functions builds it. */
  const events = Object.entries(definition.States)
    .filter(([, s]) => s.Type === 'Task')
    .map(([name, s]) => {
      const callback = s.Resource?.endsWith('.waitForTaskToken') ?? false;
      const params = (callback ? s.Parameters?.Payload : s.Parameters) as Record<string, unknown>;
      const event = Object.fromEntries(
        Object.entries(params).map(([k, v]) =>
          k.endsWith('.$') ? [k.slice(0, -2), v === '$$.Task.Token' ? 'token' : 'tr-x'] : [k, v as string],
        ),
      );
      const fn = (callback ? s.Parameters?.FunctionName : s.Resource) as string;
      return { name, fn, event };
    });

  it('every Task state’s event is accepted by the schema of the function it calls', () => {
    expect(events.length).toBeGreaterThan(15);
    const schemaOf = {
      [localArns.StepFunctionArn]: stepEvent,
      [localArns.AwaitFunctionArn]: awaitEvent,
      [localArns.AgentTaskFunctionArn]: agentTaskEvent,
    };
    for (const { name, fn, event } of events) {
      const schema = schemaOf[fn];
      expect(schema, name).toBeDefined();
      expect(schema!.safeParse(event).success, `${name}: ${JSON.stringify(event)}`).toBe(true);
    }
  });

  it('every step action of the definition is one the service knows', async () => {
    const actions = new Set(
      events.filter((e) => e.fn === localArns.StepFunctionArn).map((e) => String(e.event.action)),
    );
    expect(actions.size).toBeGreaterThanOrEqual(9);
    for (const action of actions) {
      const t = await people.request(request());
      const e = await errorOf(step({ transferId: t.id, action }));
      expect(e?.name, action).not.toBe('ValidationError');
    }
  });
});

describe('least privilege (infra/function-access.ts)', () => {
  const engineAction = {
    start: 'states:StartExecution',
    success: 'states:SendTaskSuccess',
    failure: 'states:SendTaskFailure',
    heartbeat: 'states:SendTaskHeartbeat',
  } as const;

  it('covers every DynamoDB operation and engine call each handler made in these tests', () => {
    for (const [name, f] of Object.entries(fns) as [
      WorkflowFunctionName,
      (typeof fns)[WorkflowFunctionName],
    ][]) {
      const granted = new Set<string>([...workflowFunctions[name].table, ...workflowFunctions[name].states]);
      const used = [
        ...[...f.dynamo].map((op) => `dynamodb:${op}`),
        ...f.engine.calls.map((c) => engineAction[c.op]),
      ];
      expect(f.dynamo.has('GetItem'), name).toBe(true); // the recorder sees low-level operation names
      expect(used.length, name).toBeGreaterThan(0);
      expect(
        used.filter((a) => !granted.has(a)),
        name,
      ).toEqual([]);
    }
  });
});
