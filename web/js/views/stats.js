// Statistics: live speed charts over a fixed window, totals, and the transfer log paged
// from the node (never held whole in the page).

import * as fmt from '../format.js';
import { get, qs } from '../api.js';
import { drawChart, CHART_WINDOW_MS } from '../chart.js';
import { KeyedTable } from '../table.js';
import { h, setText, setBadge, reportError, debounce } from '../ui.js';
import { statCard } from './dashboard.js';

const PER_PAGE = 50;

export default {
  mount(root, ctx) {
    const downCanvas = h('canvas.chart.chart-down', { role: 'img', 'aria-label': 'Download speed over the last 5 minutes' });
    const upCanvas = h('canvas.chart.chart-up', { role: 'img', 'aria-label': 'Upload speed over the last 5 minutes' });
    const downNow = h('span.chart-now.rate-down');
    const upNow = h('span.chart-now.rate-up');

    const dir = h('select', { 'aria-label': 'Direction' },
      h('option', { value: '', text: 'Both directions' }),
      h('option', { value: 'down', text: 'Received' }),
      h('option', { value: 'up', text: 'Sent' }));
    const peer = h('input', { type: 'search', placeholder: 'Peer', 'aria-label': 'Filter by peer', autocomplete: 'off' });
    const torrent = h('input', { type: 'search', placeholder: 'Torrent ID', 'aria-label': 'Filter by torrent ID', autocomplete: 'off' });
    const prev = h('button.btn', { type: 'button', text: '‹ Newer', disabled: true });
    const next = h('button.btn', { type: 'button', text: 'Older ›', disabled: true });
    const pageInfo = h('span.muted.page-info');

    const names = new Map();
    const log = new KeyedTable([
      { id: 'time', label: 'Time', cls: 'mono', text: (r) => fmt.clock(r.ts_ms), title: (r) => new Date(r.ts_ms).toLocaleString() },
      {
        id: 'dir', label: 'Direction',
        create: (td) => td.append(h('span.badge')),
        update: (td, r) => setBadge(td.firstChild, r.direction === 'down' ? '↓ Received' : '↑ Sent', r.direction === 'down' ? 'down' : 'up'),
      },
      { id: 'peer', label: 'Peer', cls: 'mono', text: (r) => r.peer },
      { id: 'file', label: 'File ID', cls: 'mono', text: (r) => fmt.shortId(r.info_hash), title: (r) => `${names.get(r.info_hash) || ''} ${r.info_hash}`.trim() },
      { id: 'piece', label: 'Chunk', cls: 'num', text: (r) => r.piece },
      { id: 'bytes', label: 'Bytes', cls: 'num', text: (r) => fmt.bytes(r.bytes) },
    ], {
      key: (r) => `${r.ts_ms}:${r.direction}:${r.peer}:${r.info_hash}:${r.piece}`,
      label: 'Transfer log',
      empty: h('div.empty', null, h('div.empty-title.log-empty', { text: 'No transfers yet' }),
        h('p', { text: 'Each chunk received from or sent to a peer is logged here.' })),
    });

    root.append(
      h('div.view-head', null, h('h1', { text: 'Statistics' })),
      h('div.stats',
        null,
        statCard('Downloaded', 'sx-down'),
        statCard('Uploaded', 'sx-up'),
        statCard('Ratio', 'sx-ratio'),
        statCard('Torrents', 'sx-torrents')),
      h('div.cols.charts',
        null,
        h('section.card', { 'aria-label': 'Download speed' },
          h('div.card-head', null, h('h2', { text: 'Download speed' }), h('div.spacer'), downNow), downCanvas),
        h('section.card', { 'aria-label': 'Upload speed' },
          h('div.card-head', null, h('h2', { text: 'Upload speed' }), h('div.spacer'), upNow), upCanvas)),
      h('section.card', { 'aria-label': 'Transfer log' },
        h('div.card-head.wrap', null, h('h2', { text: 'Transfer log' }), h('span.muted.count.log-total'), h('div.spacer'), dir, peer, torrent),
        log.wrap,
        h('div.pager', null, prev, pageInfo, next)),
    );

    const { store } = ctx;
    const styles = getComputedStyle(root);
    const colors = { down: styles.getPropertyValue('--down').trim() || '#0e7490', up: styles.getPropertyValue('--up').trim() || '#16a34a' };
    const draw = () => {
      const now = Date.now();
      drawChart(downCanvas, store.downRing, { windowMs: CHART_WINDOW_MS, now, color: colors.down });
      drawChart(upCanvas, store.upRing, { windowMs: CHART_WINDOW_MS, now, color: colors.up });
    };
    const ro = new ResizeObserver(() => draw());
    ro.observe(downCanvas);
    ro.observe(upCanvas);

    ctx.onUpdate((data) => {
      const s = data.stats || {};
      setText(root.querySelector('#sx-down-main'), fmt.bytes(s.downloaded));
      setText(root.querySelector('#sx-down-sub'), `${s.downloads_completed ?? 0} completed · ${s.downloads_failed ?? 0} failed`);
      setText(root.querySelector('#sx-up-main'), fmt.bytes(s.uploaded));
      setText(root.querySelector('#sx-up-sub'), `${s.files_shared ?? 0} seeding`);
      setText(root.querySelector('#sx-ratio-main'), s.downloaded ? fmt.ratio(s.uploaded / s.downloaded) : '—');
      setText(root.querySelector('#sx-ratio-sub'), 'uploaded ÷ downloaded');
      setText(root.querySelector('#sx-torrents-main'), String(s.torrents ?? data.torrents.length));
      setText(root.querySelector('#sx-torrents-sub'), `${s.peers ?? 0} connected peers`);
      setText(downNow, fmt.rate(s.down_rate));
      setText(upNow, fmt.rate(s.up_rate));
      names.clear();
      for (const t of data.torrents) names.set(t.id, t.name);
      draw();
    });

    // --- transfer log, paged from the server
    let page = 0;
    let ctl = null;
    let busy = false;
    async function load() {
      if (ctl) ctl.abort();
      ctl = new AbortController();
      busy = true;
      try {
        const r = await get(`/api/log${qs({
          page, per_page: PER_PAGE, direction: dir.value, peer: peer.value.trim(), torrent: torrent.value.trim(),
        })}`, { signal: ctl.signal });
        const pages = Math.max(1, Math.ceil(r.total / PER_PAGE));
        if (page >= pages && page > 0) {
          page = pages - 1;
          busy = false;
          return load();
        }
        log.update(r.items || []);
        setText(pageInfo, `Page ${page + 1} of ${pages}`);
        setText(root.querySelector('.log-total'), `${r.total} records`);
        prev.disabled = page === 0;
        next.disabled = page + 1 >= pages;
        const filtered = dir.value || peer.value.trim() || torrent.value.trim();
        setText(root.querySelector('.log-empty'), filtered ? 'No transfers match these filters' : 'No transfers yet');
      } catch (e) {
        reportError(e, 'Cannot load the transfer log');
      } finally {
        busy = false;
      }
    }
    const loadSoon = debounce(() => {
      page = 0;
      load();
    }, 250);
    ctx.listen(dir, 'change', loadSoon);
    ctx.listen(peer, 'input', loadSoon);
    ctx.listen(torrent, 'input', loadSoon);
    ctx.listen(prev, 'click', () => {
      page = Math.max(0, page - 1);
      load();
    });
    ctx.listen(next, 'click', () => {
      page++;
      load();
    });
    // The newest page follows live; older pages stay still while being read.
    ctx.every(2000, () => {
      if (page === 0 && !busy) load();
    });
    load();
    return () => {
      ro.disconnect();
      loadSoon.cancel();
      if (ctl) ctl.abort();
    };
  },
};
