import { metersOf, multiplierAt, zoneOf } from '../core/index.ts';
import type { Account, Site } from '../core/index.ts';
import { kwhText, moneyText } from './format.ts';
import type { ReadModel } from './data/read-model.ts';
import { esc } from './text-escape.ts';

/**
 * The statement section of billing.md section 11: when the account moved in or out, the
 * deposit it holds (apart from the prepaid balance), and the meters it occupied in the
 * range with their multipliers and replacements, so every kWh on the statement can be
 * traced to raw registers x multiplier. Only present when there is something to say (moves,
 * a deposit, a multiplier other than 1 or a replacement): other statements are unchanged.
 */
export interface TenancySection {
  readonly move_in: string | null;
  readonly move_out: string | null;
  /** Deposits held at the end of the range. */
  readonly deposit: string;
  readonly meters: readonly {
    readonly meter: string;
    /** The multiplier at the start of the range. */
    readonly multiplier: number;
    /** Replacements and CT swaps inside the range. */
    readonly changes: readonly { readonly at: string; readonly final_kwh: string; readonly initial_kwh: string; readonly multiplier: number; readonly estimated: boolean; readonly serial?: string }[];
  }[];
}

export async function tenancySection(read: ReadModel, site: Site, account: Account, fromMs: number, toMs: number): Promise<{ tenancy?: TenancySection }> {
  const zone = zoneOf(site.timezone);
  const ledger = await read.ledger(site, account.id);
  const deposits = ledger.filter((r) => r.kind === 'deposit' && r.time < toMs);
  const meters = metersOf(site, account.id, fromMs, toMs).map((m) => ({
    meter: m.id,
    multiplier: multiplierAt(m, fromMs),
    changes: (m.changes ?? [])
      .filter((c) => c.at >= fromMs && c.at < toMs)
      .map((c) => ({ at: zone.format(c.at), final_kwh: kwhText(c.finalWh), initial_kwh: kwhText(c.initialWh), multiplier: c.multiplier, estimated: c.estimated, ...(c.serial !== undefined ? { serial: c.serial } : {}) })),
  }));
  const moved = account.moveIn !== undefined || account.moveOut !== undefined;
  if (!moved && deposits.length === 0 && meters.every((m) => m.multiplier === 1 && m.changes.length === 0)) return {};
  return {
    tenancy: {
      move_in: account.moveIn !== undefined ? zone.format(account.moveIn) : null,
      move_out: account.moveOut !== undefined ? zone.format(account.moveOut) : null,
      deposit: moneyText(deposits.reduce((s, r) => s + r.fen, 0)),
      meters,
    },
  };
}

const TEXT = {
  zh: { moveIn: '入住', moveOut: '退租', deposit: '押金（不计入余额）', meter: '电表', mult: '倍率', change: '换表' },
  en: { moveIn: 'Moved in', moveOut: 'Moved out', deposit: 'Deposit held (not in the balance)', meter: 'Meter', mult: 'multiplier', change: 'replaced' },
} as const;


/** The section as a paragraph of the printable statement ('' when absent). */
export function tenancyHtml(tenancy: TenancySection | undefined, lang: 'zh' | 'en'): string {
  if (!tenancy) return '';
  const t = TEXT[lang];
  const parts: string[] = [];
  if (tenancy.move_in) parts.push(`${t.moveIn}: ${esc(tenancy.move_in)}`);
  if (tenancy.move_out) parts.push(`${t.moveOut}: ${esc(tenancy.move_out)}`);
  parts.push(`${t.deposit}: ${tenancy.deposit}`);
  for (const m of tenancy.meters) {
    const changes = m.changes.map((c) => `${t.change} ${esc(c.at)}: ${c.final_kwh} → ${c.initial_kwh} kWh, ${t.mult} ${c.multiplier}`).join('; ');
    parts.push(`${t.meter} ${esc(m.meter)}: ${t.mult} ${m.multiplier}${changes ? ` (${changes})` : ''}`);
  }
  return `<p class="meta">${parts.join(' · ')}</p>\n`;
}
