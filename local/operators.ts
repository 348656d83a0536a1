/**
 * The people who operate `odt serve` from the CLI, each with a token the server issued
 * (`odt operator add <name>`): a request that carries one acts as that operator, and the name the
 * custody log records is the one the server looked up, not one the CLI asserted (issue 22).
 * Tokens are stored as their SHA-256 only, in the control plane's SQLite file.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type Database from 'better-sqlite3';
import { ConflictError, NotFoundError, ValidationError } from '../core/index.ts';

const schema = `
CREATE TABLE IF NOT EXISTS operators (
  name         TEXT PRIMARY KEY,
  token_sha256 TEXT NOT NULL UNIQUE,
  added_at     TEXT NOT NULL
) STRICT;
`;

/** A name as it appears in the custody log and in `--approvers`: no spaces, no control characters. */
const nameRule = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

/** The prefix tells an operator token from the admin token at a glance (and in a leaked log). */
const tokenPrefix = 'odt_op_';

const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

export interface OperatorRecord {
  readonly name: string;
  readonly addedAt: string;
}

export class SqliteOperators {
  constructor(private readonly db: Database.Database) {
    db.exec(schema);
  }

  /** Adds `name` and returns its token, shown once. Refuses a name that exists (CONFLICT). */
  add(name: string, now: Date): { name: string; token: string } {
    if (!nameRule.test(name))
      throw new ValidationError('The operator', [
        {
          path: 'name',
          message: 'use 1-64 letters, digits, dots, dashes, @ or _, starting with a letter or digit',
        },
      ]);
    const token = `${tokenPrefix}${randomBytes(32).toString('base64url')}`;
    const r = this.db
      .prepare('INSERT INTO operators (name, token_sha256, added_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING')
      .run(name, sha256(token).toString('hex'), now.toISOString());
    if (r.changes === 0)
      throw new ConflictError(
        `operator '${name}' exists; \`odt operator remove ${name}\` first to issue a new token`,
      );
    return { name, token };
  }

  /** The operator a token belongs to, or undefined. */
  nameOf(token: string): string | undefined {
    if (!token.startsWith(tokenPrefix)) return undefined;
    const hash = sha256(token);
    const row = this.db
      .prepare('SELECT name, token_sha256 FROM operators WHERE token_sha256 = ?')
      .get(hash.toString('hex')) as { name: string; token_sha256: string } | undefined;
    // The lookup is by hash; the comparison of the hash found is constant-time all the same.
    if (!row || !timingSafeEqual(Buffer.from(row.token_sha256, 'hex'), hash)) return undefined;
    return row.name;
  }

  list(): OperatorRecord[] {
    return (
      this.db.prepare('SELECT name, added_at FROM operators ORDER BY name').all() as {
        name: string;
        added_at: string;
      }[]
    ).map((r) => ({ name: r.name, addedAt: r.added_at }));
  }

  count(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM operators').get() as { n: number }).n;
  }

  remove(name: string): void {
    if (this.db.prepare('DELETE FROM operators WHERE name = ?').run(name).changes === 0)
      throw new NotFoundError('operator', name);
  }
}
