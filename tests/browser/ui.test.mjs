// The web UI against real nodes: a tracker and nodes A and B on loopback. A shares a folder
// through the file browser; B finds it by search, downloads it (paused and resumed on the
// way), sees it in History and in its statistics; A's dashboard shows the upload. Then a
// download whose seeder is gone and whose data was deleted shows as failed in History.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { launch, openPage } from './lib/browser.mjs';
import { cleanUp, makeFolder, SHOTS, startNode, startTracker, tempDir, until } from './lib/shoal.mjs';

const MiB = 1024 * 1024;
const table = (page, label) => page.locator(`table[aria-label="${label}"] tbody tr`);

describe('web UI with two nodes', { timeout: 300_000 }, () => {
  let root;
  let tracker;
  let a;
  let b;
  let browser;
  let pageA;
  let pageB;
  const errors = [];

  const shot = (page, name) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  const go = async (page, view) => {
    await page.evaluate((v) => {
      location.hash = `#/${v}`;
    }, view);
    await page.locator(`#view[data-view="${view}"]`).waitFor();
  };

  before(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    root = tempDir('two');
    tracker = await startTracker(root);
    // A seeds rate-limited, so B's download lasts long enough to pause and to chart.
    [a, b] = await Promise.all([startNode(root, 'a', tracker.url, ['--max-up', '384KiB']), startNode(root, 'b', tracker.url)]);
    makeFolder(a.home, 'holiday photos', 3, 2 * MiB);
    makeFolder(a.home, 'doomed', 2, 2 * MiB);
    browser = await launch();
    pageA = await openPage(browser, a.url, { errors });
    pageB = await openPage(browser, b.url, { errors });
    await pageA.locator('#conn[data-state="live"]').waitFor();
    await pageB.locator('#conn[data-state="live"]').waitFor();
  });

  after(() => cleanUp(browser, [a, b, tracker], root));

  it('shows empty states on a fresh node', async () => {
    await go(pageB, 'dashboard');
    await pageB.getByText('No torrents yet').waitFor();
    await shot(pageB, '01-dashboard-empty');
  });

  it('node A shares a folder through the file browser', async () => {
    await go(pageA, 'share');
    const entry = pageA.locator('li.file', { hasText: 'holiday photos' });
    await entry.click();
    await pageA.getByRole('button', { name: 'Share selected' }).click();
    const row = table(pageA, 'Shared torrents').filter({ hasText: 'holiday photos' });
    await row.locator('.bar-text', { hasText: '100%' }).waitFor({ timeout: 60_000 });
    await row.locator('.badge', { hasText: 'Seeder' }).waitFor();
    // ID: first 8 characters shown, the full info-hash on hover.
    const id = row.locator('button.idbtn');
    assert.match(await id.innerText(), /^[0-9a-f]{8}$/);
    assert.match(await id.getAttribute('title'), /^[0-9a-f]{40} /);
    await shot(pageA, '02-a-share');
  });

  it('node B changes its rate limits in Settings', async () => {
    await go(pageB, 'settings');
    const input = pageB.locator('#set-max-down');
    await until('settings loaded', async () => (await input.inputValue()) === '0');
    await input.fill('8192');
    await pageB.locator('#set-max-up').fill('4096');
    await pageB.getByRole('button', { name: 'Save settings' }).click();
    await pageB.locator('.toast', { hasText: 'Settings saved' }).waitFor();
    const s = await b.api('GET', '/api/settings');
    assert.equal(s.max_up, 4096 * 1024);
    assert.equal(s.max_down, 8192 * 1024);
    await shot(pageB, '03-b-settings');
  });

  it('node B searches, downloads, pauses and resumes until 100%', async () => {
    await go(pageB, 'download');
    await pageB.locator('#search-q').fill('holiday');
    const result = table(pageB, 'Search results').filter({ hasText: 'holiday photos' });
    await result.waitFor({ timeout: 30_000 });
    await result.locator('input[data-action="pick"]').check();
    await pageB.getByRole('button', { name: 'Download selected' }).click();
    const active = table(pageB, 'Active downloads').filter({ hasText: 'holiday photos' });
    await active.waitFor();
    await active.locator('.badge', { hasText: 'Downloading' }).waitFor({ timeout: 30_000 });
    await until('some data', async () => (await b.api('GET', '/api/torrents'))[0].progress > 0, 30_000);
    await shot(pageB, '04-b-downloading');
    await active.getByRole('button', { name: /^Pause/ }).click();
    await active.locator('.badge', { hasText: 'Paused' }).waitFor();
    const paused = (await b.api('GET', '/api/torrents'))[0];
    assert.equal(paused.state, 'paused');
    assert.ok(paused.progress < 1, `paused at ${paused.progress}`);
    await active.getByRole('button', { name: /^Resume/ }).click();
    await active.locator('.badge', { hasText: /Downloading|Queued|Checking/ }).waitFor();
    // Unlimit the rest, so the test doesn't wait for the limit.
    await until('downloading again', async () => (await b.api('GET', '/api/torrents'))[0].state === 'downloading', 30_000);
    await a.api('PATCH', '/api/settings', { max_up: 0 });
    await active.waitFor({ state: 'detached', timeout: 90_000 });
    const hist = table(pageB, 'History').filter({ hasText: 'holiday photos' });
    await hist.locator('.badge', { hasText: 'Completed' }).waitFor({ timeout: 30_000 });
    await shot(pageB, '05-b-download-history');
  });

  it('node B dashboard shows it seeding at 100% with details', async () => {
    await go(pageB, 'dashboard');
    const row = table(pageB, 'Torrents').filter({ hasText: 'holiday photos' });
    await row.locator('.bar-text', { hasText: '100%' }).waitFor();
    await row.locator('.badge', { hasText: /Seeding|Finished/ }).waitFor();
    await row.click();
    await table(pageB, 'Files').first().waitFor();
    assert.equal(await table(pageB, 'Files').count(), 3);
    await shot(pageB, '06-b-dashboard-files');
    await pageB.locator('#tab-pieces').click();
    const canvas = pageB.locator('canvas.pieces');
    await until('piece map', async () => Number(await canvas.getAttribute('data-have')) > 0);
    assert.equal(await canvas.getAttribute('data-have'), await canvas.getAttribute('data-count'));
    await shot(pageB, '07-b-dashboard-pieces');
    await pageB.locator('#tab-trackers').click();
    await table(pageB, 'Trackers').first().waitFor();
    await pageB.locator('#tab-peers').click();
    await shot(pageB, '08-b-dashboard-peers');
  });

  it('node B statistics show received pieces and a speed chart', async () => {
    await go(pageB, 'stats');
    const log = table(pageB, 'Transfer log');
    await log.filter({ hasText: 'Received' }).first().waitFor({ timeout: 10_000 });
    const peak = Number(await pageB.locator('canvas.chart-down').getAttribute('data-peak'));
    assert.ok(peak > 0, `download chart peak ${peak}`);
    assert.ok(Number(await pageB.locator('canvas.chart-down').getAttribute('data-points')) > 1);
    await pageB.locator('select[aria-label="Direction"]').selectOption('up');
    await pageB.getByText('No transfers match these filters').waitFor();
    await pageB.locator('select[aria-label="Direction"]').selectOption('down');
    await log.first().waitFor();
    await shot(pageB, '09-b-statistics');
  });

  it('node A dashboard shows the upload', async () => {
    await go(pageA, 'dashboard');
    await until('uploaded total', async () => (await pageA.locator('#st-up-main').innerText()).includes('MiB'), 15_000);
    const row = table(pageA, 'Torrents').filter({ hasText: 'holiday photos' });
    // The Ratio cell, found by its column's heading (the label and queue columns follow it).
    const cols = await pageA.locator('table[aria-label="Torrents"] thead th').evaluateAll((ths) => ths.map((th) => th.dataset.col));
    const ratioCol = cols.indexOf('ratio');
    assert.ok(ratioCol >= 0, `a Ratio column among ${cols}`);
    await until('ratio', async () => {
      const r = (await row.locator('td').nth(ratioCol).textContent()).trim();
      return r === '∞' || Number(r) >= 1;
    }, 15_000);
    await shot(pageA, '10-a-dashboard');
    await go(pageA, 'stats');
    await table(pageA, 'Transfer log').filter({ hasText: 'Sent' }).first().waitFor();
    await shot(pageA, '11-a-statistics');
  });

  it('a download whose seeder is gone and data deleted shows as failed in History', async () => {
    await a.api('PATCH', '/api/settings', { max_up: 256 * 1024 });
    await go(pageA, 'share');
    await pageA.locator('li.file', { hasText: 'doomed' }).click();
    await pageA.getByRole('button', { name: 'Share selected' }).click();
    await table(pageA, 'Shared torrents').filter({ hasText: 'doomed' }).locator('.bar-text', { hasText: '100%' }).waitFor({ timeout: 60_000 });
    // The share job ends once the torrent is also published to the tracker's catalog.
    await pageA.locator('ul.jobs li', { hasText: 'doomed: shared' }).waitFor({ timeout: 30_000 });
    await go(pageB, 'download');
    await pageB.locator('#search-q').fill('doomed');
    const result = table(pageB, 'Search results').filter({ hasText: 'doomed' });
    await result.waitFor({ timeout: 30_000 });
    await result.locator('input[data-action="pick"]').check();
    await pageB.getByRole('button', { name: 'Download selected' }).click();
    const active = table(pageB, 'Active downloads').filter({ hasText: 'doomed' });
    await active.waitFor();
    const doomed = async () => (await b.api('GET', '/api/torrents')).find((t) => t.name === 'doomed');
    await until('some data', async () => (await doomed()).progress > 0, 30_000);
    // The seeder goes away (its page first, so its stream ending is no console error).
    await pageA.context().close();
    await a.proc.stop();
    await active.getByRole('button', { name: /^Pause/ }).click();
    await active.locator('.badge', { hasText: 'Paused' }).waitFor();
    const dir = path.join(b.dl, 'doomed');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.writeFileSync(dir, 'not a folder any more');
    await active.getByRole('button', { name: /^Resume/ }).click();
    await active.locator('.badge', { hasText: 'Error' }).waitFor({ timeout: 30_000 });
    const hist = table(pageB, 'History').filter({ hasText: 'doomed' });
    await hist.locator('.badge', { hasText: 'Failed' }).waitFor({ timeout: 30_000 });
    const reason = await hist.locator('td.err').innerText();
    assert.ok(reason.length > 5, `failure reason shown: ${reason}`);
    await pageB.locator('select[aria-label="Status"]').selectOption('failed');
    await table(pageB, 'History').filter({ hasText: 'holiday photos' }).waitFor({ state: 'detached' });
    await shot(pageB, '12-b-history-failed');
  });

  it('narrow screens and dark theme render every view', async () => {
    const phone = await openPage(browser, b.url, { errors, viewport: { width: 390, height: 844 }, colorScheme: 'dark' });
    for (const v of ['dashboard', 'share', 'download', 'stats', 'settings']) {
      await go(phone, v);
      await phone.waitForTimeout(1200);
      await phone.screenshot({ path: path.join(SHOTS, `13-phone-dark-${v}.png`) });
      const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `${v}: page scrolls sideways by ${overflow}px`);
    }
    await phone.context().close();
  });

  it('logged no console errors', () => {
    assert.deepEqual(errors, []);
  });
});
