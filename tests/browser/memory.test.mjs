// The page stays light: a node with 200 torrents streams live updates for a few minutes
// while the UI goes round every view; after forced GC the JS heap, DOM node count and
// listener count stay flat (fixed chart windows, rows reused, listeners removed).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { launch, openPage } from './lib/browser.mjs';
import { cleanUp, SHOTS, startNode, startTracker, tempDir, until } from './lib/shoal.mjs';

const TORRENTS = 200;
const SECS = Number(process.env.SHOAL_UI_MEMORY_SECS || 150);
const VIEWS = ['share', 'download', 'stats', 'settings', 'dashboard'];
const MiB = 1024 * 1024;

describe('memory with 200 torrents', { timeout: (SECS + 240) * 1000 }, () => {
  let root;
  let tracker;
  let c;
  let browser;
  const errors = [];

  before(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    root = tempDir('mem');
    tracker = await startTracker(root);
    c = await startNode(root, 'c', tracker.url);
    const dir = path.join(c.home, 'many');
    fs.mkdirSync(dir);
    for (let i = 0; i < TORRENTS; i++) {
      const f = path.join(dir, `file-${String(i).padStart(3, '0')}.bin`);
      fs.writeFileSync(f, crypto.randomBytes(32 * 1024));
      await c.api('POST', '/api/share', { path: f });
    }
    await until(`${TORRENTS} torrents`, async () => (await c.api('GET', '/api/torrents')).length === TORRENTS, 120_000, 1000);
    browser = await launch();
  });

  after(() => cleanUp(browser, [c, tracker], root));

  it(`keeps the JS heap flat over ${SECS} s of live updates`, async () => {
    const page = await openPage(browser, c.url, { errors });
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');
    const go = async (v) => {
      await page.evaluate((x) => {
        location.hash = `#/${x}`;
      }, v);
      await page.locator(`#view[data-view="${v}"]`).waitFor();
    };
    const sample = async () => {
      await page.evaluate(() => window.gc && window.gc());
      await cdp.send('HeapProfiler.collectGarbage');
      const { metrics } = await cdp.send('Performance.getMetrics');
      const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
      return { heap: m.JSHeapUsedSize, nodes: m.Nodes, listeners: m.JSEventListeners };
    };
    await page.locator('table[aria-label="Torrents"] tbody tr').nth(TORRENTS - 1).waitFor({ timeout: 30_000 });
    await page.locator('table[aria-label="Torrents"] tbody tr').first().click();
    await page.screenshot({ path: path.join(SHOTS, '20-dashboard-200-torrents.png') });

    const tour = async (dwellMs) => {
      for (const v of VIEWS) {
        await go(v);
        await page.waitForTimeout(dwellMs);
      }
      await page.locator('table[aria-label="Torrents"] tbody tr').nth(TORRENTS - 1).waitFor();
      await page.waitForTimeout(3000);
    };
    await tour(2000); // warm up: every module loaded, every view built once
    const base = await sample();
    const samples = [base];
    const end = Date.now() + SECS * 1000;
    while (Date.now() < end) {
      await tour(3000);
      samples.push(await sample());
    }
    const fmt = (s) => `${(s.heap / MiB).toFixed(2)} MiB, ${s.nodes} nodes, ${s.listeners} listeners`;
    console.log(`samples:\n${samples.map((s, i) => `  ${i}: ${fmt(s)}`).join('\n')}`);
    const last = samples.slice(-3);
    const heap = Math.min(...last.map((s) => s.heap));
    assert.ok(samples.length >= 4, `only ${samples.length} samples`);
    assert.ok(heap <= base.heap * 1.25 + 1 * MiB, `heap grew: ${fmt(base)} -> ${fmt(last[last.length - 1])}`);
    assert.ok(Math.min(...last.map((s) => s.nodes)) <= base.nodes * 1.1 + 100, 'DOM nodes grew');
    assert.ok(Math.min(...last.map((s) => s.listeners)) <= base.listeners + 30, 'event listeners grew');
    await page.context().close();
  });

  it('logged no console errors', () => {
    assert.deepEqual(errors, []);
  });
});
