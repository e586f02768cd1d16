// Categories and tags in the dashboard (web/js/views/labels.js): a category made with
// "New category…" and tags typed in the torrent's details are saved to the node, shown
// in the list's columns, and the category filter narrows the list to that category,
// to the uncategorized torrents, and back to all. One node shares two folders.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { launch, openPage } from './lib/browser.mjs';
import { cleanUp, makeFolder, SHOTS, startNode, startTracker, tempDir, until } from './lib/shoal.mjs';

const rows = (page) => page.locator('table[aria-label="Torrents"] tbody tr');
const NAMES = ['labels alpha', 'labels beta'];

describe('categories and tags', { timeout: 120_000 }, () => {
  let root;
  let tracker;
  let a;
  let browser;
  let page;
  const errors = [];

  before(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    root = tempDir('labels');
    tracker = await startTracker(root);
    a = await startNode(root, 'a', tracker.url);
    for (const name of NAMES) {
      const folder = makeFolder(a.home, name, 1, 64 * 1024);
      const job = await a.api('POST', '/api/share', { path: folder });
      await until(`${name} shared`, async () => (await a.api('GET', `/api/jobs/${job.job_id}`)).state === 'done');
    }
    browser = await launch();
    page = await openPage(browser, a.url, { errors });
    await page.locator('#conn[data-state="live"]').waitFor();
    await page.evaluate(() => {
      location.hash = '#/dashboard';
    });
    await page.locator('#view[data-view="dashboard"]').waitFor();
  });

  after(() => cleanUp(browser, [a, tracker], root));

  it('lists every torrent until a category is chosen', async () => {
    // The filter starts at "All categories" (not "Uncategorized", whose value is the
    // empty select's).
    const filter = page.locator('select[aria-label="Filter by category"]');
    await until('the filter choices', async () => (await filter.locator('option').count()) >= 2);
    assert.equal(await filter.inputValue(), '*');
  });

  it('sets a new category and tags in the details', async () => {
    const alpha = rows(page).filter({ hasText: 'labels alpha' });
    await alpha.waitFor({ timeout: 30_000 });
    await rows(page).filter({ hasText: 'labels beta' }).waitFor();
    await alpha.locator('td.name').click();
    const editor = page.locator('div.labels');
    const category = editor.locator('select[aria-label="Category"]');
    await until('the category choices', async () => (await category.locator('option[value="+"]').count()) === 1);
    await category.selectOption('+');
    await editor.locator('input[aria-label="Tags"]').fill('hd, keep');
    // An edit in progress survives live updates (about one a second) even when the focus
    // has left the editor.
    await page.locator('h2.details-title').click();
    await page.waitForTimeout(2500);
    assert.equal(await category.inputValue(), '+');
    assert.equal(await editor.locator('input[aria-label="Tags"]').inputValue(), 'hd, keep');
    page.once('dialog', (d) => d.accept('movies'));
    await editor.getByRole('button', { name: 'Save labels' }).click();
    await page.locator('.toast', { hasText: 'Labels saved' }).waitFor();

    const saved = (await a.api('GET', '/api/torrents')).find((t) => t.name === 'labels alpha');
    assert.equal(saved.category, 'movies');
    assert.deepEqual(saved.tags, ['hd', 'keep']);
    assert.ok((await a.api('GET', '/api/categories')).some((c) => c.name === 'movies'));
    assert.equal(await category.inputValue(), 'movies');
    // The list's Category and Tags columns show them (live update; the columns may be
    // hidden at narrow widths, so their text is read, not their visibility).
    await until('the label columns', async () => {
      const cells = (await alpha.locator('td').allTextContents()).map((s) => s.trim());
      return cells.includes('movies') && cells.includes('hd, keep');
    });
    await page.screenshot({ path: path.join(SHOTS, 'labels-details.png'), fullPage: true });
  });

  it('filters the list by category', async () => {
    const filter = page.locator('select[aria-label="Filter by category"]');
    // The filter reloads its choices when it gets the focus (as when the user opens it).
    await until('movies in the filter', async () => {
      await filter.evaluate((el) => {
        el.blur();
        el.focus();
      });
      return (await filter.locator('option[value="movies"]').count()) === 1;
    });
    const names = async () => (await rows(page).locator('td.name').allInnerTexts()).map((s) => s.trim()).sort();

    await filter.selectOption('movies');
    await until('only alpha listed', async () => JSON.stringify(await names()) === JSON.stringify(['labels alpha']));
    await filter.selectOption('');
    await until('only beta listed', async () => JSON.stringify(await names()) === JSON.stringify(['labels beta']));
    await filter.selectOption('*');
    await until('both listed', async () => JSON.stringify(await names()) === JSON.stringify(NAMES));
    await filter.selectOption('movies');
    await until('only alpha again', async () => (await names()).length === 1);
    await page.screenshot({ path: path.join(SHOTS, 'labels-filter.png'), fullPage: true });
    assert.deepEqual(errors, []);
  });

  it('shows the picked torrent\'s category at once, even while the categories load', async () => {
    const filter = page.locator('select[aria-label="Filter by category"]');
    await filter.selectOption('*');
    // A slow node: every fetch of the categories takes 800 ms.
    const slow = async (r) => {
      if (r.request().method() === 'GET') await new Promise((res) => setTimeout(res, 800));
      await r.continue();
    };
    await page.route('**/api/categories', slow);
    try {
      const category = page.locator('div.labels select[aria-label="Category"]');
      await rows(page).filter({ hasText: 'labels beta' }).locator('td.name').click();
      await until('beta shown', async () => (await category.inputValue()) === '');
      await rows(page).filter({ hasText: 'labels alpha' }).locator('td.name').click();
      assert.equal(await category.inputValue(), 'movies');
      // Typed before any fetch of the categories has answered: Save keeps alpha's category.
      await page.locator('div.labels input[aria-label="Tags"]').fill('hd, keep, new');
      await page.locator('div.labels').getByRole('button', { name: 'Save labels' }).click();
      await page.locator('.toast', { hasText: 'Labels saved' }).last().waitFor();
      await until('tags saved', async () => {
        const t = (await a.api('GET', '/api/torrents')).find((x) => x.name === 'labels alpha');
        return t.tags.includes('new');
      });
      const t = (await a.api('GET', '/api/torrents')).find((x) => x.name === 'labels alpha');
      assert.equal(t.category, 'movies');
      assert.deepEqual(t.tags, ['hd', 'keep', 'new']);
    } finally {
      await page.unroute('**/api/categories', slow);
    }
    assert.deepEqual(errors, []);
  });

  it('keeps what is typed while a save is on its way', async () => {
    const slow = async (r) => {
      await new Promise((res) => setTimeout(res, 800));
      await r.continue();
    };
    await page.route('**/api/torrents/*/labels', slow);
    try {
      const input = page.locator('div.labels input[aria-label="Tags"]');
      await input.fill('hd, keep, new, one');
      await page.locator('div.labels').getByRole('button', { name: 'Save labels' }).click();
      // The user goes on typing before the node answers.
      await input.fill('hd, keep, new, one, two');
      await until('the save answered', async () => {
        const t = (await a.api('GET', '/api/torrents')).find((x) => x.name === 'labels alpha');
        return t.tags.includes('one');
      });
      await page.waitForTimeout(2500);
      assert.equal(await input.inputValue(), 'hd, keep, new, one, two');
    } finally {
      await page.unroute('**/api/torrents/*/labels', slow);
    }
    assert.deepEqual(errors, []);
  });
});
