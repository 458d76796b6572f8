import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';
// Browser-side code is passed as strings: the project compiles without the DOM lib.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from './app.ts';
import { RedisTokenStore } from './auth/token-store.ts';
import { SiteRef } from './site-ref.ts';
import { createFixture, NOW } from './testing/fixture.ts';
import type { Fixture } from './testing/fixture.ts';

// End to end in Debian's chromium (scripts/test-deps.sh installs it), driven by
// playwright-core: the page as a tenant sees it on a phone. Screenshots go to
// test-artifacts/ (git-ignored) for a person to look at.
const CHROMIUM = process.env.SUBMETER_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = new URL('../test-artifacts/', import.meta.url);

let fx: Fixture;
let server: Server;
let base: string;
let browser: Browser;
let tenantToken: string;

beforeAll(async () => {
  fx = await createFixture('page');
  const app = buildApp({ site: new SiteRef(fx.site), influx: fx.influx, redis: fx.redis, keyPrefix: fx.prefix, workersKeyPrefix: fx.workersPrefix, now: () => NOW });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  tenantToken = (await new RedisTokenStore(fx.redis, fx.prefix).create({ site: fx.site.id, role: 'tenant', account: 'A101' })).token;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  mkdirSync(ARTIFACTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  server?.closeAllConnections();
  await fx?.cleanup();
});

describe('tenant page in headless chromium', () => {
  it('logs in with a tenant token on a phone-sized screen and shows the balance, price, today and a bill', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'zh-CN' });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    try {
      await page.goto(`${base}/`);
      await page.fill('#token', 'smt_not-a-real-token-at-all');
      await page.click('#login-form button');
      await expect.poll(() => page.textContent('#login-error'), { timeout: 15_000 }).toContain('Invalid token');
      expect(problems.splice(0)).toEqual(['Failed to load resource: the server responded with a status of 401 (Unauthorized)']);

      await page.fill('#token', tenantToken);
      await page.click('#login-form button');
      await page.waitForSelector('#dash:not([hidden])');
      await expect.poll(() => page.textContent('#balance'), { timeout: 15_000 }).toBe('412.35');
      expect(await page.textContent('#price')).toBe('1.053200');
      expect(await page.textContent('#period-now')).toContain('Peak');
      expect(await page.textContent('#cost-hour')).toBe('3.79');
      expect(await page.textContent('#today-kwh')).toBe('19.600');
      expect(await page.textContent('#who')).toContain('A101');

      // A bill: the latest month with charges, its lines and balances.
      await page.waitForSelector('#bill-lines tbody tr');
      expect(await page.textContent('#bill-title')).toContain('2026-11');
      expect(await page.locator('#bill-lines tbody tr').count()).toBeGreaterThanOrEqual(5);
      expect(await page.textContent('#bill-sum')).toMatch(/Closing\s*-?\d+\.\d{2}/);
      await page.click('#bills li:nth-child(2) button');
      await expect.poll(() => page.textContent('#bill-title'), { timeout: 15_000 }).toContain('2026-10');
      expect(await page.textContent('[data-k="opening"]')).toBe('500.00');

      // The printable statement opens in a new window (fetched with the token, shown from a blob).
      const [popup] = await Promise.all([page.waitForEvent('popup'), page.click('#bill-print-zh')]);
      await popup.waitForLoadState();
      expect(await popup.textContent('h1')).toBe('电费账单');
      expect(await popup.evaluate<string>('getComputedStyle(document.body).fontFamily')).toContain('system-ui'); // its inline style applied
      await popup.close();

      // The chart is drawn, payments listed, and nothing overflows the phone's width.
      // (loaded in parallel with the bills: wait for them rather than race)
      await expect.poll(() => page.locator('#chart svg rect').count(), { timeout: 15_000 }).toBeGreaterThan(20);
      await expect.poll(() => page.textContent('#payments'), { timeout: 15_000 }).toContain('+2000.00');
      await expect.poll(() => page.textContent('#advice'), { timeout: 15_000 }).toContain('kW');
      const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
      expect(overflow).toBeLessThanOrEqual(0);

      await page.screenshot({ path: new URL('tenant-page-phone.png', ARTIFACTS).pathname, fullPage: true });
      expect(problems).toEqual([]);

      // The token stays in this tab's session only; a reload logs straight in again.
      await page.reload();
      await expect.poll(() => page.textContent('#balance'), { timeout: 15_000 }).toBe('412.35');
    } finally {
      await context.close();
    }
  });

  it('lays out in columns on a desktop screen', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    try {
      await page.goto(`${base}/`);
      await page.fill('#token', tenantToken);
      await page.click('#login-form button');
      await expect.poll(() => page.textContent('#balance'), { timeout: 15_000 }).toBe('412.35');
      await page.waitForSelector('#bill-lines tbody tr');
      const cols = await page.evaluate<number>("getComputedStyle(document.querySelector('.grid')).gridTemplateColumns.split(' ').length");
      expect(cols).toBe(4);
      await page.screenshot({ path: new URL('tenant-page-desktop.png', ARTIFACTS).pathname, fullPage: true });
    } finally {
      await context.close();
    }
  });
});
