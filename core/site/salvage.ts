import type { z } from 'zod';
import { accountSchema, meterSchema, poolSchema, siteFileSchema, tariffSchema } from './schema.ts';
import type { SiteFile } from './schema.ts';

/**
 * What can still be checked in a site file that fails its schema (issue 11: a schema error
 * must not hide the other problems). Each section, and each element of the lists, is
 * parsed on its own; the elements that pass are kept for the cross-checks of validate.ts,
 * and the ids of those that fail still count as existing, so a reference to them is not
 * reported as unknown on top of their own error.
 */
export interface Salvage {
  readonly file: SiteFile;
  /** Ids of list elements that failed their schema (still referable). */
  readonly known: { readonly accounts: ReadonlySet<string>; readonly pools: ReadonlySet<string>; readonly tariffs: ReadonlySet<string> };
  /** Some meter failed its schema: "needs a master meter" cannot be judged. */
  readonly metersIncomplete: boolean;
  /** Per list, the file index of each kept element (issues point at the file's own index). */
  readonly index: Readonly<Record<'meters' | 'accounts' | 'pools' | 'tariffs', readonly number[]>>;
}

type Raw = Record<string, unknown>;

function list<S extends z.ZodType>(raw: unknown, schema: S): { kept: z.output<S>[]; index: number[]; failedIds: Set<string>; incomplete: boolean } {
  const kept: z.output<S>[] = [];
  const index: number[] = [];
  const failedIds = new Set<string>();
  if (!Array.isArray(raw)) return { kept, index, failedIds, incomplete: raw !== undefined };
  let incomplete = false;
  raw.forEach((item, i) => {
    const r = schema.safeParse(item);
    if (r.success) {
      kept.push(r.data);
      index.push(i);
    } else {
      incomplete = true;
      const id = (item as Raw | null)?.id;
      if (typeof id === 'string') failedIds.add(id);
    }
  });
  return { kept, index, failedIds, incomplete };
}

export function salvage(data: unknown): Salvage {
  const raw = (data && typeof data === 'object' && !Array.isArray(data) ? data : {}) as Raw;
  const shape = siteFileSchema.shape;
  const part = <S extends z.ZodType>(schema: S, value: unknown, fallback: z.output<S>): z.output<S> => {
    const r = schema.safeParse(value);
    return r.success ? r.data : fallback;
  };
  const meters = list(raw.meters, meterSchema);
  const accounts = list(raw.accounts ?? [], accountSchema);
  const pools = list(raw.pools ?? [], poolSchema);
  const tariffs = list(raw.tariffs ?? [], tariffSchema);
  const file: SiteFile = {
    site: part(shape.site, raw.site, { id: '?', timezone: 'UTC', currency: 'CNY', holidays: [] }),
    meters: meters.kept,
    accounts: accounts.kept,
    pools: pools.kept,
    loss: part(shape.loss, raw.loss, { normal_rate: '0', method: 'consumption' }),
    settlement: { interval: 'day' },
    tariffs: tariffs.kept,
    ...(raw.utility !== undefined ? { utility: part(shape.utility, raw.utility, undefined) } : {}),
  };
  return {
    file,
    known: { accounts: accounts.failedIds, pools: pools.failedIds, tariffs: tariffs.failedIds },
    metersIncomplete: meters.incomplete || !Array.isArray(raw.meters),
    index: { meters: meters.index, accounts: accounts.index, pools: pools.index, tariffs: tariffs.index },
  };
}

/** An issue path of the salvaged file, as a path of the file itself. */
export function fileIndexPath(s: Salvage, path: readonly PropertyKey[]): PropertyKey[] {
  const out = [...path];
  const listName = out[0] as keyof Salvage['index'];
  if (typeof out[1] === 'number' && s.index[listName]) out[1] = s.index[listName][out[1]] ?? out[1];
  return out;
}

/** The same for `meters[3]` style references inside a message. */
export function fileIndexText(s: Salvage, text: string): string {
  return text.replace(/\b(meters|accounts|pools|tariffs)\[(\d+)\]/g, (m, name: keyof Salvage['index'], i: string) => `${name}[${s.index[name][Number(i)] ?? i}]`);
}
