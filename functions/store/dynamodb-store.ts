/**
 * The store on DynamoDB: transfers, callback tokens and agent tasks in one table.
 *
 * Single-table design (all keys are strings):
 *
 * | item          | pk                 | sk             | gsi1pk (GSI `gsi1`)      | gsi1sk               |
 * |---------------|--------------------|----------------|--------------------------|----------------------|
 * | transfer      | `TRANSFER#<id>`    | `TRANSFER`     | `TRANSFERS`              | `<createdAt>#<id>`   |
 * | callback token| `TRANSFER#<id>`    | `TOKEN#<wait>` | –                        | –                    |
 * | agent task    | `TASK#<id>`        | `TASK`         | `SITE#<site>#TASKS` (*)  | `<enqueuedAt>#<id>`  |
 *
 * (*) only while the task is open or claimed: a finished task drops gsi1pk/gsi1sk, so the index
 * is sparse and an agent's poll reads only live tasks of its own site.
 *
 * Other attributes: transfers carry `version`, `site`, `providerSite`, `phase` (for conditions
 * and filters) and `data` (the transfer as JSON); tokens carry `token`; tasks carry `rev` (a write
 * counter), `site`, `status` and `data` (the TaskRecord as JSON).
 *
 * Exactly-once writes: `create`/`enqueue` put with `attribute_not_exists(pk)`; a transfer update
 * puts with `version = :read`; a task change reads the record, applies the shared rule
 * (`taskRules`) and puts with `rev = :read`, re-reading and re-deciding when another writer came
 * first (so of concurrent claims one wins and the others see it held). `takeToken` is a delete
 * returning the old item, atomic by itself. No write spans two items, so no TransactWrite is
 * needed. Reads of one item are strongly consistent; `list` and `listOpen` read the GSI, which is
 * eventually consistent on AWS (a claim re-checks, so a stale listing is harmless).
 */
import {
  ConditionalCheckFailedException,
  type CreateTableCommandInput,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { ConflictError, NotFoundError } from '../../core/errors.ts';
import type { TransferPhase } from '../../core/model/phases.ts';
import type { Transfer } from '../../core/model/transfer.ts';
import type { Stores, TokenStore, TransferFilter, TransferStore } from '../../core/ports/store.ts';
import {
  type AgentTask,
  finalTaskStatuses,
  type ItemOutcome,
  isTaskOpen,
  type TaskProgress,
  type TaskQueue,
  type TaskRecord,
  taskRules,
} from '../../core/ports/task-queue.ts';

/** The table's key schema, for infra/ and for tests that create the table. */
export function tableDefinition(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: 'pk', AttributeType: 'S' },
      { AttributeName: 'sk', AttributeType: 'S' },
      { AttributeName: 'gsi1pk', AttributeType: 'S' },
      { AttributeName: 'gsi1sk', AttributeType: 'S' },
    ],
    KeySchema: [
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: 'gsi1',
        KeySchema: [
          { AttributeName: 'gsi1pk', KeyType: 'HASH' },
          { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ],
  };
}

export interface DynamoStoreOptions {
  /** A configured client (region, credentials, endpoint); the store reads no environment. */
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** How often a task change re-reads and retries after losing a race (default 5). */
  readonly maxRetries?: number;
}

const transferKey = (id: string) => ({ pk: `TRANSFER#${id}`, sk: 'TRANSFER' });
const tokenKey = (transferId: string, wait: string) => ({
  pk: `TRANSFER#${transferId}`,
  sk: `TOKEN#${wait}`,
});
const taskKey = (id: string) => ({ pk: `TASK#${id}`, sk: 'TASK' });

function conditionFailed(err: unknown): boolean {
  return err instanceof ConditionalCheckFailedException;
}

export class DynamoStore implements Stores {
  readonly transfers: TransferStore;
  readonly tokens: TokenStore;
  readonly tasks: TaskQueue;

  constructor(options: DynamoStoreOptions) {
    const doc = DynamoDBDocumentClient.from(options.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
    const table = options.tableName;
    this.transfers = new DynamoTransferStore(doc, table);
    this.tokens = new DynamoTokenStore(doc, table);
    this.tasks = new DynamoTaskQueue(doc, table, options.maxRetries ?? 5);
  }
}

async function queryAll(
  doc: DynamoDBDocumentClient,
  input: QueryCommandInput,
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await doc.send(new QueryCommand({ ...input, ExclusiveStartKey: start }));
    items.push(...(out.Items ?? []));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

class DynamoTransferStore implements TransferStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  private item(t: Transfer): Record<string, unknown> {
    return {
      ...transferKey(t.id),
      gsi1pk: 'TRANSFERS',
      gsi1sk: `${t.createdAt}#${t.id}`,
      version: t.version,
      site: t.site,
      providerSite: t.providerSite,
      phase: t.phase,
      data: JSON.stringify(t),
    };
  }

  async get(id: string): Promise<Transfer | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: transferKey(id), ConsistentRead: true }),
    );
    return out.Item ? (JSON.parse(out.Item.data as string) as Transfer) : undefined;
  }

  async create(transfer: Transfer): Promise<void> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: this.item(transfer),
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (err) {
      if (conditionFailed(err)) {
        throw new ConflictError(`transfer '${transfer.id}' already exists`, { cause: err });
      }
      throw err;
    }
  }

  async update(transfer: Transfer): Promise<Transfer> {
    const next: Transfer = { ...transfer, version: transfer.version + 1 };
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: this.item(next),
          ConditionExpression: 'attribute_exists(pk) AND #version = :read',
          ExpressionAttributeNames: { '#version': 'version' },
          ExpressionAttributeValues: { ':read': transfer.version },
        }),
      );
      return next;
    } catch (err) {
      if (!conditionFailed(err)) throw err;
      const stored = await this.get(transfer.id);
      if (!stored) throw new NotFoundError('transfer', transfer.id);
      throw new ConflictError(
        `transfer '${transfer.id}' changed meanwhile (version ${stored.version}, not ${transfer.version}); re-read it`,
        { cause: err },
      );
    }
  }

  async list(filter: TransferFilter = {}): Promise<readonly Transfer[]> {
    const conditions: string[] = [];
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ':all': 'TRANSFERS' };
    if (filter.site !== undefined) {
      conditions.push('#site = :site');
      names['#site'] = 'site';
      values[':site'] = filter.site;
    }
    if (filter.providerSite !== undefined) {
      conditions.push('#providerSite = :providerSite');
      names['#providerSite'] = 'providerSite';
      values[':providerSite'] = filter.providerSite;
    }
    if (filter.phase !== undefined) {
      const phases: readonly TransferPhase[] =
        typeof filter.phase === 'string' ? [filter.phase] : filter.phase;
      if (phases.length === 0) return [];
      names['#phase'] = 'phase';
      const refs = phases.map((p, i) => {
        values[`:phase${i}`] = p;
        return `:phase${i}`;
      });
      conditions.push(`#phase IN (${refs.join(', ')})`);
    }
    const items = await queryAll(this.doc, {
      TableName: this.table,
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :all',
      ...(conditions.length > 0
        ? { FilterExpression: conditions.join(' AND '), ExpressionAttributeNames: names }
        : {}),
      ExpressionAttributeValues: values,
    });
    return items.map((i) => JSON.parse(i.data as string) as Transfer);
  }
}

class DynamoTokenStore implements TokenStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async putToken(transferId: string, wait: string, token: string): Promise<void> {
    await this.doc.send(
      new PutCommand({ TableName: this.table, Item: { ...tokenKey(transferId, wait), token } }),
    );
  }

  async takeToken(transferId: string, wait: string): Promise<string | undefined> {
    const out = await this.doc.send(
      new DeleteCommand({ TableName: this.table, Key: tokenKey(transferId, wait), ReturnValues: 'ALL_OLD' }),
    );
    return out.Attributes?.token as string | undefined;
  }

  async peekToken(transferId: string, wait: string): Promise<string | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: tokenKey(transferId, wait), ConsistentRead: true }),
    );
    return out.Item?.token as string | undefined;
  }
}

interface StoredTask {
  rec: TaskRecord;
  rev: number;
}

class DynamoTaskQueue implements TaskQueue {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly maxRetries: number,
  ) {}

  private item(rec: TaskRecord, rev: number): Record<string, unknown> {
    const live = !finalTaskStatuses.includes(rec.status);
    return {
      ...taskKey(rec.id),
      ...(live ? { gsi1pk: `SITE#${rec.site}#TASKS`, gsi1sk: `${rec.enqueuedAt}#${rec.id}` } : {}),
      rev,
      site: rec.site,
      status: rec.status,
      data: JSON.stringify(rec),
    };
  }

  private async read(taskId: string): Promise<StoredTask | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: taskKey(taskId), ConsistentRead: true }),
    );
    if (!out.Item) return undefined;
    return { rec: JSON.parse(out.Item.data as string) as TaskRecord, rev: out.Item.rev as number };
  }

  /** Read, apply the rule, put on the revision read; on a lost race, read again and re-decide. */
  private async change<R extends TaskRecord | undefined>(
    taskId: string,
    rule: (rec: TaskRecord | undefined) => R,
  ): Promise<R> {
    for (let attempt = 0; ; attempt++) {
      const stored = await this.read(taskId);
      const next = rule(stored?.rec);
      if (!next || !stored) return next;
      try {
        await this.doc.send(
          new PutCommand({
            TableName: this.table,
            Item: this.item(next, stored.rev + 1),
            ConditionExpression: 'rev = :read',
            ExpressionAttributeValues: { ':read': stored.rev },
          }),
        );
        return next;
      } catch (err) {
        if (!conditionFailed(err)) throw err;
        if (attempt >= this.maxRetries) {
          throw new ConflictError(`task '${taskId}' keeps changing under concurrent writers; retry`, {
            cause: err,
          });
        }
      }
    }
  }

  async enqueue(task: AgentTask, now: Date): Promise<void> {
    const rec = taskRules.enqueued(task, now);
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: this.item(rec, 0),
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (err) {
      if (conditionFailed(err))
        throw new ConflictError(`task '${task.id}' is already enqueued`, { cause: err });
      throw err;
    }
  }

  async get(taskId: string): Promise<TaskRecord | undefined> {
    return (await this.read(taskId))?.rec;
  }

  async listOpen(site: string, now: Date): Promise<readonly TaskRecord[]> {
    const items = await queryAll(this.doc, {
      TableName: this.table,
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :site',
      ExpressionAttributeValues: { ':site': `SITE#${site}#TASKS` },
    });
    return items.map((i) => JSON.parse(i.data as string) as TaskRecord).filter((t) => isTaskOpen(t, now));
  }

  async claim(taskId: string, site: string, agentId: string, now: Date): Promise<TaskRecord> {
    return this.change(taskId, (rec) => taskRules.claim(rec, taskId, site, agentId, now));
  }

  async heartbeat(
    taskId: string,
    agentId: string,
    progress: readonly TaskProgress[],
    now: Date,
  ): Promise<void> {
    await this.change(taskId, (rec) => taskRules.heartbeat(rec, taskId, agentId, progress, now));
  }

  async complete(
    taskId: string,
    agentId: string,
    outcomes: readonly ItemOutcome[],
    now: Date,
  ): Promise<void> {
    await this.change(taskId, (rec) => taskRules.complete(rec, taskId, agentId, outcomes, now));
  }

  async fail(taskId: string, agentId: string, code: string, reason: string, now: Date): Promise<void> {
    await this.change(taskId, (rec) => taskRules.fail(rec, taskId, agentId, code, reason, now));
  }

  async release(taskId: string, agentId: string): Promise<void> {
    await this.change(taskId, (rec) => taskRules.release(rec, taskId, agentId));
  }

  async cancel(taskId: string, code: string, reason: string, now: Date): Promise<boolean> {
    const next = await this.change(taskId, (rec) => taskRules.cancel(rec, taskId, code, reason, now));
    return next !== undefined;
  }
}
