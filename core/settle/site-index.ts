import type { Site } from '../site/model.ts';
import type { LocalDate } from '../tou/local-date.ts';
import { versionIndexOn } from '../tou/schedule.ts';
import type { Period } from '../tou/schedule.ts';
import { byteOrder, parseFixed, priceMicro } from '../units.ts';

/**
 * Integer views of a site the settlement needs often: accounts sorted by id, areas in
 * 10^-4 m2, the loss rate in millionths, prices in micro-CNY/kWh per (tariff, date).
 * Built once per Site object (WeakMap), pure.
 */
export interface SiteIndex {
  readonly site: Site;
  /** Account ids sorted by byte order (billing.md section 6 ordering). */
  readonly accountIds: readonly string[];
  readonly accountPos: ReadonlyMap<string, number>;
  /** area_m2 x 10^4 per account, in accountIds order. */
  readonly area: readonly number[];
  /** loss.normal_rate in millionths. */
  readonly normalRatePpm: number;
  /** Per account (accountIds order): its tariff id. */
  readonly tariffOf: readonly string[];
  /** Pools sorted by id, with their account positions. */
  readonly pools: readonly { readonly id: string; readonly method: Site['loss']['method']; readonly members: readonly number[] }[];
  /** Position of site.landlordAccount (billing.md section 11), if the site names one. */
  readonly landlord?: number;
  /** Micro-CNY/kWh price of a tariff's version in force on a date, or undefined. */
  price(tariff: string, date: LocalDate, period: Period): number | undefined;
}

const cache = new WeakMap<Site, SiteIndex>();

export function siteIndex(site: Site): SiteIndex {
  const hit = cache.get(site);
  if (hit) return hit;
  const accounts = [...site.accounts].sort((a, b) => byteOrder(a.id, b.id));
  const accountIds = accounts.map((a) => a.id);
  const accountPos = new Map(accountIds.map((id, i) => [id, i]));
  const area = accounts.map((a) => parseFixed(a.areaM2, 4) ?? 0);
  const normalRatePpm = parseFixed(site.loss.normalRate, 6) ?? 0;
  const tariffs = new Map(site.tariffs.map((t) => [t.id, t]));
  const priceCache = new Map<string, Partial<Record<Period, number>> | null>();
  const pools = [...site.pools]
    .sort((a, b) => byteOrder(a.id, b.id))
    .map((p) => ({ id: p.id, method: p.method, members: p.accounts.map((a) => accountPos.get(a)!).sort((x, y) => x - y) }));
  const index: SiteIndex = {
    site,
    accountIds,
    accountPos,
    area,
    normalRatePpm,
    tariffOf: accounts.map((a) => a.tariff),
    pools,
    ...(site.landlordAccount !== undefined ? { landlord: accountPos.get(site.landlordAccount) } : {}),
    price(tariff, date, period) {
      const key = `${tariff}\u0000${date}`;
      let prices = priceCache.get(key);
      if (prices === undefined) {
        const t = tariffs.get(tariff);
        const vi = t ? versionIndexOn(t, date) : -1;
        if (!t || vi < 0) prices = null;
        else {
          const out: Partial<Record<Period, number>> = {};
          for (const [p, text] of Object.entries(t.versions[vi].prices)) out[p as Period] = priceMicro(text);
          prices = out;
        }
        priceCache.set(key, prices);
      }
      return prices?.[period];
    },
  };
  cache.set(site, index);
  return index;
}
