import stringWidth from 'string-width';
import type { Advice, BillRun, Reconciliation } from '../core/index.ts';

/**
 * `--format table`: the JSON of bill, advise and reconcile as aligned text for a person
 * at a terminal (issue 11); JSON stays the default for scripts. Widths are display widths
 * (string-width: a CJK character takes two columns), numbers are right-aligned.
 */
export function table(header: readonly string[], rows: readonly (readonly string[])[], right: readonly boolean[] = [], indent = '  '): string {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => stringWidth(r[c] ?? ''))));
  const pad = (text: string, c: number) => {
    const gap = ' '.repeat(widths[c] - stringWidth(text));
    return right[c] ? gap + text : text + gap;
  };
  return all.map((r) => `${indent}${r.map((cell, c) => pad(cell ?? '', c)).join('  ').trimEnd()}`).join('\n') + '\n';
}

/** "A101  Shop 101", or the id alone when the site file gives no name. */
const heading = (id: string, names: ReadonlyMap<string, string>) => (names.get(id) && names.get(id) !== id ? `${id}  ${names.get(id)}` : id);

const NUM = (n: number, rightFrom: number) => Array.from({ length: n }, (_, i) => i >= rightFrom);

export function billTable(run: BillRun, names: ReadonlyMap<string, string>): string {
  let out = `Bill ${run.site}  ${run.from} .. ${run.to} (to is exclusive), ${run.currency}\n`;
  for (const a of run.accounts) {
    out += `\n${heading(a.account, names)}\n`;
    const rows = a.lines.map((l) => [l.kind, l.pool ?? '', l.period, l.kwh, l.price, l.amount]);
    rows.push(['total', '', '', kwhSum(a.kwh), '', a.total_amount]);
    out += table(['kind', 'pool', 'period', 'kWh', 'price', 'amount'], rows, NUM(6, 3));
    out += `  opening ${a.opening_balance}   payments ${a.payments}   charges ${a.total_amount}   closing ${a.closing_balance}\n`;
  }
  const m = run.master;
  out += `\nMaster\n${table(['kWh', 'tenants', 'common', 'loss', 'loss allocated', 'abnormal', 'loss rate'], [[m.kwh, m.tenant_kwh, m.common_kwh, m.loss_kwh, m.loss_allocated_kwh, m.loss_abnormal_kwh, m.loss_rate]], NUM(7, 0))}`;
  if (run.quality.length > 0) {
    out += `\nData quality (${run.quality.length})\n${table(['time', 'meter', 'kind', 'detail'], run.quality.map((q) => [q.time, q.meter, q.kind, q.detail]))}`;
  }
  return out;
}

/** kWh texts (3 decimals) added exactly, as integers of Wh. */
function kwhSum(k: { own: string; common: string; loss: string }): string {
  const wh = [k.own, k.common, k.loss].reduce((s, x) => s + BigInt(x.replace('.', '').replace(/^(-?)0+(?=\d)/, '$1')), 0n);
  const neg = wh < 0n;
  const t = (neg ? -wh : wh).toString().padStart(4, '0');
  return `${neg ? '-' : ''}${t.slice(0, -3)}.${t.slice(-3)}`;
}

export function adviceTable(advice: Advice, names: ReadonlyMap<string, string>): string {
  let out = `Load-shift advice ${advice.site}  ${advice.from} .. ${advice.to} (${advice.days} days), ${advice.currency}; movable share of sharp+peak ${advice.shift_share}\n`;
  for (const a of advice.accounts) {
    out += `\n${heading(a.account, names)}\n`;
    out += table(['period', 'kWh', 'kWh per day', 'price'], a.periods.map((p) => [p.period, p.kwh, p.kwh_per_day, p.price]), NUM(4, 1));
    out += `  sharp+peak ${a.peak_kwh} kWh; moving ${a.shift_kwh} kWh to ${a.shift_to} saves ${a.saving}; night base load ${a.night_base_kw} kW\n`;
  }
  return out;
}

export function reconcileTable(r: Reconciliation): string {
  let out = `Recovery ${r.site}  ${r.from} .. ${r.to}, ${r.currency}\n\nUtility (${r.utility.tariff}) for the master meter\n`;
  out += table(['period', 'kWh', 'price', 'amount'], [...r.utility.lines.map((l) => [l.period, l.kwh, l.price, l.amount]), ['total', r.utility.kwh, r.utility.average_price, r.utility.amount]], NUM(4, 1));
  out += `\nTenants ${r.tenants.kwh} kWh, ${r.tenants.amount} (average ${r.tenants.average_price}); recovery rate ${r.recovery_rate}, unrecovered ${r.unrecovered}\n`;
  out += `\nAccounts (cap: what the utility would charge for the account's own mix x (1 + ${r.markup_cap}))\n`;
  out += table(
    ['account', 'kWh', 'amount', 'average', 'utility', 'cap', 'over cap'],
    r.accounts.map((a) => [a.account, a.kwh, a.amount, a.average_price, a.utility_amount, a.cap_amount, a.over_cap ? 'OVER' : 'ok']),
    [false, true, true, true, true, true, false],
  );
  return out;
}
