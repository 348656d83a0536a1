import { type FieldIssue, ValidationError } from '../errors.ts';
import { siteNameRule, siteSchema } from './transfer.ts';

/**
 * What an enrollment code may be issued for (issue #18): a site under the one site-name rule, and
 * a lifetime of at least a second and at most 30 days. Every way of issuing a code (Slack, `odt
 * agent enroll`, the admin APIs) and both registries check it before anything is stored.
 */
export const maxEnrollmentTtlMs = 30 * 86_400_000;
const minEnrollmentTtlMs = 1000;

/** Why `site` breaks the site-name rule, in words that name the rule; undefined when it keeps it. */
export function siteRefusal(site: unknown): string | undefined {
  if (siteSchema.safeParse(site).success) return undefined;
  return `${typeof site === 'string' ? `'${site}'` : 'none'} is refused: ${siteNameRule}`;
}

/** The site name checked against the rule; ValidationError (field `site`) naming the rule otherwise. */
export function checkSite(site: unknown, what = 'The site'): string {
  const refused = siteRefusal(site);
  if (refused) throw new ValidationError(what, [{ path: 'site', message: refused }]);
  return site as string;
}

/** Site and TTL of an enrollment code, checked; ValidationError naming each bad one. */
export function checkEnrollment(site: unknown, ttlMs: unknown): { site: string; ttlMs: number } {
  const issues: FieldIssue[] = [];
  const refused = siteRefusal(site);
  if (refused) issues.push({ path: 'site', message: refused });
  const ttl = typeof ttlMs === 'number' ? ttlMs : Number.NaN;
  if (!Number.isInteger(ttl) || ttl < minEnrollmentTtlMs || ttl > maxEnrollmentTtlMs) {
    issues.push({
      path: 'ttl',
      message: `${Number.isFinite(ttl) ? `${ttl} ms` : String(ttlMs)} is out of bounds: an enrollment code lives from 1s to 30d (e.g. 15m, 1h, 7d)`,
    });
  }
  if (issues.length > 0) throw new ValidationError('The enrollment', issues);
  return { site: site as string, ttlMs: ttl };
}
