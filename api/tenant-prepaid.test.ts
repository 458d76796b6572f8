import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliver } from '../sim/index.ts';
import { prepaidWorld } from './testing/prepaid-world.ts';
import type { PrepaidWorld } from './testing/prepaid-world.ts';

/**
 * The prepaid loop end to end, as a tenant lives it on a phone (issues 11, 13, 14): the
 * account runs out on a Tuesday morning and the meter's relay is cut; the tenant, signed
 * in once through a login link, taps "top up", the simulated WeChat Pay collects and
 * notifies, the page shows the new balance without a reload, the relay closes within one
 * balance cycle, the load comes back and the supply card says power is on. Every part is
 * real (api/testing/prepaid-world.ts): simulator on a PTY, collector with its relay
 * executor, the workers on their schedulers, the API, headless Debian chromium; time is
 * simulated, so the test takes seconds.
 */
const CHROMIUM = process.env.SUBMETER_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = new URL('../test-artifacts/', import.meta.url);
const shot = (name: string) => new URL(name, ARTIFACTS).pathname;
const local = (s: string) => Date.parse(`${s}+08:00`);
const SECRET = '02345678';
const START = local('2026-11-17T10:00:00'); // a Tuesday morning: no protected window

const SITE = `
site: { id: prepaid-e2e, name: 星河广场, timezone: Asia/Shanghai, currency: CNY, contact: { name: 物业服务中心, phone: "022-5555 0101" } }
meters:
  - { id: M0, role: master }
  - { id: T1, role: tenant, account: A1, relay: plain, connection: { protocol: dlt645, port: PTY, parity: none, address: "000000000011", timeout_ms: 3000 } }
accounts:
  - { id: A1, name: 面包房 Bakery, tariff: t, opening_balance: "0.30", low_balance: "20.00" }
tariffs:
  - { id: t, versions: [{ effective_from: 2026-11-17, prices: { flat: "1.000000" }, schedule: [{ periods: [{ from: "00:00", to: "24:00", period: flat }] }] }] }
enforcement:
  mode: on
  readback: 5s
topup:
  providers: [wechat]
  presets: [50, 100, 200]
`;

let w: PrepaidWorld;
let browser: Browser;

beforeAll(async () => {
  w = await prepaidWorld({ tag: 'prepaid', siteYaml: SITE, start: START, secret: SECRET });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  mkdirSync(ARTIFACTS, { recursive: true });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await w?.close();
});

async function phone(width: number): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width, height: 800 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'zh-CN' });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
  page.on('pageerror', (e) => problems.push(e.message));
  return { context, page, problems };
}

async function sideways(page: Page): Promise<number> {
  return page.evaluate<number>(`Math.max(document.documentElement.scrollWidth - window.innerWidth, ...[...document.querySelectorAll('.card')].map((c) => c.scrollWidth - c.clientWidth))`);
}

/** Money as the page or the API writes it ("−¥0.87", "49.13") in fen. */
function fenOf(text: string): number {
  const m = /^([−-])?¥?(\d+)\.(\d\d)$/.exec(text);
  if (!m) throw new Error(`not money: ${text}`);
  return (m[1] ? -1 : 1) * (Number(m[2]) * 100 + Number(m[3]));
}

/** Redis stream ids ("ms-seq") in order. */
function streamIdAfter(id: string, mark: string): boolean {
  const [a, b] = id.split('-').map(BigInt);
  const [c, d] = mark.split('-').map(BigInt);
  return a > c || (a === c && b > d);
}

/** Moves the clock a step and waits until the balance worker has written a point at the new time. */
async function step(ms: number): Promise<void> {
  w.clock.now += ms;
  const at = w.clock.now;
  await w.until(`balance point at ${new Date(at).toISOString()}`, async () => ((await w.balance('A1'))?.time ?? 0) >= at);
}

describe('prepaid on a phone: cut at zero, top up, power back (headless chromium, simulated time)', () => {
  it('the relay is cut when the balance is used up; a top-up on the page brings the balance and the power back without a reload', async () => {
    // --- the balance runs out and the relay trips ----------------------------------------
    const relayClosed = () => w.sim.meter('T1').relay.state().closed;
    expect(relayClosed()).toBe(true);
    // A minute at a time until the balance worker sees the balance used up; then the clock
    // waits for the trip, so the account is cut at zero, not some minutes of use later.
    for (let i = 0; i < 60; i++) {
      await step(60_000);
      if (((await w.balance('A1'))?.fen ?? 1) <= 0) break;
    }
    await w.until('the relay trips', () => !relayClosed(), 20_000);
    const cutAt = w.clock.now;
    const trip = (await w.store.auditTrail(100, 'A1')).find((e) => e.kind === 'send' && e.command === 'trip');
    expect(trip?.balanceFen, 'tripped at zero or below').toBeLessThanOrEqual(0);
    // ... within a few minutes' use of zero (the load is a few kW at 1.00 CNY/kWh).
    expect(trip?.balanceFen).toBeGreaterThan(-50);
    // The read-back is on the collector's (simulated) clock, as the samples are.
    const rb = await w.until('read back open', async () => {
      const r = (await w.store.readbacks()).get('T1');
      return r?.state === 'open' ? r : undefined;
    });
    expect(rb.at).toBeGreaterThanOrEqual(START);
    expect(rb.at).toBeLessThanOrEqual(w.clock.now);
    // The load stops: the meter counts nothing while cut.
    const whCut = w.sim.read('T1').wh;
    await step(5 * 60_000);
    expect(w.sim.read('T1')).toMatchObject({ wh: whCut, w: 0 });

    // --- the tenant opens the page from the login link ------------------------------------
    const { context, page, problems } = await phone(390);
    try {
      await page.goto(await w.loginLink('A1'));
      await page.waitForSelector('#dash:not([hidden])', { timeout: 20_000 });
      await page.waitForSelector('#status-card:not([hidden])[data-power="off"]', { timeout: 20_000 });
      expect(await page.textContent('#supply-state')).toBe('已断电');
      const why = (await page.textContent('#supply-why'))!;
      expect(why).toMatch(/^预付费余额不足，已断电。缴清欠费后自动恢复供电。需缴纳至少 ¥\d+\.\d\d 恢复供电。$/);
      expect(await page.textContent('#supply-since')).toMatch(/^自 11月17日 \d\d:\d\d 起$/);
      expect(await page.isVisible('#supply-topup')).toBe(true);
      const before = (await page.textContent('#balance'))!;
      expect(before).toMatch(/^−?¥0\.\d\d$/);
      expect(await sideways(page)).toBeLessThanOrEqual(0);
      await page.screenshot({ path: shot('prepaid-cut-zh-390.png'), fullPage: true });
      // A mark on the window: still there at the end means the page never reloaded.
      await page.evaluate('window.__sameDocument = 42');

      // --- top up: 50 yuan with WeChat Pay ------------------------------------------------
      // "Top up now" on the supply card: the amount that brings the power back, at least the
      // site's minimum top-up (10.00).
      await page.click('#supply-topup');
      await page.waitForSelector('#topup-box .preset');
      expect(await page.inputValue('#topup-amount')).toBe('10.00');
      expect(await page.isVisible('#topup-open')).toBe(false);
      expect(await page.$$eval('#topup-box .preset', (b) => b.map((x) => (x as unknown as { textContent: string }).textContent))).toEqual(['¥50.00', '¥100.00', '¥200.00']);
      await page.click('#topup-box .preset[data-amount="50.00"]');
      const created = page.waitForResponse((r) => r.url().endsWith('/api/v1/accounts/A1/topups') && r.request().method() === 'POST');
      await page.click('#topup-pay');
      const order = (await (await created).json()) as { order: string };
      await page.waitForSelector('#topup-qr');
      expect(await page.textContent('#topup-box figcaption')).toBe('请用微信扫码支付');
      expect(await sideways(page)).toBeLessThanOrEqual(0);
      await page.screenshot({ path: shot('prepaid-topup-qr-zh-390.png'), fullPage: true });

      // The payer scans and pays; WeChat Pay notifies the API (signed, encrypted). The clock
      // stands still from here: the reconnect must not need simulated time to pass.
      const paidAt = w.clock.now;
      // The audit trail is a Redis stream: entries after this id came after the payment.
      const mark = (await w.store.auditTrail(1))[0]?.id ?? '0-0';
      expect((await deliver(w.pay.pay(order.order))).status).toBe(204);
      await page.waitForSelector('#topup-state[data-state="paid"]', { timeout: 15_000 });
      expect(await page.textContent('#topup-state')).toBe('已到账');

      // The balance on the page moves by itself...
      await expect.poll(() => page.textContent('#balance'), { timeout: 20_000 }).not.toBe(before);
      const live = (await (await fetch(`${w.base}/api/v1/accounts/A1/live`, { headers: { authorization: `Bearer ${w.managerToken}` } })).json()) as { balance: string };
      expect(await page.textContent('#balance')).toBe(`¥${live.balance}`);
      // While cut the meter counted nothing and the clock stood still: exactly 50.00 more.
      expect(fenOf(live.balance)).toBe(fenOf(before) + 5000);
      expect(await page.textContent('#payments')).toContain('+¥50.00');
      // ... and the power comes back: the relay closes, the card says so.
      await page.waitForSelector('#status-card[data-power="on"]', { timeout: 20_000 });
      expect(relayClosed()).toBe(true);
      expect(await page.textContent('#supply-state')).toBe('正常供电');
      expect(await page.isVisible('#supply-topup')).toBe(false);
      expect(await page.evaluate('window.__sameDocument')).toBe(42);
      // Within one balance cycle: no simulated time passed between the credit and the close,
      // and the first decision after the payment, on the credited balance, reconnects.
      expect(w.clock.now).toBe(paidAt);
      const trail = (await w.store.auditTrail(200, 'A1')).reverse();
      const after = trail.filter((e) => streamIdAfter(e.id, mark) && e.kind === 'decision');
      expect(after[0], JSON.stringify(trail.slice(-12), null, 1)).toMatchObject({ reason: 'reconnect' });
      expect(after[0].balanceFen).toBeGreaterThan(0);
      expect((await w.store.auditTrail(200, 'A1')).some((e) => e.kind === 'readback' && e.command?.startsWith('close') && e.after?.state === 'closed')).toBe(true);
      expect(cutAt).toBeLessThan(paidAt);

      // The load resumes: the meter counts again as time goes on.
      const whBack = w.sim.read('T1').wh;
      await step(10 * 60_000);
      expect(w.sim.read('T1').w).toBeGreaterThan(0);
      expect(w.sim.read('T1').wh).toBeGreaterThan(whBack);
      await page.click('#topup-done');
      expect(await page.isVisible('#topup-open')).toBe(true);
      // For the pictures only (the page's own poll is every 30 s): load it again to show the
      // power drawn after the reconnect.
      await w.until('the live figures show the power drawn again', async () => {
        const l = (await (await fetch(`${w.base}/api/v1/accounts/A1/live`, { headers: { authorization: `Bearer ${w.managerToken}` } })).json()) as { power_kw: string | null };
        return l.power_kw !== null && l.power_kw !== '0.000';
      });
      await page.reload();
      await page.waitForSelector('#status-card[data-power="on"]', { timeout: 20_000 });
      expect(await page.textContent('#power')).not.toBe('0.000 kW');
      await page.screenshot({ path: shot('prepaid-restored-zh-390.png'), fullPage: true });

      // The same page in English: one language at a time, no internal codes.
      await page.click('#lang');
      await expect.poll(() => page.textContent('#supply-state')).toBe('Power on');
      const card = (await page.textContent('#status-card'))!;
      expect(card).not.toMatch(/[\u4e00-\u9fff]|balance-ok|reconnect|below-reconnect|T\d\d:\d\d:\d\d|\+08:00/);
      await page.screenshot({ path: shot('prepaid-restored-en-390.png'), fullPage: true });
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  }, 120_000);

  for (const width of [320, 360, 390]) {
    it(`${width} px: the supply card and the top-up form never scroll sideways, in Chinese and in English`, async () => {
      const { context, page, problems } = await phone(width);
      try {
        await page.goto(await w.loginLink('A1'));
        await page.waitForSelector('#status-card:not([hidden])', { timeout: 20_000 });
        await page.click('#topup-open');
        await page.waitForSelector('#topup-box .preset');
        for (const lang of ['zh', 'en'] as const) {
          if (lang === 'en') {
            await page.click('#lang');
            await expect.poll(() => page.textContent('#topup-pay')).toBe('Pay');
            // The module follows the page's language: no Chinese left in it.
            expect(await page.textContent('#topup-box')).not.toMatch(/[\u4e00-\u9fff]/);
          } else expect(await page.textContent('#topup-pay')).toBe('去支付');
          expect(await sideways(page), `${width} px ${lang}`).toBeLessThanOrEqual(0);
          await page.screenshot({ path: shot(`prepaid-page-${lang}-${width}.png`), fullPage: true });
        }
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    }, 60_000);
  }
});
