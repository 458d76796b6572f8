import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisTokenStore } from './auth/token-store.ts';
import { createFixture } from './testing/fixture.ts';
import type { Fixture } from './testing/fixture.ts';
import { startHarness } from './testing/harness.ts';
import type { Harness } from './testing/harness.ts';

/** Issue 11, manager outputs: bill statistics as CSV with totals and balances; a month's statements as one printable document. */
let fx: Fixture;
let h: Harness;
let viewer = '';

beforeAll(async () => {
  fx = await createFixture('mgr');
  h = await startHarness(fx);
  viewer = (await new RedisTokenStore(fx.redis, fx.prefix).create({ site: fx.site.id, role: 'viewer' })).token;
});
afterAll(async () => {
  await h?.close();
  await fx?.cleanup();
});

describe('manager outputs', () => {
  it('bill statistics as a CSV file: one row per account and a totals row, balances included, equal to the JSON', async () => {
    const json = await h.req('GET', '/api/v1/stats/bills?from=2026-10-01&to=2026-11-01', { token: viewer });
    const csv = await h.req('GET', '/api/v1/stats/bills?from=2026-10-01&to=2026-11-01&format=csv', { token: viewer });
    expect(csv.type).toMatch(/^text\/csv/);
    expect(csv.headers.get('content-disposition')).toBe('attachment; filename="tj-plaza-bills-2026-10-01-2026-11-01.csv"');
    const rows = csv.text.replace(/^\uFEFF/, '').trim().split('\r\n').map((r) => r.split(','));
    expect(rows[0]).toEqual(['site', 'from', 'to', 'account', 'name', 'own_kwh', 'common_kwh', 'loss_kwh', 'total_amount', 'opening_balance', 'payments', 'closing_balance']);
    expect(rows.slice(1, -1).map((r) => r[3])).toEqual(['A101', 'A102', 'A103']);
    for (const [i, a] of json.body.accounts.entries()) expect(rows[i + 1].slice(5)).toEqual([a.kwh.own, a.kwh.common, a.kwh.loss, a.total_amount, a.opening_balance, a.payments, a.closing_balance]);
    const t = json.body.totals;
    expect(rows.at(-1)).toEqual(['tj-plaza', '2026-10-01', '2026-11-01', 'total', '', t.kwh.own, t.kwh.common, t.kwh.loss, t.total_amount, t.opening_balance, t.payments, t.closing_balance]);
    // The totals add up, to the fen (integers).
    const fen = (x: string) => Number(x.replace('.', ''));
    for (const k of ['total_amount', 'opening_balance', 'payments', 'closing_balance'] as const) expect(fen(t[k])).toBe(json.body.accounts.reduce((s: number, a: Record<string, string>) => s + fen(a[k]), 0));
    expect(fen(t.closing_balance)).toBe(fen(t.opening_balance) + fen(t.payments) - fen(t.total_amount));
  });

  it("a month's statements as one printable document, one account per page, in zh or en", async () => {
    const zh = await h.req('GET', '/api/v1/months/2026-10/statements', { token: viewer });
    expect(zh.type).toMatch(/^text\/html/);
    expect(zh.text.match(/<section class="statement"/g)).toHaveLength(3);
    expect(zh.text).toContain('page-break-after:always');
    expect(zh.text.match(/<h1>电费账单<\/h1>/g)).toHaveLength(3);
    for (const a of ['A101', 'A102', 'A103']) expect(zh.text).toContain(`id="${a}"`);
    const en = await h.req('GET', '/api/v1/months/2026-10/statements?lang=en', { token: viewer });
    expect(en.text.match(/<h1>Electricity statement<\/h1>/g)).toHaveLength(3);
    expect(en.text).toContain('statements 2026-10 (3 accounts)');
    const tenant = (await new RedisTokenStore(fx.redis, fx.prefix).create({ site: fx.site.id, role: 'tenant', account: 'A101' })).token;
    expect((await h.req('GET', '/api/v1/months/2026-10/statements', { token: tenant })).status).toBe(403);
  });
});
