// Screenshots of every view of a running node (real or mock), for looking at the UI.
// node tests/browser/dev/shots.mjs http://127.0.0.1:8099/ /tmp/shots
import fs from 'node:fs';
import { launch, openPage } from '../lib/browser.mjs';

const url = process.argv[2] || 'http://127.0.0.1:8099/';
const out = process.argv[3] || '/tmp/shots';
fs.mkdirSync(out, { recursive: true });
const browser = await launch();
const errors = [];
for (const [tag, viewport, scheme] of [['desk', { width: 1280, height: 800 }, 'light'], ['dark', { width: 1280, height: 800 }, 'dark'], ['phone', { width: 390, height: 844 }, 'light']]) {
  const page = await openPage(browser, url, { errors, viewport, colorScheme: scheme });
  for (const v of ['dashboard', 'share', 'download', 'stats', 'settings']) {
    await page.goto(`${url}#/${v}`);
    await page.waitForTimeout(2500);
    if (v === 'dashboard') {
      const row = page.locator('tbody tr').first();
      if (await row.count()) await row.click();
      await page.waitForTimeout(800);
    }
    if (v === 'download') {
      await page.fill('#search-q', 'i');
      await page.waitForTimeout(800);
    }
    await page.screenshot({ path: `${out}/${tag}-${v}.png`, fullPage: tag !== 'phone' });
  }
  if (tag === 'desk') {
    await page.goto(`${url}#/dashboard`);
    await page.waitForTimeout(1500);
    await page.locator('tbody tr').first().click();
    await page.click('#tab-pieces');
    await page.waitForTimeout(1200);
    await page.screenshot({ path: `${out}/${tag}-pieces.png`, fullPage: true });
  }
  await page.context().close();
}
await browser.close();
console.log(errors.length ? errors.join('\n') : 'no console errors');
