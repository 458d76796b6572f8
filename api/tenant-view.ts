import { metersOf } from '../core/index.ts';
import type { Account, Site } from '../core/index.ts';
import type { StatementOut } from './statement.ts';

/**
 * A tenant sees only its own account (issue 11): no other account id, name or figure, and
 * no other tenant's meter id, in any answer. Free texts written for managers (an
 * adjustment's reason names the meters whose late readings caused it) are redacted.
 */
export function redactForTenant(text: string, site: Site, account: Account): string {
  let out = text;
  // Its own meters are those it ever occupied (billing.md section 11: a meter may have had several occupants).
  const own = new Set(metersOf(site, account.id).map((m) => m.id));
  const others = [
    ...site.accounts.filter((a) => a.id !== account.id).flatMap((a) => [a.id, ...(a.name !== a.id ? [a.name] : [])]),
    ...site.meters.filter((m) => !own.has(m.id)).flatMap((m) => [m.id, ...(m.name !== m.id ? [m.name] : [])]),
  ].sort((a, b) => b.length - a.length); // longest first: "A1012" before "A101"
  for (const id of others) out = out.split(id).join('…');
  return out;
}

/** A statement as its tenant may see it: reasons redacted (pools carry a member count, never the members). */
export function tenantStatement(st: StatementOut, site: Site, account: Account): StatementOut {
  return {
    ...st,
    adjustments: st.adjustments.map((a) => ({ ...a, reason: redactForTenant(a.reason, site, account) })),
  };
}
