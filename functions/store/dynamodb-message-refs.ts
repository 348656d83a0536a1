/**
 * Where a transfer's Slack messages are (bot/message-refs.ts), in the stack's one DynamoDB table,
 * for the Lambda functions: one item per transfer, `pk = SLACKMSG#<transfer id>`, `sk = SLACKMSG`.
 * An update sets only the given fields (UpdateItem with SET), so two functions updating different
 * fields of the same transfer do not overwrite each other. Items expire (TTL) 90 days after their
 * last update: long after the transfer's report.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { MessageRefPatch, MessageRefs, TransferMessageRef } from '../../bot/message-refs.ts';
import { ttlAttribute } from './dynamodb-agent-registry.ts';

const key = (transferId: string) => ({ pk: `SLACKMSG#${transferId}`, sk: 'SLACKMSG' });
const keepMs = 90 * 24 * 3600_000;
const fields = ['channel', 'threadTs', 'progressTs', 'lastUpdateAt', 'reportTs', 'reportKey'] as const;

function toRef(item: Record<string, unknown>): TransferMessageRef {
  const ref: Record<string, unknown> = { transferId: item.transferId };
  for (const f of fields) if (item[f] !== undefined) ref[f] = item[f];
  return ref as unknown as TransferMessageRef;
}

export class DynamoMessageRefs implements MessageRefs {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly table: string,
    private readonly now: () => number = Date.now,
  ) {
    this.doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  }

  async get(transferId: string): Promise<TransferMessageRef | undefined> {
    const res = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: key(transferId), ConsistentRead: true }),
    );
    return res.Item ? toRef(res.Item) : undefined;
  }

  async update(transferId: string, patch: MessageRefPatch): Promise<TransferMessageRef> {
    const set = fields.filter((f) => patch[f] !== undefined);
    const names: Record<string, string> = { '#transferId': 'transferId', '#ttl': ttlAttribute };
    const values: Record<string, unknown> = {
      ':transferId': transferId,
      ':ttl': Math.ceil((this.now() + keepMs) / 1000),
    };
    for (const f of set) {
      names[`#${f}`] = f;
      values[`:${f}`] = patch[f];
    }
    const res = await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: key(transferId),
        UpdateExpression: `SET ${['#transferId = :transferId', '#ttl = :ttl', ...set.map((f) => `#${f} = :${f}`)].join(', ')}`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ReturnValues: 'ALL_NEW',
      }),
    );
    return toRef(res.Attributes ?? { transferId });
  }
}
