// The Settings view on a slow node: the form stays read-only until the settings have
// loaded, so what the user types first is not overwritten by the late answer, and a save
// sends it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openPage } from './lib/browser.mjs';
import { cleanUp, startNode, startTracker, tempDir } from './lib/shoal.mjs';

describe('settings on a slow node', { timeout: 60_000 }, () => {
  let root;
  let tracker;
  let a;
  let browser;
  let page;
  const errors = [];

  before(async () => {
    root = tempDir('settings');
    tracker = await startTracker(root);
    a = await startNode(root, 'a', tracker.url);
    browser = await launch();
    page = await openPage(browser, a.url, { errors });
    await page.locator('#conn[data-state="live"]').waitFor();
  });

  after(() => cleanUp(browser, [a, tracker], root));

  it('keeps what was typed before the settings loaded, and saves it', async () => {
    // Every read of the settings takes 800 ms.
    await page.route('**/api/settings', async (r) => {
      if (r.request().method() === 'GET') await new Promise((res) => setTimeout(res, 800));
      await r.continue();
    });
    await page.evaluate(() => {
      location.hash = '#/settings';
    });
    const down = page.locator('#set-max-down');
    await down.waitFor();
    assert.ok(await down.isDisabled(), 'the form is read-only until the settings load');
    // fill waits until the field is editable, i.e. until the settings are in.
    await down.fill('8192');
    await page.waitForTimeout(1000);
    assert.equal(await down.inputValue(), '8192');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.locator('.toast', { hasText: 'Settings saved' }).waitFor();
    assert.equal((await a.api('GET', '/api/settings')).max_down, 8192 * 1024);
    assert.equal(await down.inputValue(), '8192');
    assert.deepEqual(errors, []);
  });
});
