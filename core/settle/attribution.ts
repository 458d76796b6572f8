import type { Site } from '../site/model.ts';
import { siteIndex } from './site-index.ts';

/**
 * Whose energy a meter's is (billing.md section 4): the master sum M, an account's own T_i,
 * or a pool's C_k. The offline settlement (settleRange, from raw readings) and the
 * provisional one (from the workers' 15-minute buckets) both attribute through this, so
 * the two always build the same cells.
 */
export type MeterTarget = { readonly kind: 'master' } | { readonly kind: 'tenant'; readonly account: number } | { readonly kind: 'pool'; readonly pool: number };

const cache = new WeakMap<Site, readonly MeterTarget[]>();

/** Per meter (site.meters order): its target, accounts and pools as positions in siteIndex order. */
export function meterTargets(site: Site): readonly MeterTarget[] {
  const hit = cache.get(site);
  if (hit) return hit;
  const idx = siteIndex(site);
  const poolPos = new Map(idx.pools.map((p, k) => [p.id, k]));
  const out = site.meters.map((m): MeterTarget => {
    if (m.role === 'master') return { kind: 'master' };
    if (m.role === 'tenant') return { kind: 'tenant', account: idx.accountPos.get(m.account!)! };
    return { kind: 'pool', pool: poolPos.get(m.pool!)! };
  });
  cache.set(site, out);
  return out;
}
