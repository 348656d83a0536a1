/**
 * Enrolled agents, one-time enrollment codes, used nonces and site inventories, in the same
 * SQLite file as the store (`SqliteStore.open(stateDir).db`). Codes are stored as their SHA-256
 * only; spending one is a single conditional UPDATE inside an IMMEDIATE transaction, so of two
 * concurrent enrollments with the same code exactly one wins, across processes too.
 */
import { createHash, randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import { checkEnrollment } from '../../core/model/enrollment.ts';
import {
  type AgentRecord,
  type AgentRegistry,
  type EnrollmentCode,
  EnrollmentError,
  type SiteInventory,
  wrongSiteRefusal,
} from '../../core/ports/agents.ts';

const schema = `
CREATE TABLE IF NOT EXISTS agents (
  id          TEXT PRIMARY KEY,
  site        TEXT NOT NULL,
  name        TEXT NOT NULL,
  cert_sha256 TEXT NOT NULL UNIQUE,
  cert_pem    TEXT NOT NULL,
  enrolled_at TEXT NOT NULL,
  revoked_at  TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS agent_enrollment_codes (
  code_sha256 TEXT PRIMARY KEY,
  site        TEXT NOT NULL,
  issued_at   TEXT NOT NULL,
  expires_at  INTEGER NOT NULL,
  used_at     TEXT,
  agent_id    TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS agent_nonces (
  agent_id   TEXT NOT NULL,
  nonce      TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (agent_id, nonce)
) STRICT;
CREATE INDEX IF NOT EXISTS agent_nonces_by_expiry ON agent_nonces (expires_at);
CREATE TABLE IF NOT EXISTS site_inventories (
  site        TEXT PRIMARY KEY,
  agent_id    TEXT NOT NULL,
  reported_at TEXT NOT NULL,
  body        TEXT NOT NULL
) STRICT;
`;

interface AgentRow {
  id: string;
  site: string;
  name: string;
  cert_sha256: string;
  cert_pem: string;
  enrolled_at: string;
  revoked_at: string | null;
}

const toRecord = (r: AgentRow): AgentRecord => ({
  id: r.id,
  site: r.site,
  name: r.name,
  certSha256: r.cert_sha256,
  certPem: r.cert_pem,
  enrolledAt: r.enrolled_at,
  revoked: r.revoked_at !== null,
  ...(r.revoked_at ? { revokedAt: r.revoked_at } : {}),
});

const hashCode = (code: string): string =>
  createHash('sha256').update(code.trim().toUpperCase().replaceAll('-', '')).digest('hex');

/** A code a person can type: 4 groups of 5 base32 characters (100 bits). */
function newCode(): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  const bytes = randomBytes(20);
  const chars = [...bytes].map((b) => alphabet[b % 32]).join('');
  return chars.match(/.{5}/g)!.join('-');
}

export class SqliteAgentRegistry implements AgentRegistry {
  private lastPurge = 0;

  constructor(private readonly db: Database.Database) {
    db.exec(schema);
  }

  async issueCode(site: string, ttlMs: number, now: Date): Promise<EnrollmentCode> {
    // Before anything is stored: a site under the one rule, a lifetime of at most 30 days.
    checkEnrollment(site, ttlMs);
    const code = newCode();
    const expiresAt = now.getTime() + ttlMs;
    this.db
      .prepare(
        'INSERT INTO agent_enrollment_codes (code_sha256, site, issued_at, expires_at) VALUES (?, ?, ?, ?)',
      )
      .run(hashCode(code), site, now.toISOString(), expiresAt);
    return { code, site, expiresAt: new Date(expiresAt).toISOString() };
  }

  async enroll(
    input: { code: string; certPem: string; certSha256: string; name: string; id: string; site?: string },
    now: Date,
  ): Promise<AgentRecord> {
    const hash = hashCode(input.code);
    return this.db
      .transaction((): AgentRecord => {
        const row = this.db
          .prepare('SELECT site, expires_at, used_at FROM agent_enrollment_codes WHERE code_sha256 = ?')
          .get(hash) as { site: string; expires_at: number; used_at: string | null } | undefined;
        if (!row)
          throw new EnrollmentError('unknown', 'unknown enrollment code; ask the admin for a new one');
        // Before anything is spent: an agent started for another site keeps the code usable.
        if (input.site !== undefined && input.site !== row.site) throw wrongSiteRefusal(row.site, input.site);
        if (row.used_at !== null) {
          throw new EnrollmentError(
            'used',
            `this enrollment code was already used (${row.used_at}); a code enrolls one agent, once`,
          );
        }
        if (row.expires_at <= now.getTime()) {
          throw new EnrollmentError(
            'expired',
            `this enrollment code expired at ${new Date(row.expires_at).toISOString()}; ask the admin for a new one`,
          );
        }
        const taken = this.db.prepare('SELECT id FROM agents WHERE cert_sha256 = ?').get(input.certSha256) as
          | { id: string }
          | undefined;
        if (taken) {
          throw new EnrollmentError(
            'certificate-taken',
            `this certificate is already enrolled as agent '${taken.id}'; a re-enrolled agent needs a new key (remove its directory)`,
          );
        }
        this.db
          .prepare('UPDATE agent_enrollment_codes SET used_at = ?, agent_id = ? WHERE code_sha256 = ?')
          .run(now.toISOString(), input.id, hash);
        const rec: AgentRow = {
          id: input.id,
          site: row.site,
          name: input.name,
          cert_sha256: input.certSha256,
          cert_pem: input.certPem,
          enrolled_at: now.toISOString(),
          revoked_at: null,
        };
        this.db
          .prepare(
            'INSERT INTO agents (id, site, name, cert_sha256, cert_pem, enrolled_at, revoked_at) VALUES (@id, @site, @name, @cert_sha256, @cert_pem, @enrolled_at, @revoked_at)',
          )
          .run(rec);
        return toRecord(rec);
      })
      .immediate();
  }

  async get(agentId: string): Promise<AgentRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM agents WHERE id = ?').get(agentId) as AgentRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  async list(site?: string): Promise<readonly AgentRecord[]> {
    const rows = (
      site === undefined
        ? this.db.prepare('SELECT * FROM agents ORDER BY enrolled_at, id').all()
        : this.db.prepare('SELECT * FROM agents WHERE site = ? ORDER BY enrolled_at, id').all(site)
    ) as AgentRow[];
    return rows.map(toRecord);
  }

  async revoke(agentId: string, now: Date): Promise<boolean> {
    const r = this.db
      .prepare('UPDATE agents SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?')
      .run(now.toISOString(), agentId);
    return r.changes > 0;
  }

  async useNonce(agentId: string, nonce: string, now: Date, windowMs: number): Promise<boolean> {
    const t = now.getTime();
    if (t - this.lastPurge > 60_000) {
      this.db.prepare('DELETE FROM agent_nonces WHERE expires_at < ?').run(t);
      this.lastPurge = t;
    }
    // A request may be up to `windowMs` old or new: keep its nonce for twice that.
    const r = this.db
      .prepare(
        `INSERT INTO agent_nonces (agent_id, nonce, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (agent_id, nonce) DO UPDATE SET expires_at = excluded.expires_at
           WHERE agent_nonces.expires_at < ?`,
      )
      .run(agentId, nonce, t + 2 * windowMs, t);
    return r.changes > 0;
  }

  async putInventory(inventory: SiteInventory): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO site_inventories (site, agent_id, reported_at, body) VALUES (?, ?, ?, ?)
         ON CONFLICT (site) DO UPDATE SET agent_id = excluded.agent_id, reported_at = excluded.reported_at, body = excluded.body`,
      )
      .run(inventory.site, inventory.agentId, inventory.reportedAt, JSON.stringify(inventory.items));
  }

  async getInventory(site: string): Promise<SiteInventory | undefined> {
    const row = this.db.prepare('SELECT * FROM site_inventories WHERE site = ?').get(site) as
      | { site: string; agent_id: string; reported_at: string; body: string }
      | undefined;
    return row
      ? {
          site: row.site,
          agentId: row.agent_id,
          reportedAt: row.reported_at,
          items: JSON.parse(row.body) as unknown[],
        }
      : undefined;
  }
}
