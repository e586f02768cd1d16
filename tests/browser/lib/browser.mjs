// Launches Debian's chromium through playwright-core (which cannot download browsers here)
// with a fresh profile, and collects console errors of every page.
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

/** Playwright gives every launch a fresh temporary profile (its own --user-data-dir). */
export async function launch() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage', '--js-flags=--expose-gc',
    ],
  });
  return browser;
}

/** Opens a page that records console errors and page errors into `errors`. */
export async function openPage(browser, url, { errors = [], viewport = { width: 1280, height: 800 }, colorScheme = 'light' } = {}) {
  const context = await browser.newContext({ viewport, colorScheme });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`${url}: console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`${url}: page error: ${e.message}`));
  await page.goto(url);
  return page;
}
