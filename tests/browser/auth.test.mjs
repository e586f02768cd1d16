// The web login against a real node with a password (set by `shoal passwd` from stdin):
// the UI sends the browser to the login page, a wrong password is reported, the right
// one opens the UI (live updates and API calls work behind the login), and Log out ends
// the session.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { launch, openPage } from './lib/browser.mjs';
import { cleanUp, SHOAL, SHOTS, startNode, tempDir } from './lib/shoal.mjs';

const PASSWORD = 'correct horse battery';

describe('web login', { timeout: 120_000 }, () => {
  let root;
  let node;
  let browser;
  let page;
  const errors = [];
  const shot = (name) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

  before(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    root = tempDir('auth');
    const data = path.join(root, 'auth', 'data');
    const set = spawnSync(SHOAL, ['passwd', '--data-dir', data], { input: `${PASSWORD}\n${PASSWORD}\n`, encoding: 'utf8' });
    assert.equal(set.status, 0, `shoal passwd: ${set.stdout}${set.stderr}`);
    // No tracker is needed: the node holds no torrents.
    node = await startNode(root, 'auth', 'http://127.0.0.1:9/announce');
    browser = await launch();
    page = await openPage(browser, node.url, { errors });
  });

  after(() => cleanUp(browser, [node], root));

  it('sends the browser to the login page', async () => {
    await page.waitForURL(/\/login$/);
    await page.locator('form#login').waitFor();
    assert.equal(await page.locator('#username').inputValue(), 'admin');
    await shot('login-01-page');
  });

  it('reports a wrong password', async () => {
    await page.locator('#password').fill('not the password');
    await page.getByRole('button', { name: 'Log in' }).click();
    const error = page.locator('#login-error');
    await error.waitFor({ state: 'visible' });
    assert.match(await error.innerText(), /Wrong user name or password/);
    assert.match(page.url(), /\/login$/);
    await shot('login-02-wrong');
  });

  it('opens the UI with the right password', async () => {
    await page.locator('#password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL((u) => !u.pathname.startsWith('/login'));
    // Live updates (SSE) and API calls pass the login.
    await page.locator('#conn[data-state="live"]').waitFor();
    await page.getByText('No torrents yet').waitFor();
    await page.evaluate(() => {
      location.hash = '#/settings';
    });
    const input = page.locator('#set-max-down');
    await input.waitFor();
    await page.waitForFunction(() => document.querySelector('#set-max-down')?.value === '0');
    const logout = page.getByRole('button', { name: 'Log out' });
    await logout.waitFor({ state: 'visible' });
    await shot('login-03-in');
  });

  it('logs out', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(/\/login$/);
    const status = await page.evaluate(async () => (await fetch('/api/node')).status);
    assert.equal(status, 401);
    // The UI itself sends the browser back to the login page.
    await page.goto(node.url);
    await page.waitForURL(/\/login$/);
  });

  it('had no script errors', () => {
    // 401s of the login attempts are logged by the browser as failed loads; nothing else.
    const real = errors.filter((e) => !/status of 401/.test(e));
    assert.deepEqual(real, []);
  });
});
