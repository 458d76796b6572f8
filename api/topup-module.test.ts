import { mkdirSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium } from 'playwright-core';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSiteYaml } from '../core/index.ts';
import { WechatPay } from '../lib/topup/index.ts';
import { deliver, tamperBody, WechatSim } from '../sim/providers/index.ts';
import { buildApp } from './app.ts';
import { RedisTokenStore } from './auth/token-store.ts';
import { SiteRef } from './site-ref.ts';
import { createFixture, SITE_FILE } from './testing/fixture.ts';
import type { Fixture } from './testing/fixture.ts';

// The top-up module (api/public/topup.js) as the tenant page mounts it, in Debian's chromium
// on a phone under the page's CSP, signed in the two ways the page knows: a bearer token
// (programs, managers: the tab's sessionStorage) and the device session cookie of a login
// link. The page is signed in before it loads, so it makes no request that fails: every
// console error is a fault (none is filtered out).
const CHROMIUM = process.env.SUBMETER_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = new URL('../test-artifacts/', import.meta.url);

let fx: Fixture;
let server: Server;
let base: string;
let browser: Browser;
let sim: WechatSim;
let token: string;
let manager: string;

beforeAll(async () => {
  fx = await createFixture('topupjs');
  sim = await new WechatSim().start();
  const site = parseSiteYaml(`${readFileSync(SITE_FILE, 'utf8')}\ntopup:\n  providers: [wechat]\n  presets: [50, 100]\n`, 'module.yaml');
  const app = buildApp({ site: new SiteRef(site), influx: fx.influx, redis: fx.redis, keyPrefix: fx.prefix, workersKeyPrefix: fx.workersPrefix, topupProviders: new Map([['wechat', new WechatPay(sim.credentials)]]) });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const tokens = new RedisTokenStore(fx.redis, fx.prefix);
  token = (await tokens.create({ site: site.id, role: 'tenant', account: 'A101' })).token;
  manager = (await tokens.create({ site: site.id, role: 'manager' })).token;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  mkdirSync(ARTIFACTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  server?.closeAllConnections();
  await sim?.stop();
  await fx?.cleanup();
});

async function phone(lang: 'zh' | 'en', init?: string): Promise<{ context: BrowserContext; page: Page; problems: string[]; auth: (string | undefined)[] }> {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'zh-CN' });
  await context.addInitScript(`localStorage.setItem('submeter.lang', '${lang}');${init ?? ''}`);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
  page.on('pageerror', (e) => problems.push(e.message));
  // How the module's requests were signed.
  const auth: (string | undefined)[] = [];
  page.on('request', (r) => /\/api\/v1\/(topup\/options|accounts\/A101\/topups)/.test(r.url()) && auth.push(r.headers().authorization));
  return { context, page, problems, auth };
}

async function order(page: Page, amount: string): Promise<string> {
  await page.click(`#topup-box .preset[data-amount="${amount}"]`);
  const created = page.waitForResponse((r) => r.url().endsWith('/api/v1/accounts/A101/topups') && r.request().method() === 'POST');
  await page.click('#topup-pay');
  const o = (await (await created).json()) as { order: string };
  await page.waitForSelector('#topup-qr');
  return o.order;
}

describe('topup.js in the tenant page (headless chromium)', () => {
  it('with a bearer token: limits refused on the page, 100.00 with WeChat Pay, the QR code, credited, the payment listed without a reload', async () => {
    const { context, page, problems, auth } = await phone('zh', `sessionStorage.setItem('submeter.token', ${JSON.stringify(token)});`);
    try {
      await page.goto(`${base}/`);
      await page.waitForSelector('#topup-open:not([hidden])', { timeout: 20_000 });
      expect(await page.isVisible('#topup-how')).toBe(false);
      await page.click('#topup-open');
      await page.waitForSelector('#topup-box .preset');
      expect(await page.$$eval('#topup-box .preset', (b) => b.map((x) => (x as unknown as { textContent: string }).textContent))).toEqual(['¥50.00', '¥100.00']);
      // Out of limits: refused on the page in its language, nothing ordered.
      await page.fill('#topup-amount', '5');
      await page.click('#topup-pay');
      await page.waitForSelector('#topup-error');
      expect(await page.textContent('#topup-error')).toBe('金额须在 ¥10.00 至 ¥5,000.00 之间，最多两位小数。');
      const id = await order(page, '100.00');
      expect(await page.getAttribute('#topup-qr', 'src')).toMatch(/^data:image\/svg\+xml;base64,/);
      expect(await page.getAttribute('#topup-state', 'data-state')).toBe('created');
      expect(await page.textContent('#topup-state')).toBe('等待支付');
      await page.screenshot({ path: new URL('topup-qr.png', ARTIFACTS).pathname, fullPage: true });
      await page.evaluate('window.__sameDocument = 1');
      expect((await deliver(sim.pay(id))).status).toBe(204);
      // waitForSelector, not waitForFunction: a string predicate would need eval, which the page's CSP forbids.
      await page.waitForSelector('#topup-state[data-state="paid"]', { timeout: 10_000 });
      expect(await page.textContent('#topup-state')).toBe('已到账');
      expect(await page.$('#topup-qr')).toBeNull();
      await expect.poll(() => page.textContent('#payments'), { timeout: 10_000 }).toContain('+¥100.00');
      expect(await page.evaluate('window.__sameDocument')).toBe(1);
      await page.screenshot({ path: new URL('topup-paid.png', ARTIFACTS).pathname, fullPage: true });
      expect(auth.length).toBeGreaterThanOrEqual(3);
      expect(auth.every((a) => a === `Bearer ${token}`)).toBe(true);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);

  it('with the device session of a login link, in English: no token sent, a tampered notification changes nothing, the real one credits', async () => {
    const r = await fetch(`${base}/api/v1/accounts/A101/login-links`, { method: 'POST', headers: { authorization: `Bearer ${manager}`, 'content-type': 'application/json' }, body: JSON.stringify({ base_url: `${base}/` }) });
    const { url } = (await r.json()) as { url: string };
    const { context, page, problems, auth } = await phone('en');
    try {
      await page.goto(url);
      await page.waitForSelector('#topup-open:not([hidden])', { timeout: 20_000 });
      await page.click('#topup-open');
      await page.waitForSelector('#topup-box .preset');
      const id = await order(page, '50.00');
      expect(await page.textContent('#topup-box')).not.toMatch(/[\u4e00-\u9fff]/);
      expect(await page.textContent('#topup-box figcaption')).toBe('Scan with WeChat to pay');
      expect(await page.textContent('#topup-state')).toBe('Waiting for payment');
      const genuine = sim.pay(id);
      expect((await deliver(tamperBody(genuine))).status).toBe(401);
      await page.waitForTimeout(600);
      expect(await page.getAttribute('#topup-state', 'data-state')).toBe('created');
      expect((await deliver(genuine)).status).toBe(204);
      await page.waitForSelector('#topup-state[data-state="paid"]', { timeout: 10_000 });
      expect(await page.textContent('#topup-state')).toBe('Credited');
      await expect.poll(() => page.textContent('#payments'), { timeout: 10_000 }).toContain('+¥50.00');
      // Back in Chinese: the module follows the page's language switch.
      await page.click('#lang');
      await expect.poll(() => page.textContent('#topup-state')).toBe('已到账');
      expect(auth.length).toBeGreaterThanOrEqual(3);
      expect(auth.every((a) => a === undefined)).toBe(true);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);
});
