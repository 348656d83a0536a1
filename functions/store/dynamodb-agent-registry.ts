/**
 * The agent registry on DynamoDB, in the same single table as the store
 * (functions/store/dynamodb-store.ts; no new index, no new key attribute).
 *
 * | item              | pk                       | sk            | gsi1pk   | gsi1sk               |
 * |-------------------|--------------------------|---------------|----------|----------------------|
 * | agent             | `AGENT#<id>`             | `AGENT`       | `AGENTS` | `<enrolledAt>#<id>`  |
 * | certificate claim | `AGENTCERT#<sha256>`     | `AGENTCERT`   | –        | –                    |
 * | enrollment code   | `ENROLLCODE#<sha256>`    | `ENROLLCODE`  | –        | –                    |
 * | used nonce        | `NONCE#<agentId>`        | `<nonce>`     | –        | –                    |
 * | site inventory    | `SITE#<site>`            | `INVENTORY`   | –        | –                    |
 *
 * Agents carry `id`, `site`, `name`, `certSha256`, `certPem`, `enrolledAt`, `revokedAt`; a code
 * carries `site`, `issuedAt`, `expiresAt` (epoch ms), `usedAt`, `agentId`; a nonce `expiresAt`
 * (epoch ms). Codes and nonces carry `ttl` (epoch seconds, the table's TimeToLive attribute):
 * DynamoDB deletes them some time after it passes; correctness never depends on that deletion,
 * because every condition also compares `expiresAt`.
 *
 * Exactly once, without transactions (one conditional write per item):
 * - a code is spent by one conditional UpdateItem (`attribute_not_exists(usedAt) AND expiresAt >
 *   :now`): of two concurrent enrollments with the same code exactly one wins;
 * - a certificate is enrolled once: its claim item is a conditional put (`attribute_not_exists`),
 *   made before the code is spent and deleted again if the code turns out spent or expired; a claim
 *   left by a crash between the two writes (no agent item, older than a minute) is taken over;
 * - a nonce is a conditional put (`attribute_not_exists(pk) OR expiresAt < :now`).
 * A crash between spending the code and writing the agent leaves the code used and no agent: the
 * admin issues a new code.
 */
import { createHash, randomBytes } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { checkEnrollment } from '../../core/model/enrollment.ts';
import {
  type AgentRecord,
  type AgentRegistry,
  type EnrollmentCode,
  EnrollmentError,
  type SiteInventory,
  wrongSiteRefusal,
} from '../../core/ports/agents.ts';

/** The table's TimeToLive attribute (epoch seconds); infra/ enables it. */
export const ttlAttribute = 'ttl';

/** Used codes are kept this long after they expire (audit), then DynamoDB's TTL removes them. */
const codeRetentionMs = 30 * 86_400_000;
/** A certificate claim without its agent item, older than this, was left by a crash. */
const staleClaimMs = 60_000;

const agentKey = (id: string) => ({ pk: `AGENT#${id}`, sk: 'AGENT' });
const certKey = (sha: string) => ({ pk: `AGENTCERT#${sha}`, sk: 'AGENTCERT' });
const codeKey = (hash: string) => ({ pk: `ENROLLCODE#${hash}`, sk: 'ENROLLCODE' });
const nonceKey = (agentId: string, nonce: string) => ({ pk: `NONCE#${agentId}`, sk: nonce });
const inventoryKey = (site: string) => ({ pk: `SITE#${site}`, sk: 'INVENTORY' });

/** The same normalisation as the SQLite registry: codes are typed by people. */
const hashCode = (code: string): string =>
  createHash('sha256').update(code.trim().toUpperCase().replaceAll('-', '')).digest('hex');

/** A code a person can type: 4 groups of 5 base32 characters (100 bits). */
function newCode(): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  const chars = [...randomBytes(20)].map((b) => alphabet[b % 32]).join('');
  return (chars.match(/.{5}/g) ?? []).join('-');
}

const epochSeconds = (ms: number): number => Math.ceil(ms / 1000);

function conditionFailed(err: unknown): boolean {
  return err instanceof ConditionalCheckFailedException;
}

function toRecord(i: Record<string, unknown>): AgentRecord {
  const revokedAt = i.revokedAt as string | undefined;
  return {
    id: i.id as string,
    site: i.site as string,
    name: i.name as string,
    certSha256: i.certSha256 as string,
    certPem: i.certPem as string,
    enrolledAt: i.enrolledAt as string,
    revoked: revokedAt !== undefined,
    ...(revokedAt ? { revokedAt } : {}),
  };
}

export interface DynamoAgentRegistryOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
}

export class DynamoAgentRegistry implements AgentRegistry {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;

  constructor(options: DynamoAgentRegistryOptions) {
    this.doc = DynamoDBDocumentClient.from(options.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
    this.table = options.tableName;
  }

  private async getItem(key: Record<string, string>): Promise<Record<string, unknown> | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: key, ConsistentRead: true }),
    );
    return out.Item;
  }

  async issueCode(site: string, ttlMs: number, now: Date): Promise<EnrollmentCode> {
    // Before anything is stored: a site under the one rule, a lifetime of at most 30 days.
    checkEnrollment(site, ttlMs);
    const code = newCode();
    const expiresAt = now.getTime() + ttlMs;
    await this.doc.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          ...codeKey(hashCode(code)),
          site,
          issuedAt: now.toISOString(),
          expiresAt,
          [ttlAttribute]: epochSeconds(expiresAt + codeRetentionMs),
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
    return { code, site, expiresAt: new Date(expiresAt).toISOString() };
  }

  /** Why a code cannot be spent (read again after a lost conditional update). */
  private async refusal(hash: string, now: Date): Promise<EnrollmentError> {
    const row = await this.getItem(codeKey(hash));
    if (!row) return new EnrollmentError('unknown', 'unknown enrollment code; ask the admin for a new one');
    if (row.usedAt !== undefined) {
      return new EnrollmentError(
        'used',
        `this enrollment code was already used (${String(row.usedAt)}); a code enrolls one agent, once`,
      );
    }
    const expiresAt = row.expiresAt as number;
    if (expiresAt <= now.getTime()) {
      return new EnrollmentError(
        'expired',
        `this enrollment code expired at ${new Date(expiresAt).toISOString()}; ask the admin for a new one`,
      );
    }
    return new EnrollmentError('used', 'this enrollment code was just used by another enrollment');
  }

  private taken(agentId: string): EnrollmentError {
    return new EnrollmentError(
      'certificate-taken',
      `this certificate is already enrolled as agent '${agentId}'; a re-enrolled agent needs a new key (remove its directory)`,
    );
  }

  /** Claims the certificate for `agentId`, taking over a claim a crash left behind. */
  private async claimCertificate(certSha256: string, agentId: string, now: Date): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const existing = await this.getItem(certKey(certSha256));
      if (existing) {
        const holder = existing.agentId as string;
        const stale =
          now.getTime() - Date.parse(existing.claimedAt as string) > staleClaimMs &&
          !(await this.getItem(agentKey(holder)));
        if (!stale) throw this.taken(holder);
        await this.releaseCertificate(certSha256, holder);
      }
      try {
        await this.doc.send(
          new PutCommand({
            TableName: this.table,
            Item: { ...certKey(certSha256), agentId, claimedAt: now.toISOString() },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        );
        return;
      } catch (err) {
        if (!conditionFailed(err)) throw err;
      }
    }
    const holder = (await this.getItem(certKey(certSha256)))?.agentId;
    throw this.taken(String(holder ?? 'another agent'));
  }

  private async releaseCertificate(certSha256: string, agentId: string): Promise<void> {
    try {
      await this.doc.send(
        new DeleteCommand({
          TableName: this.table,
          Key: certKey(certSha256),
          ConditionExpression: 'agentId = :id',
          ExpressionAttributeValues: { ':id': agentId },
        }),
      );
    } catch (err) {
      if (!conditionFailed(err)) throw err;
    }
  }

  async enroll(
    input: { code: string; certPem: string; certSha256: string; name: string; id: string; site?: string },
    now: Date,
  ): Promise<AgentRecord> {
    const hash = hashCode(input.code);
    // Refuse early (and without side effects) what is already refused; the writes below decide races.
    const row = await this.getItem(codeKey(hash));
    if (row && input.site !== undefined && row.site !== input.site)
      throw wrongSiteRefusal(String(row.site), input.site);
    if (!row || row.usedAt !== undefined || (row.expiresAt as number) <= now.getTime()) {
      throw await this.refusal(hash, now);
    }
    await this.claimCertificate(input.certSha256, input.id, now);
    let site: string;
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: codeKey(hash),
          UpdateExpression: 'SET usedAt = :at, agentId = :id',
          ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(usedAt) AND expiresAt > :now',
          ExpressionAttributeValues: { ':at': now.toISOString(), ':id': input.id, ':now': now.getTime() },
          ReturnValues: 'ALL_NEW',
        }),
      );
      site = out.Attributes?.site as string;
    } catch (err) {
      await this.releaseCertificate(input.certSha256, input.id);
      if (conditionFailed(err)) throw await this.refusal(hash, now);
      throw err;
    }
    const item = {
      ...agentKey(input.id),
      gsi1pk: 'AGENTS',
      gsi1sk: `${now.toISOString()}#${input.id}`,
      id: input.id,
      site,
      name: input.name,
      certSha256: input.certSha256,
      certPem: input.certPem,
      enrolledAt: now.toISOString(),
    };
    await this.doc.send(
      new PutCommand({ TableName: this.table, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }),
    );
    return toRecord(item);
  }

  async get(agentId: string): Promise<AgentRecord | undefined> {
    const item = await this.getItem(agentKey(agentId));
    return item ? toRecord(item) : undefined;
  }

  async list(site?: string): Promise<readonly AgentRecord[]> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: 'gsi1',
          KeyConditionExpression: 'gsi1pk = :agents',
          ...(site === undefined
            ? { ExpressionAttributeValues: { ':agents': 'AGENTS' } }
            : {
                FilterExpression: '#site = :site',
                ExpressionAttributeNames: { '#site': 'site' },
                ExpressionAttributeValues: { ':agents': 'AGENTS', ':site': site },
              }),
          ExclusiveStartKey: start,
        }),
      );
      items.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey;
    } while (start);
    return items.map(toRecord);
  }

  async revoke(agentId: string, now: Date): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: agentKey(agentId),
          UpdateExpression: 'SET revokedAt = if_not_exists(revokedAt, :at)',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':at': now.toISOString() },
        }),
      );
      return true;
    } catch (err) {
      if (conditionFailed(err)) return false;
      throw err;
    }
  }

  async useNonce(agentId: string, nonce: string, now: Date, windowMs: number): Promise<boolean> {
    const t = now.getTime();
    // A request may be up to `windowMs` old or new: keep its nonce for twice that.
    const expiresAt = t + 2 * windowMs;
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...nonceKey(agentId, nonce), expiresAt, [ttlAttribute]: epochSeconds(expiresAt) },
          ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :now',
          ExpressionAttributeValues: { ':now': t },
        }),
      );
      return true;
    } catch (err) {
      if (conditionFailed(err)) return false;
      throw err;
    }
  }

  async putInventory(inventory: SiteInventory): Promise<void> {
    await this.doc.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          ...inventoryKey(inventory.site),
          agentId: inventory.agentId,
          reportedAt: inventory.reportedAt,
          // An item is at most 400 KB: the inventory is kept gzipped (about a tenth of its JSON, so
          // some 10,000 VMs fit; the agent API takes up to 4 MiB of it).
          gz: gzipSync(JSON.stringify(inventory.items)),
        },
      }),
    );
  }

  async getInventory(site: string): Promise<SiteInventory | undefined> {
    const item = await this.getItem(inventoryKey(site));
    return item
      ? {
          site,
          agentId: item.agentId as string,
          reportedAt: item.reportedAt as string,
          // `data`: plain JSON, as inventories were stored before they were gzipped.
          items: JSON.parse(
            item.gz ? gunzipSync(item.gz as Uint8Array).toString('utf8') : (item.data as string),
          ) as unknown[],
        }
      : undefined;
  }
}
