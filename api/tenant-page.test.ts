import { mkdirSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium } from 'playwright-core';
import type { Browser, BrowserContext, Page } from 'playwright-core';
// Browser-side code is passed as strings: the project compiles without the DOM lib.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSiteYaml } from '../core/index.ts';
import { RelayStore } from '../lib/relay-store.ts';
import { buildApp } from './app.ts';
import { RedisTokenStore } from './auth/token-store.ts';
import { SiteRef } from './site-ref.ts';
import { createFixture, NOW, SITE_FILE } from './testing/fixture.ts';
import type { Fixture } from './testing/fixture.ts';

// End to end in Debian's chromium (scripts/test-deps.sh installs it), driven by
// playwright-core: the tenant page as a prepaid tenant uses it on a phone, and the
// manager page. Screenshots go to test-artifacts/ (git-ignored) for a person to look at.
const CHROMIUM = process.env.SUBMETER_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = new URL('../test-artifacts/', import.meta.url);
const shot = (name: string) => new URL(name, ARTIFACTS).pathname;

let fx: Fixture;
let server: Server;
let base: string;
let browser: Browser;
let manager = '';
let tenantToken = '';

beforeAll(async () => {
  fx = await createFixture('page');
  // The example site with whom to call (site.contact), as a site would set it.
  const site = parseSiteYaml(readFileSync(SITE_FILE, 'utf8').replace('  currency: CNY', '  currency: CNY\n  contact: { name: 物业服务中心, phone: "022-5555 0101", email: office@plaza.example }'), SITE_FILE);
  const app = buildApp({ site: new SiteRef(site), influx: fx.influx, redis: fx.redis, keyPrefix: fx.prefix, workersKeyPrefix: fx.workersPrefix, now: () => NOW });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const store = new RedisTokenStore(fx.redis, fx.prefix);
  manager = (await store.create({ site: site.id, role: 'manager' })).token;
  tenantToken = (await store.create({ site: site.id, role: 'tenant', account: 'A101' })).token;
  // A102's meter T102 has a relay; the example site runs enforcement in dry-run (the
  // default): the policy would cut the overdrawn cafe, nothing is sent, the relay reads closed.
  const relays = new RelayStore(fx.redis, site.id, fx.workersPrefix);
  await relays.setWanted('A102', { state: 'open', version: 1, since: NOW - 3_600_000, reason: 'balance-exhausted', detail: 'balance -1758.92 + grace 0.00 <= 0', mode: 'dry-run', restoreFen: 175_893, warning: 'final', balanceFen: -175_892, decidedAt: NOW - 60_000 });
  await relays.setReadback('T102', { state: 'closed', raw: 0, text: 'relay closed', at: NOW - 120_000 });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  mkdirSync(ARTIFACTS, { recursive: true });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  server?.closeAllConnections();
  await fx?.cleanup();
});

/** A one-time login link for an account, as the manager page asks for it. */
async function loginLink(account: string): Promise<string> {
  const r = await fetch(`${base}/api/v1/accounts/${account}/login-links`, { method: 'POST', headers: { authorization: `Bearer ${manager}`, 'content-type': 'application/json' }, body: JSON.stringify({ base_url: `${base}/` }) });
  expect(r.status).toBe(201);
  return ((await r.json()) as { url: string }).url;
}

async function phone(width: number, lang?: 'zh' | 'en'): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width, height: 800 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'zh-CN' });
  if (lang) await context.addInitScript(`localStorage.setItem('submeter.lang', '${lang}')`);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  return { context, page, problems };
}

async function signedIn(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.waitForSelector('#dash:not([hidden])', { timeout: 20_000 });
  await page.waitForSelector('#bill-lines tbody tr', { timeout: 20_000 });
  await page.waitForSelector('#chart svg', { timeout: 20_000 });
}

/** How far the page scrolls sideways (0: never), and the widest card's overflow. */
async function sideways(page: Page): Promise<number> {
  return page.evaluate<number>(`Math.max(document.documentElement.scrollWidth - window.innerWidth, ...[...document.querySelectorAll('.card')].map((c) => c.scrollWidth - c.clientWidth))`);
}

describe('the tenant page on a phone (headless chromium)', () => {
  it('a login link signs the phone in once; the device stays signed in in a new tab; the cookie is out of the script\'s reach', async () => {
    const url = await loginLink('A101');
    const { context, page, problems } = await phone(390);
    try {
      await signedIn(page, url);
      expect(page.url()).toBe(`${base}/`); // the code left the address bar
      expect(await page.textContent('#balance')).toBe('¥412.35');
      expect(await page.textContent('#status-badge')).toBe('正常');
      expect(await page.textContent('#hours-left')).toBe('约可再用 2.2 天'); // 52.3 h is over 48 h: days
      expect(await page.textContent('#price')).toBe('1.0532 元/kWh');
      expect(await page.textContent('#period-now')).toBe('高峰');
      expect(await page.textContent('#cost-hour')).toBe('¥3.79');
      expect(await page.textContent('#today-kwh')).toBe('19.600');
      expect(await page.textContent('#contact')).toBe('联系: 物业服务中心 · 022-5555 0101 · office@plaza.example');
      expect(await page.getAttribute('#contact a[href^="tel:"]', 'href')).toBe('tel:02255550101');
      const cookie = (await context.cookies()).find((c) => c.name === 'submeter_session')!;
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
      expect(await page.evaluate<string>('document.cookie')).not.toContain('submeter_session');

      // A new tab of the same phone: still signed in, no link needed.
      const tab = await context.newPage();
      await signedIn(tab, `${base}/`);
      expect(await tab.textContent('#balance')).toBe('¥412.35');

      // The link works once: another phone opening it is told so.
      const other = await phone(390);
      try {
        await other.page.goto(url);
        await expect.poll(() => other.page.textContent('#login-message'), { timeout: 15_000 }).toBe('这个登录链接无效、已用过或已过期。请向物业索取新的链接。');
        expect(await other.page.isVisible('#dash')).toBe(false);
      } finally {
        await other.context.close();
      }

      // A manager signs the device out (a lost phone): the next load says so.
      const h = { authorization: `Bearer ${manager}` };
      const { sessions } = (await (await fetch(`${base}/api/v1/accounts/A101/sessions`, { headers: h })).json()) as { sessions: { id: string }[] };
      for (const s of sessions) expect((await fetch(`${base}/api/v1/sessions/${s.id}`, { method: 'DELETE', headers: h })).status).toBe(204);
      await tab.reload();
      await expect.poll(() => tab.textContent('#login-message'), { timeout: 15_000 }).toBe('本设备已退出登录。请用新的登录链接登录。');
      expect(await tab.isVisible('#dash')).toBe(false);
      expect(problems.filter((p) => !/status of 401/.test(p))).toEqual([]);

      // Signing out on the phone itself ends its session too.
      const again = await phone(390);
      try {
        await signedIn(again.page, await loginLink('A101'));
        await again.page.click('#logout');
        await again.page.waitForSelector('#login:not([hidden])');
        await again.page.reload();
        await again.page.waitForSelector('#login:not([hidden])');
        expect((await again.context.cookies()).find((c) => c.name === 'submeter_session')).toBeUndefined();
      } finally {
        await again.context.close();
      }
    } finally {
      await context.close();
    }
  }, 90_000);

  for (const width of [320, 360, 390]) {
    it(`${width} px: never scrolls sideways, in Chinese and in English; the chart's labels do not touch and "now" is marked`, async () => {
      const { context, page, problems } = await phone(width);
      try {
        await signedIn(page, await loginLink('A101'));
        for (const lang of ['zh', 'en'] as const) {
          if (lang === 'en') {
            await page.click('#lang');
            await expect.poll(() => page.textContent('[data-section="balance"] h2')).toBe('Balance');
            await expect.poll(() => page.textContent('#bill-title')).toMatch(/^Nov 2026/);
          }
          expect(await sideways(page), `${width} px ${lang}`).toBeLessThanOrEqual(0);
          // One language at a time: no label carries both.
          expect(await page.textContent('[data-section="balance"] h2')).toBe(lang === 'zh' ? '余额' : 'Balance');
          expect(await page.textContent('#price')).toBe(lang === 'zh' ? '1.0532 元/kWh' : '¥1.0532/kWh');
          const labels = await page.evaluate<{ x: number; y: number; w: number; h: number }[]>(`[...document.querySelectorAll('#chart text.x-label, #chart text.now-label')].map((t) => { const r = t.getBoundingClientRect(); return { x: r.left, y: r.top, w: r.width, h: r.height }; })`);
          const box = await page.evaluate<{ x: number; w: number }>(`(() => { const r = document.querySelector('#chart svg').getBoundingClientRect(); return { x: r.left, w: r.width }; })()`);
          expect(labels.length).toBeGreaterThanOrEqual(4);
          for (const [i, a] of labels.entries()) {
            expect(a.x).toBeGreaterThanOrEqual(box.x - 0.5);
            expect(a.x + a.w).toBeLessThanOrEqual(box.x + box.w + 0.5);
            for (const b of labels.slice(i + 1)) {
              const apart = a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y;
              expect(apart, `labels overlap at ${width} px: ${JSON.stringify([a, b])}`).toBe(true);
            }
          }
          expect(await page.locator('#chart .now-marker').count()).toBe(1);
          await page.screenshot({ path: shot(`tenant-page-${lang}-${width}.png`), fullPage: true });
        }
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    }, 90_000);
  }

  it('an overdrawn account says so, what to do and whom to call; pools by name; alerts worded without codes', async () => {
    const { context, page } = await phone(320, 'en');
    try {
      await signedIn(page, await loginLink('A102'));
      expect(await page.textContent('#status-badge')).toBe('Overdrawn');
      expect(await page.textContent('#what-to-do')).toBe('Your account is overdrawn. Please top up now.');
      expect(await page.textContent('#topup')).toContain('To top up, contact your property manager.');
      expect(await page.textContent('#contact')).toContain('022-5555 0101');
      expect(await page.textContent('#balance')).toMatch(/^−¥[\d,]+\.\d{2}$/);
      expect(await page.textContent('#bill-lines')).toContain('Common area · lobby');
      // The supply card in dry-run: the meter reads power on, the tenant is asked to pay; no
      // cut is announced (nothing is sent in dry-run) and no internal code shows.
      await page.waitForSelector('#status-card:not([hidden])');
      expect(await page.textContent('#supply-state')).toBe('Power on');
      expect(await page.textContent('#supply-why')).toBe('Your prepaid balance is used up; please pay soon.');
      expect(await page.textContent('#supply-read')).toBe('meter read at 15 Nov 10:28');
      expect(await page.isVisible('#supply-topup')).toBe(false); // no online top-up on this site
      expect(await page.textContent('#status-card')).not.toMatch(/debt|dry-run|balance-exhausted/);
      const alerts = await page.textContent('#alerts');
      expect(alerts).toContain('Low balance');
      expect(alerts).not.toMatch(/low_balance|T\d{2}:\d{2}:\d{2}|Z\b|\+08:00/);
      expect(await sideways(page)).toBeLessThanOrEqual(0);
      await page.screenshot({ path: shot('tenant-page-overdrawn-en-320.png'), fullPage: true });
    } finally {
      await context.close();
    }
  }, 60_000);

  it('programs and managers may still sign in with a token; the printable statement opens in the page language', async () => {
    const { context, page } = await phone(390);
    try {
      await page.goto(`${base}/`);
      await page.click('#token-login summary');
      await page.fill('#token', 'smt_not-a-real-token-at-all');
      await page.click('#login-form button');
      await expect.poll(() => page.textContent('#login-message'), { timeout: 15_000 }).toBe('令牌无效或已撤销。');
      await page.fill('#token', tenantToken);
      await page.click('#login-form button');
      await page.waitForSelector('#bill-lines tbody tr', { timeout: 20_000 });
      expect(await page.textContent('#balance')).toBe('¥412.35');
      const [popup] = await Promise.all([page.waitForEvent('popup'), page.click('#bill-print')]);
      await popup.waitForLoadState();
      expect(await popup.textContent('h1')).toBe('电费账单');
      await popup.close();
    } finally {
      await context.close();
    }
  }, 60_000);

  it('lays out in columns on a desktop screen', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    try {
      await signedIn(page, await loginLink('A101'));
      const cols = await page.evaluate<number>("getComputedStyle(document.querySelector('#dash')).gridTemplateColumns.split(' ').length");
      expect(cols).toBe(2);
      await page.screenshot({ path: shot('tenant-page-desktop.png'), fullPage: true });
    } finally {
      await context.close();
    }
  }, 60_000);
});

describe('the manager page (headless chromium)', () => {
  it('an overview of every account, sortable; records a payment; issues a login link that signs a phone in', async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    const page = await context.newPage();
    try {
      await page.goto(`${base}/manage.html`);
      await page.fill('#token', manager);
      await page.click('#login-form button');
      await page.waitForSelector('#accounts tbody tr');
      const order = () => page.evaluate<string[]>(`[...document.querySelectorAll('#accounts tbody tr')].map((r) => r.dataset.account)`);
      expect(await order()).toEqual(['A101', 'A102', 'A103']);
      const cells = await page.evaluate<string[]>(`[...document.querySelectorAll('#accounts tbody tr:first-child td')].slice(0, 5).map((c) => c.textContent)`);
      expect(cells).toEqual(['A101', 'Shop 101', '¥412.35', '正常', '2.2 天']);
      await page.click('th[data-key="balance"] button');
      expect(await order()).toEqual(['A103', 'A102', 'A101']);
      await page.click('th[data-key="balance"] button');
      expect(await order()).toEqual(['A101', 'A102', 'A103']);

      // Record a payment for A102.
      const before = await page.textContent('tr[data-account="A102"] td:nth-child(3)');
      await page.click('tr[data-account="A102"] button.pay');
      await page.fill('#pay-amount', '2000.00');
      await page.fill('#pay-reference', 'COUNTER-0001');
      await page.fill('#pay-time', '2026-11-15T10:00:00+08:00');
      await page.click('#pay-form button[type="submit"]');
      await expect.poll(() => page.textContent('#pay-result'), { timeout: 15_000 }).toBe('已记录: A102 ¥2,000.00 · COUNTER-0001 · 11月15日 10:00');
      await expect.poll(() => page.textContent('tr[data-account="A102"] td:nth-child(3)'), { timeout: 15_000 }).not.toBe(before);

      // Power: A102's relay reads closed (dry-run); A101 and A103 have none.
      expect(await page.textContent('tr[data-account="A102"] td.relay')).toBe('正常供电');
      expect(await page.textContent('tr[data-account="A101"] td.relay')).toBe('–');
      expect(await page.$('tr[data-account="A101"] button.relay')).toBeNull();
      await page.click('tr[data-account="A102"] button.relay');
      await page.waitForSelector('#relay-card:not([hidden])');
      expect(await page.textContent('#relay-mode')).toBe('演练模式：只记录决定，不发送命令');
      // A hold needs a reason (kept in the audit trail).
      await page.click('#relay-hold');
      await expect.poll(() => page.textContent('#relay-result')).toBe('原因（必填，记入审计）');
      await page.fill('#relay-reason', '店主住院，暂缓断电');
      await page.fill('#relay-until', '2026-11-20T08:00:00+08:00');
      await page.click('#relay-hold');
      await expect.poll(() => page.textContent('tr[data-account="A102"] td.relay'), { timeout: 15_000 }).toBe('正常供电暂缓断电');
      expect(await page.textContent('#relay-facts')).toContain('店主住院，暂缓断电');
      await page.locator('#relay-card').screenshot({ path: shot('manager-relay.png') });
      const audit = (await (await fetch(`${base}/api/v1/audit`, { headers: { authorization: `Bearer ${manager}` } })).json()) as { entries: { action: string; target: string; detail: { reason: string } }[] };
      expect(audit.entries.find((e) => e.action === 'relay.hold')).toMatchObject({ target: 'A102', detail: { reason: '店主住院，暂缓断电' } });
      await page.click('#relay-release');
      await expect.poll(() => page.textContent('tr[data-account="A102"] td.relay'), { timeout: 15_000 }).toBe('正常供电');
      await page.click('#relay-cancel');

      // Issue a login link: its QR code and address are shown; the address signs a phone in, once.
      await page.click('tr[data-account="A102"] button.issue-link');
      await page.waitForSelector('#link-qr[src^="data:image/svg+xml;base64,"]');
      expect(await page.evaluate<number>(`document.querySelector('#link-qr').naturalWidth`)).toBeGreaterThan(0);
      const url = (await page.textContent('#link-url'))!;
      expect(url).toMatch(new RegExp(`^${base}/#login=sml_`));
      await page.screenshot({ path: shot('manager-page.png'), fullPage: true });
      const tenant = await phone(360);
      try {
        await signedIn(tenant.page, url);
        expect(await tenant.page.textContent('#who')).toBe('Cafe 102 · A102');
      } finally {
        await tenant.context.close();
      }
    } finally {
      await context.close();
    }
  }, 90_000);

  it('fits a phone too', async () => {
    const context = await browser.newContext({ viewport: { width: 360, height: 800 }, isMobile: true });
    const page = await context.newPage();
    try {
      await page.goto(`${base}/manage.html`);
      await page.fill('#token', manager);
      await page.click('#login-form button');
      await page.waitForSelector('#accounts tbody tr');
      expect(await sideways(page)).toBeLessThanOrEqual(0);
      await page.screenshot({ path: shot('manager-page-360.png'), fullPage: true });
    } finally {
      await context.close();
    }
  }, 60_000);
});
