// Search results in the Download view: a click on a row toggles its selection as its
// checkbox does, and a double click downloads that row. Node A shares two folders
// through the API; node B finds both by search in the browser.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { launch, openPage } from './lib/browser.mjs';
import { cleanUp, makeFolder, startNode, startTracker, tempDir, until } from './lib/shoal.mjs';

const rows = (page) => page.locator('table[aria-label="Search results"] tbody tr');

describe('search result rows', { timeout: 120_000 }, () => {
  let root;
  let tracker;
  let a;
  let b;
  let browser;
  let page;
  const errors = [];

  before(async () => {
    root = tempDir('search-rows');
    tracker = await startTracker(root);
    [a, b] = await Promise.all([startNode(root, 'a', tracker.url), startNode(root, 'b', tracker.url)]);
    for (const name of ['rowtest alpha', 'rowtest beta']) {
      const folder = makeFolder(a.home, name, 1, 64 * 1024);
      const job = await a.api('POST', '/api/share', { path: folder });
      await until(`${name} shared`, async () => (await a.api('GET', `/api/jobs/${job.job_id}`)).state === 'done');
    }
    browser = await launch();
    page = await openPage(browser, b.url, { errors });
    await page.locator('#conn[data-state="live"]').waitFor();
  });

  after(() => cleanUp(browser, [a, b, tracker], root));

  it('a click toggles the selection, a double click downloads', async () => {
    await page.evaluate(() => {
      location.hash = '#/download';
    });
    await page.locator('#view[data-view="download"]').waitFor();
    await page.locator('#search-q').fill('rowtest');
    const alpha = rows(page).filter({ hasText: 'rowtest alpha' });
    const beta = rows(page).filter({ hasText: 'rowtest beta' });
    await alpha.waitFor({ timeout: 30_000 });
    await beta.waitFor();
    const getBtn = page.getByRole('button', { name: /^Download .*selected$/ });
    const box = alpha.locator('input[data-action="pick"]');

    await alpha.locator('td.name').click();
    assert.equal(await box.isChecked(), true);
    assert.equal(await getBtn.isEnabled(), true);
    await alpha.locator('td.name').click();
    assert.equal(await box.isChecked(), false);
    assert.equal(await getBtn.isEnabled(), false);

    await beta.locator('td.name').dblclick();
    await until('beta added on B', async () => (await b.api('GET', '/api/torrents')).some((t) => t.name === 'rowtest beta'));
    await beta.locator('.badge', { hasText: 'Added' }).waitFor();
    assert.equal(await beta.locator('input[data-action="pick"]').isDisabled(), true);
    // Only the double-clicked row was downloaded.
    const names = (await b.api('GET', '/api/torrents')).map((t) => t.name);
    assert.deepEqual(names, ['rowtest beta']);
    assert.deepEqual(errors, []);
    await page.screenshot({ path: path.join(root, 'search-rows.png') });
  });
});
