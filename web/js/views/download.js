// Download: search the tracker catalog as you type, add by magnet or .torrent, manage
// active downloads, and browse the history of finished ones.

import * as fmt from '../format.js';
import { api, get, qs } from '../api.js';
import { KeyedTable } from '../table.js';
import { h, setText, progressBar, setProgress, setBadge, reportError, toast, confirmDialog, debounce } from '../ui.js';

const STATUS_KIND = { completed: 'ok', failed: 'bad', cancelled: 'muted' };

export default {
  mount(root, ctx) {
    // --- search
    const q = h('input.search', {
      type: 'search', id: 'search-q', placeholder: 'Name or ID', autocomplete: 'off', 'aria-label': 'Search the tracker catalog',
    });
    const getBtn = h('button.btn.primary', { type: 'button', text: 'Download selected', disabled: true });
    const searchInfo = h('span.muted.count');
    const checked = new Set();
    const have = () => new Set((ctx.store.update ? ctx.store.update.torrents : []).map((t) => t.id));
    let haveIds = have();
    const results = new KeyedTable([
      {
        id: 'pick', label: '', cls: 'check',
        create: (td) => td.append(h('input', { type: 'checkbox', dataset: { action: 'pick' } })),
        update: (td, r) => {
          const box = td.firstChild;
          const added = haveIds.has(r.id);
          box.disabled = added;
          box.checked = !added && checked.has(r.id);
          box.setAttribute('aria-label', added ? `${r.name} is already added` : `Select ${r.name}`);
        },
      },
      { id: 'name', label: 'Name', cls: 'name', sort: (r) => r.name.toLowerCase(), text: (r) => r.name, title: (r) => r.name },
      { id: 'id', label: 'ID', cls: 'mono opt', text: (r) => fmt.shortId(r.id), title: (r) => r.id },
      { id: 'size', label: 'Size', cls: 'num', sort: (r) => r.size, text: (r) => fmt.bytes(r.size) },
      { id: 'files', label: 'Files', cls: 'num opt', sort: (r) => r.file_count, text: (r) => r.file_count },
      { id: 'seeders', label: 'Seeders', cls: 'num', sort: (r) => r.seeders, text: (r) => fmt.count(r.seeders) },
      { id: 'leechers', label: 'Leechers', cls: 'num', sort: (r) => r.leechers, text: (r) => fmt.count(r.leechers) },
      { id: 'published', label: 'Published', cls: 'opt', sort: (r) => r.published, text: (r) => fmt.dateTime(r.published) },
      {
        id: 'state', label: '',
        create: (td) => td.append(h('span.badge')),
        update: (td, r) => setBadge(td.firstChild, haveIds.has(r.id) ? 'Added' : '', haveIds.has(r.id) ? 'ok' : 'none'),
      },
    ], {
      key: (r) => r.id,
      label: 'Search results',
      onAction: (a, id, r, el) => {
        if (a === 'pick') pick(id, el.checked);
      },
      empty: h('div.empty.small.search-empty', { text: 'The catalog of your trackers is empty.' }),
    });

    function pick(id, on) {
      if (on) checked.add(id);
      else checked.delete(id);
      getBtn.disabled = checked.size === 0;
      setText(getBtn, checked.size > 1 ? `Download ${checked.size} selected` : 'Download selected');
    }
    // A click on a row toggles its selection as its checkbox does; a double click
    // downloads that row. The second click of a double click leaves the selection alone.
    const rowOf = (e) => {
      if (e.target.closest('button, input, select, a, label')) return null;
      const tr = e.target.closest('tr');
      const box = tr && tr.querySelector('input[data-action="pick"]');
      return box && !box.disabled ? { key: tr.dataset.key, box } : null;
    };
    ctx.listen(results.tbody, 'click', (e) => {
      const r = e.detail > 1 ? null : rowOf(e);
      if (!r) return;
      r.box.checked = !r.box.checked;
      pick(r.key, r.box.checked);
    });
    ctx.listen(results.tbody, 'dblclick', (e) => {
      const r = rowOf(e);
      if (r) download([r.key]);
    });

    let searchCtl = null;
    let lastQuery = null;
    async function search() {
      const text = q.value.trim();
      if (text === lastQuery) return;
      lastQuery = text;
      if (searchCtl) searchCtl.abort();
      searchCtl = new AbortController();
      searchInfo.textContent = 'Searching…';
      try {
        const r = await get(`/api/search${qs({ q: text })}`, { signal: searchCtl.signal });
        const items = r.results || [];
        for (const id of [...checked]) if (!items.some((x) => x.id === id)) checked.delete(id);
        getBtn.disabled = checked.size === 0;
        results.update(items);
        setText(searchInfo, `${items.length} result${items.length === 1 ? '' : 's'}`);
        setText(root.querySelector('.search-empty'), text ? `Nothing in the catalog matches “${text}”.` : 'Nothing has been published to your trackers yet.');
      } catch (e) {
        if (e.name !== 'AbortError') {
          searchInfo.textContent = '';
          lastQuery = null;
          reportError(e, 'Search failed');
        }
      }
    }
    const searchSoon = debounce(search, 250);
    ctx.listen(q, 'input', searchSoon);
    ctx.listen(q, 'keydown', (e) => {
      if (e.key === 'Enter') {
        searchSoon.cancel();
        lastQuery = null;
        search();
      }
    });
    ctx.signal.addEventListener('abort', () => {
      searchSoon.cancel();
      if (searchCtl) searchCtl.abort();
    });
    ctx.listen(getBtn, 'click', () => download([...checked]));
    async function download(ids) {
      getBtn.disabled = true;
      for (const id of ids) {
        try {
          const t = await api('POST', '/api/get', { id });
          checked.delete(id);
          toast(`Downloading ${t ? t.name : id}`, 'ok');
        } catch (e) {
          if (e.status === 409) {
            checked.delete(id);
            toast('Already added', 'info');
          } else reportError(e, 'Cannot download');
        }
      }
      haveIds = have();
      results.update(results.items);
      getBtn.disabled = checked.size === 0;
      setText(getBtn, checked.size > 1 ? `Download ${checked.size} selected` : 'Download selected');
    }

    // --- add by magnet or .torrent
    const magnet = h('input', { type: 'text', id: 'magnet', placeholder: 'magnet:?xt=urn:btih:…', 'aria-label': 'Magnet link', autocomplete: 'off' });
    const addForm = h('form.add-row', null, magnet, h('button.btn', { type: 'submit', text: 'Add magnet' }));
    const tfile = h('input.visually-hidden', { type: 'file', accept: '.torrent,application/x-bittorrent', multiple: true });
    const tfileLabel = h('label.btn', { tabindex: '0', role: 'button' }, tfile, 'Open .torrent file…');
    ctx.listen(addForm, 'submit', async (e) => {
      e.preventDefault();
      const m = magnet.value.trim();
      if (!m) return;
      try {
        const t = await api('POST', '/api/torrents', { magnet: m });
        magnet.value = '';
        toast(`Added ${t ? t.name : 'torrent'}`, 'ok');
      } catch (err) {
        reportError(err, 'Cannot add magnet');
      }
    });
    ctx.listen(tfileLabel, 'keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        tfile.click();
      }
    });
    ctx.listen(tfile, 'change', async () => {
      for (const f of [...tfile.files]) {
        try {
          const t = await api('POST', '/api/torrents', await f.arrayBuffer(), { type: 'application/x-bittorrent' });
          toast(`Added ${t ? t.name : f.name}`, 'ok');
        } catch (err) {
          reportError(err, `Cannot add ${f.name}`);
        }
      }
      tfile.value = '';
    });

    // --- active downloads
    const active = new KeyedTable([
      { id: 'name', label: 'Name', cls: 'name', sort: (t) => t.name.toLowerCase(), text: (t) => t.name, title: (t) => t.name },
      { id: 'size', label: 'Size', cls: 'num opt', sort: (t) => t.size, text: (t) => fmt.bytes(t.size) },
      {
        id: 'progress', label: 'Progress', cls: 'progress', sort: (t) => t.progress,
        create: (td) => td.append(progressBar()),
        update: (td, t) => setProgress(td.firstChild, t.progress, fmt.pct(t.progress), t.state),
      },
      {
        id: 'status', label: 'Status', sort: (t) => t.state,
        create: (td) => td.append(h('span.badge')),
        update: (td, t) => setBadge(td.firstChild, fmt.status(t), { downloading: 'down', error: 'bad', checking: 'warn', metadata: 'warn' }[t.state] || 'muted'),
        title: (t) => t.error || '',
      },
      { id: 'sp', label: 'Seeds / peers', cls: 'num', text: (t) => `${fmt.connSwarm(t.seeds, t.swarm_seeders)} / ${fmt.connSwarm(t.peers, t.swarm_leechers)}` },
      { id: 'down', label: 'Down speed', cls: 'num', sort: (t) => t.down_rate, text: (t) => fmt.rate(t.down_rate, true) },
      { id: 'eta', label: 'ETA', cls: 'num', sort: (t) => t.eta_secs ?? Infinity, text: (t) => (t.state === 'downloading' ? fmt.eta(t.eta_secs) : '—') },
      {
        id: 'actions', label: 'Actions', cls: 'actions',
        create: (td) => td.append(
          h('button.btn.small', { type: 'button', dataset: { action: 'toggle' } }),
          h('button.btn.small.danger', { type: 'button', dataset: { action: 'cancel' }, text: 'Cancel' })),
        update: (td, t) => {
          const b = td.firstChild;
          const paused = t.state === 'paused' || t.state === 'error';
          setText(b, paused ? 'Resume' : 'Pause');
          const label = `${paused ? 'Resume' : 'Pause'} ${t.name}`;
          if (b.getAttribute('aria-label') !== label) {
            b.setAttribute('aria-label', label);
            td.lastChild.setAttribute('aria-label', `Cancel ${t.name}`);
          }
        },
      },
    ], {
      key: (t) => t.id,
      label: 'Active downloads',
      sortBy: 'name',
      onAction: async (a, id, t, btn) => {
        try {
          if (a === 'toggle') {
            btn.disabled = true;
            await api('POST', `/api/torrents/${id}/${t.state === 'paused' || t.state === 'error' ? 'resume' : 'pause'}`);
          } else if (a === 'cancel') {
            const ok = await confirmDialog({
              title: `Cancel “${t.name}”?`,
              text: 'The download stops and is recorded in History as cancelled.',
              ok: 'Cancel download',
              check: 'Also delete the downloaded data',
            });
            if (!ok) return;
            await api('DELETE', `/api/torrents/${id}?delete_data=${ok.checked}`);
            toast(`Cancelled ${t.name}`, 'info');
            loadHistory();
          }
        } catch (e) {
          reportError(e, 'Action failed');
        } finally {
          btn.disabled = false;
        }
      },
      empty: h('div.empty', null, h('div.empty-title', { text: 'No active downloads' }),
        h('p', { text: 'Search the catalog above, or add a magnet link or .torrent file.' })),
    });

    // --- history
    const hFilter = h('input.search', { type: 'search', placeholder: 'Filter history', 'aria-label': 'Filter history' });
    const hStatus = h('select', { 'aria-label': 'Status' },
      h('option', { value: '', text: 'All' }), h('option', { value: 'completed', text: 'Completed' }),
      h('option', { value: 'failed', text: 'Failed' }), h('option', { value: 'cancelled', text: 'Cancelled' }));
    const history = new KeyedTable([
      { id: 'name', label: 'Name', cls: 'name', sort: (x) => x.name.toLowerCase(), text: (x) => x.name, title: (x) => x.name },
      {
        id: 'status', label: 'Status', sort: (x) => x.status,
        create: (td) => td.append(h('span.badge')),
        update: (td, x) => setBadge(td.firstChild, x.status[0].toUpperCase() + x.status.slice(1), STATUS_KIND[x.status] || 'muted'),
      },
      { id: 'size', label: 'Size', cls: 'num', sort: (x) => x.size, text: (x) => fmt.bytes(x.size) },
      { id: 'speed', label: 'Avg speed', cls: 'num opt', sort: (x) => x.avg_speed, text: (x) => fmt.rate(x.avg_speed, true) },
      { id: 'finished', label: 'Finished', sort: (x) => x.finished_at, text: (x) => fmt.dateTime(x.finished_at), title: (x) => `Took ${fmt.duration(x.finished_at - x.started_at)}` },
      { id: 'sp', label: 'Seeds / peers', cls: 'num opt', text: (x) => `${fmt.count(x.seeds)} / ${fmt.count(x.peers)}` },
      { id: 'error', label: 'Details', cls: 'name err', text: (x) => x.error || '', title: (x) => x.error || '' },
    ], {
      key: (x) => `${x.id}:${x.finished_at}:${x.status}`,
      label: 'History',
      sortBy: 'finished',
      sortDir: -1,
      empty: h('div.empty', null, h('div.empty-title.history-empty', { text: 'No history yet' }),
        h('p', { text: 'Finished, failed and cancelled downloads are listed here.' })),
    });
    let histCtl = null;
    async function loadHistory() {
      if (histCtl) histCtl.abort();
      histCtl = new AbortController();
      try {
        const items = await get(`/api/history${qs({ filter: hFilter.value.trim(), status: hStatus.value })}`, { signal: histCtl.signal });
        history.update(items || []);
        const filtered = hFilter.value.trim() || hStatus.value;
        setText(root.querySelector('.history-empty'), filtered ? 'Nothing matches this filter' : 'No history yet');
      } catch (e) {
        reportError(e, 'Cannot load history');
      }
    }
    const historySoon = debounce(loadHistory, 250);
    ctx.listen(hFilter, 'input', historySoon);
    ctx.listen(hStatus, 'change', loadHistory);
    ctx.signal.addEventListener('abort', () => {
      historySoon.cancel();
      if (histCtl) histCtl.abort();
    });

    root.append(
      h('div.view-head', null, h('h1', { text: 'Download' })),
      h('section.card', { 'aria-label': 'Search' },
        h('div.card-head', null, h('h2', { text: 'Search' }), searchInfo, h('div.spacer'), getBtn),
        h('div.searchbar', null, h('span.search-ico', { 'aria-hidden': 'true', text: '⌕' }), q),
        results.wrap,
        h('div.add', null, h('span.muted', { text: 'Or add' }), addForm, tfileLabel)),
      h('section.card', { 'aria-label': 'Active downloads' },
        h('div.card-head', null, h('h2', { text: 'Active downloads' }), h('span.muted.count.active-count')), active.wrap),
      h('section.card', { 'aria-label': 'History' },
        h('div.card-head', null, h('h2', { text: 'History' }), h('div.spacer'), hStatus, hFilter), history.wrap),
    );

    let outcomeKey = null;
    ctx.onUpdate((data) => {
      const list = data.torrents.filter((t) => t.progress < 1 && t.state !== 'seeding');
      active.update(list);
      setText(root.querySelector('.active-count'), list.length ? String(list.length) : '');
      const ids = new Set(data.torrents.map((t) => t.id));
      if (ids.size !== haveIds.size || [...ids].some((id) => !haveIds.has(id))) {
        haveIds = ids;
        results.update(results.items);
      }
      // History changes when a download completes, fails or leaves: reload then.
      const s = data.stats || {};
      const key = `${s.downloads_completed}:${s.downloads_failed}:${list.length}:${list.filter((t) => t.state === 'error').length}`;
      if (key !== outcomeKey) {
        outcomeKey = key;
        historySoon();
      }
    });
    ctx.every(15000, loadHistory);
    search();
    q.focus();
  },
};
