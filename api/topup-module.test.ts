import { mkdirSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSiteYaml } from '../core/index.ts';
import { WechatPay } from '../lib/topup/index.ts';
import { deliver, WechatSim } from '../sim/providers/index.ts';
import { buildApp } from './app.ts';
import { RedisTokenStore } from './auth/token-store.ts';
import { SiteRef } from './site-ref.ts';
import { createFixture, SITE_FILE } from './testing/fixture.ts';
import type { Fixture } from './testing/fixture.ts';

// The page module api/public/topup.js alone, in Debian's chromium on a phone viewport,
// under the page's CSP: amount choice -> QR code -> the simulated provider pays -> the
// module sees the order credited and calls onPaid. (The tenant page that mounts it, and
// that end-to-end test, come with the page's rewrite.)
const CHROMIUM = process.env.SUBMETER_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = new URL('../test-artifacts/', import.meta.url);

let fx: Fixture;
let server: Server;
let base: string;
let browser: Browser;
let sim: WechatSim;
let token: string;

beforeAll(async () => {
  fx = await createFixture('topupjs');
  sim = await new WechatSim().start();
  const site = parseSiteYaml(`${readFileSync(SITE_FILE, 'utf8')}\ntopup:\n  providers: [wechat]\n  presets: [50, 100]\n`, 'module.yaml');
  const app = buildApp({ site: new SiteRef(site), influx: fx.influx, redis: fx.redis, keyPrefix: fx.prefix, workersKeyPrefix: fx.workersPrefix, topupProviders: new Map([['wechat', new WechatPay(sim.credentials)]]) });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  token = (await new RedisTokenStore(fx.redis, fx.prefix).create({ site: site.id, role: 'tenant', account: 'A101' })).token;
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

describe('topup.js in headless chromium', () => {
  it('orders 100.00 with WeChat Pay, shows the QR code, and reports the order credited without a reload', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'zh-CN' });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(e.message));
    try {
      await page.goto(`${base}/`); // the page's origin and CSP
      await page.addScriptTag({ url: '/topup.js' });
      // The tenant page itself asks who is signed in (401 without a session): not this module's doing.
      problems.length = 0;
      await page.evaluate(`(() => {
        const box = document.createElement('section');
        box.id = 'topup-box';
        box.className = 'card';
        document.body.prepend(box);
        window.__paid = null;
        SubmeterTopup.mount(box, { token: () => ${JSON.stringify(token)}, account: 'A101', pollMs: 300, onPaid: (o) => { window.__paid = o; } });
      })()`);
      await page.waitForSelector('#topup-box .preset');
      expect(await page.$$eval('#topup-box .preset', (b) => b.map((x) => (x as unknown as { textContent: string }).textContent))).toEqual(['50.00 CNY', '100.00 CNY']);
      // Out of limits: refused on the page, nothing ordered.
      await page.fill('#topup-amount', '5');
      await page.click('#topup-pay');
      await page.waitForSelector('#topup-box .error:not([hidden])');
      await page.click('#topup-box .preset[data-amount="100.00"]');
      const created = page.waitForResponse((r) => r.url().endsWith('/api/v1/accounts/A101/topups') && r.request().method() === 'POST');
      await page.click('#topup-pay');
      const order = (await (await created).json()) as { order: string };
      await page.waitForSelector('#topup-qr');
      expect(await page.getAttribute('#topup-qr', 'src')).toMatch(/^data:image\/svg\+xml;base64,/);
      expect(await page.getAttribute('#topup-state', 'data-state')).toBe('created');
      await page.screenshot({ path: new URL('topup-qr.png', ARTIFACTS).pathname });
      expect((await deliver(sim.pay(order.order))).status).toBe(204);
      // waitForSelector, not waitForFunction: a string predicate would need eval, which the page's CSP forbids.
      await page.waitForSelector('#topup-state[data-state="paid"]', { timeout: 10_000 });
      expect(await page.evaluate('window.__paid.state')).toBe('paid');
      expect(await page.textContent('#topup-state')).toContain('已到账 Credited');
      expect(await page.$('#topup-qr')).toBeNull();
      await page.screenshot({ path: new URL('topup-paid.png', ARTIFACTS).pathname });
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
