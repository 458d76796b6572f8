import { occupantAt } from '../core/index.ts';
import type { Meter, Site } from '../core/index.ts';

/**
 * The account tag of a tenant meter's bucket starting at `start`: the occupant then
 * (billing.md section 11; the landlord when vacant). Buckets are cut at move instants, so a
 * bucket has one. Usage and Grafana read it; the provisional settlement attributes by
 * instant through the core, not by this tag.
 */
export function bucketAccount(site: Site, meter: Meter, start: number): { account?: string } {
  if (meter.role !== 'tenant') return {};
  const a = occupantAt(site, meter, start).account;
  return a ? { account: a } : {};
}
