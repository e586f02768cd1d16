// Playing a video while it downloads: node A shares a WebM made by ffmpeg; node B, limited
// to 256 KiB/s, downloads it; Play in B's Files table opens the player, whose <video>
// reaches `canplay` while B's download is still under 100%. Also the VLC/mpv link and
// the sequential toggle.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { launch, openPage } from './lib/browser.mjs';
import { cleanUp, SHOTS, startNode, startTracker, tempDir, until } from './lib/shoal.mjs';

const table = (page, label) => page.locator(`table[aria-label="${label}"] tbody tr`);
const hasFfmpeg = spawnSync('ffmpeg', ['-version']).status === 0;
if (!hasFfmpeg && process.env.SHOAL_INTEROP_REQUIRED === '1') {
  throw new Error('ffmpeg is missing (apt-get install ffmpeg, or run scripts/test) [SHOAL_INTEROP_REQUIRED=1]');
}

describe('playing a video while it downloads', { timeout: 240_000, skip: hasFfmpeg ? false : 'ffmpeg not found (apt-get install ffmpeg)' }, () => {
  let root;
  let tracker;
  let a;
  let b;
  let browser;
  let page;
  let id;
  const errors = [];

  before(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    root = tempDir('stream');
    tracker = await startTracker(root);
    [a, b] = await Promise.all([startNode(root, 'a', tracker.url), startNode(root, 'b', tracker.url, ['--max-down', '256KiB'])]);
    const video = path.join(a.home, 'test card.webm');
    const ff = spawnSync('ffmpeg', [
      // Noise keeps the 2 Mbit/s rate honest (~5 MB); realtime encoding keeps it quick.
      '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=duration=20:size=320x240:rate=25',
      '-vf', 'noise=alls=30:allf=t+u', '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8',
      '-b:v', '2M', video,
    ]);
    assert.equal(ff.status, 0, `ffmpeg failed: ${ff.stderr}`);
    assert.ok(fs.statSync(video).size > 2 * 1024 * 1024, 'a WebM of a few MiB');
    const job = await a.api('POST', '/api/share', { path: video });
    id = await until('A shares the video', async () => {
      const j = await a.api('GET', `/api/jobs/${job.job_id}`);
      if (j.state === 'error') throw new Error(JSON.stringify(j));
      return j.state === 'done' && j.torrent_id;
    }, 60_000);
    const res = await fetch(new URL(`/api/torrents/${id}/torrent`, a.url));
    const torrent = Buffer.from(await res.arrayBuffer());
    const added = await fetch(new URL('/api/torrents', b.url), {
      method: 'POST', headers: { 'Content-Type': 'application/x-bittorrent' }, body: torrent,
    });
    assert.equal(added.status, 201, await added.text());
    browser = await launch();
    page = await openPage(browser, b.url, { errors });
    await page.locator('#conn[data-state="live"]').waitFor();
  });

  after(() => cleanUp(browser, [a, b, tracker], root));

  it('plays through the Play button before the download completes', async () => {
    const row = table(page, 'Torrents').filter({ hasText: 'test card.webm' });
    await row.waitFor({ timeout: 30_000 });
    await row.click();
    const file = table(page, 'Files').filter({ hasText: 'test card.webm' });
    await file.waitFor();
    await file.getByRole('button', { name: 'Play' }).click();
    const video = page.locator('dialog.player video');
    await video.waitFor();
    await page.locator('dialog.player video[data-ready="1"]').waitFor({ timeout: 60_000 });
    const t = await b.api('GET', `/api/torrents/${id}`);
    assert.ok(t.progress < 1, `B had ${t.progress} when the video could play`);
    await page.screenshot({ path: path.join(SHOTS, '20-b-player.png') });
    await page.locator('dialog.player').getByRole('button', { name: 'Close' }).click();
    await page.locator('dialog.player').waitFor({ state: 'detached' });
  });

  it('copies a token link for VLC or mpv and toggles sequential download', async () => {
    const file = table(page, 'Files').filter({ hasText: 'test card.webm' });
    await file.getByRole('button', { name: 'Copy link' }).click();
    const toast = page.locator('.toast', { hasText: 'Link copied' });
    await toast.waitFor();
    const url = (await toast.innerText()).match(/http:\/\/\S+/)[0];
    assert.match(url, /\/api\/torrents\/[0-9a-f]{40}\/files\/0\/stream\?token=[0-9a-f]{32}$/);
    const head = await fetch(url, { headers: { Range: 'bytes=0-3' } });
    assert.equal(head.status, 206);
    assert.deepEqual([...new Uint8Array(await head.arrayBuffer())], [0x1a, 0x45, 0xdf, 0xa3], 'EBML magic');
    await page.getByLabel('Sequential download').check();
    await until('sequential on', async () => (await b.api('GET', `/api/torrents/${id}`)).sequential === true);
    assert.deepEqual(errors, []);
  });
});
