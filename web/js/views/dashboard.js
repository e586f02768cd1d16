// Dashboard: node statistics, every torrent in a sortable live table, and the selected
// torrent's details (files, peers, trackers, piece map).

import * as fmt from '../format.js';
import { api, get } from '../api.js';
import { KeyedTable } from '../table.js';
import { h, setText, progressBar, setProgress, setBadge, reportError, toast, confirmDialog, copyText } from '../ui.js';
import { drawPieces } from '../piecemap.js';
import { labelColumns, categoryFilter, labelEditor } from './labels.js';
import { orderControls, playAction, playColumn } from './player.js';

const STATE_KIND = {
  Downloading: 'down', Seeding: 'up', Paused: 'muted', Queued: 'muted',
  Checking: 'warn', Error: 'bad', Finished: 'ok',
};

export function statCard(label, id) {
  return h('section.stat', { 'aria-label': label },
    h('h3', { text: label }),
    h('div.stat-main', { id: `${id}-main`, text: '—' }),
    h('div.stat-sub', { id: `${id}-sub`, text: '' }));
}

export function torrentColumns() {
  return [
    { id: 'name', label: 'Name', cls: 'name', sort: (t) => t.name.toLowerCase(), text: (t) => t.name, title: (t) => t.name },
    { id: 'size', label: 'Size', cls: 'num', sort: (t) => t.size, text: (t) => fmt.bytes(t.size) },
    {
      id: 'done', label: 'Done', cls: 'progress', sort: (t) => t.progress,
      create: (td) => td.append(progressBar()),
      update: (td, t) => setProgress(td.firstChild, t.progress, fmt.pct(t.progress), t.state),
    },
    {
      id: 'status', label: 'Status', sort: (t) => fmt.status(t),
      create: (td) => td.append(h('span.badge')),
      update: (td, t) => {
        const s = fmt.status(t);
        setBadge(td.firstChild, s, STATE_KIND[s] || 'muted');
      },
      title: (t) => t.error || '',
    },
    { id: 'seeds', label: 'Seeds', cls: 'num opt', sort: (t) => t.seeds, text: (t) => fmt.connSwarm(t.seeds, t.swarm_seeders), title: () => 'connected (in swarm)' },
    { id: 'peers', label: 'Peers', cls: 'num opt', sort: (t) => t.peers, text: (t) => fmt.connSwarm(t.peers, t.swarm_leechers), title: () => 'connected (in swarm)' },
    { id: 'down', label: 'Down', cls: 'num', sort: (t) => t.down_rate, text: (t) => fmt.rate(t.down_rate, true) },
    { id: 'up', label: 'Up', cls: 'num', sort: (t) => t.up_rate, text: (t) => fmt.rate(t.up_rate, true) },
    { id: 'eta', label: 'ETA', cls: 'num opt', sort: (t) => (t.progress >= 1 ? -1 : t.eta_secs ?? Infinity), text: (t) => (t.state === 'downloading' ? fmt.eta(t.eta_secs) : '—') },
    { id: 'ratio', label: 'Ratio', cls: 'num opt', sort: (t) => t.ratio, text: (t) => (!t.downloaded && t.uploaded ? '∞' : fmt.ratio(t.ratio)) },
    ...labelColumns(),
    { id: 'queue', label: '#', cls: 'num opt', sort: (t) => t.queue_position ?? Infinity, text: (t) => (t.queue_position ? String(t.queue_position) : '—'), title: (t) => (t.force_start ? 'forced: runs whatever the queue limits' : 'place in the queue') },
  ];
}

function emptyState(title, text, action) {
  return h('div.empty', null, h('div.empty-title', { text: title }), h('p', { text }), action || null);
}

export default {
  mount(root, ctx) {
    const stats = h('div.stats',
      null,
      statCard('Peer', 'st-peer'),
      statCard('Uploaded', 'st-up'),
      statCard('Downloaded', 'st-down'),
      statCard('Current speed', 'st-speed'));
    const filter = h('input.search', { type: 'search', placeholder: 'Filter torrents', 'aria-label': 'Filter torrents' });
    const count = h('span.muted.count');
    const categories = categoryFilter(ctx, () => render());
    const table = new KeyedTable(torrentColumns(), {
      key: (t) => t.id,
      label: 'Torrents',
      selectable: true,
      sortBy: 'name',
      onSelect: (id) => details.show(id),
      empty: emptyState('No torrents yet', 'Share a file or folder, or find something to download.',
        h('div.row', null,
          h('a.btn.primary', { href: '#/share', text: 'Share files' }),
          h('a.btn', { href: '#/download', text: 'Find downloads' }))),
    });
    const details = new Details(ctx);
    details.onClose = () => table.select(null, false);
    root.append(
      h('div.view-head', null, h('h1', { text: 'Dashboard' })),
      stats,
      h('section.card', { 'aria-label': 'Torrents' },
        h('div.card-head', null, h('h2', { text: 'Torrents' }), count, h('div.spacer'), categories.el, filter),
        table.wrap),
      details.el,
    );
    const node = ctx.store.node;
    if (node) {
      setText(root.querySelector('#st-peer-main'), node.peer_id);
      setText(root.querySelector('#st-peer-sub'), `port ${node.peer_port} · v${node.version}`);
      root.querySelector('#st-peer-main').title = node.peer_id;
    }
    let last = null;
    const render = () => {
      if (!last) return;
      const q = filter.value.trim().toLowerCase();
      const byCategory = last.torrents.filter(categories.matches);
      const items = q ? byCategory.filter((t) => t.name.toLowerCase().includes(q) || t.id.startsWith(q)) : byCategory;
      table.update(items);
      setText(count, items.length !== last.torrents.length ? `${items.length} of ${last.torrents.length}` : `${last.torrents.length}`);
    };
    ctx.listen(filter, 'input', render);
    ctx.onUpdate((data) => {
      last = data;
      const s = data.stats || {};
      setText(root.querySelector('#st-up-main'), fmt.bytes(s.uploaded));
      setText(root.querySelector('#st-up-sub'), `${s.files_shared ?? 0} shared ${s.files_shared === 1 ? 'torrent' : 'torrents'}`);
      setText(root.querySelector('#st-down-main'), fmt.bytes(s.downloaded));
      setText(root.querySelector('#st-down-sub'), `${s.downloads_completed ?? 0} completed${s.downloads_failed ? ` · ${s.downloads_failed} failed` : ''}`);
      setText(root.querySelector('#st-speed-main'), `↓ ${fmt.rate(s.down_rate)}`);
      setText(root.querySelector('#st-speed-sub'), `↑ ${fmt.rate(s.up_rate)} · ${s.peers ?? 0} peers`);
      render();
      if (details.id) {
        const t = data.torrents.find((x) => x.id === details.id);
        if (t) details.summary(t);
        else details.show(null);
      }
    });
    ctx.every(2000, () => details.refresh());
    return () => details.close();
  },
};

const TABS = ['files', 'peers', 'trackers', 'pieces'];

/** The selected torrent's panel: a header with actions and tabs polled every 2 s. */
class Details {
  constructor(ctx) {
    this.ctx = ctx;
    this.id = null;
    this.tab = 'files';
    this.ctl = null;
    this.title = h('h2.details-title');
    this.meta = h('div.muted.details-meta');
    this.pauseBtn = h('button.btn', { type: 'button', dataset: { action: 'toggle' }, text: 'Pause' });
    const actions = h('div.row',
      null,
      this.pauseBtn,
      h('button.btn', { type: 'button', dataset: { action: 'recheck' }, text: 'Recheck' }),
      h('button.btn', { type: 'button', dataset: { action: 'queue', to: 'top' }, title: 'Move to the top of the queue', text: '⤒' }),
      h('button.btn', { type: 'button', dataset: { action: 'queue', to: 'up' }, title: 'Move up in the queue', text: '↑' }),
      h('button.btn', { type: 'button', dataset: { action: 'queue', to: 'down' }, title: 'Move down in the queue', text: '↓' }),
      h('button.btn', { type: 'button', dataset: { action: 'queue', to: 'bottom' }, title: 'Move to the bottom of the queue', text: '⤓' }),
      h('button.btn', { type: 'button', dataset: { action: 'force' }, text: 'Force start' }),
      h('button.btn', { type: 'button', dataset: { action: 'limits' }, text: 'Limits…' }),
      h('button.btn', { type: 'button', dataset: { action: 'magnet' }, text: 'Copy magnet' }),
      h('a.btn', { dataset: { action: 'torrent' }, text: '.torrent', download: '' }),
      h('button.btn.danger', { type: 'button', dataset: { action: 'remove' }, text: 'Remove' }),
      h('button.btn.ghost', { type: 'button', dataset: { action: 'close' }, 'aria-label': 'Close details', text: '×' }));
    this.tabs = h('div.tabs', { role: 'tablist', 'aria-label': 'Torrent details' });
    this.tabBtns = {};
    for (const t of TABS) {
      const b = h('button.tab', { type: 'button', role: 'tab', id: `tab-${t}`, 'aria-controls': 'details-body', text: t[0].toUpperCase() + t.slice(1), dataset: { tab: t } });
      this.tabBtns[t] = b;
      this.tabs.append(b);
    }
    this.body = h('div.details-body', { id: 'details-body', role: 'tabpanel' });
    this.labels = labelEditor(ctx);
    this.order = orderControls(this);
    this.el = h('section.card.details', { hidden: true, 'aria-label': 'Torrent details' },
      h('div.card-head', null, h('div.grow', null, this.title, this.meta), actions), this.labels.el, this.order.el, this.tabs, this.body);
    ctx.listen(this.tabs, 'click', (e) => {
      const b = e.target.closest('[data-tab]');
      if (b) this.setTab(b.dataset.tab);
    });
    ctx.listen(this.tabs, 'keydown', (e) => {
      if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
      const i = TABS.indexOf(this.tab) + (e.key === 'ArrowRight' ? 1 : -1);
      const t = TABS[(i + TABS.length) % TABS.length];
      this.setTab(t);
      this.tabBtns[t].focus();
    });
    ctx.listen(actions, 'click', (e) => this.action(e));
    this.views = {};
  }

  show(id) {
    // An unsaved label edit is dropped with the torrent it was for.
    if (id !== this.id) this.labels.reset();
    this.id = id;
    this.el.hidden = !id;
    if (!id) return this.abort();
    const t = this.ctx.store.update && this.ctx.store.update.torrents.find((x) => x.id === id);
    this.summary(t || null);
    this.el.querySelector('[data-action="torrent"]').href = `/api/torrents/${id}/torrent`;
    this.views = {};
    this.body.replaceChildren();
    this.setTab(this.tab);
  }

  summary(t) {
    this.current = t;
    if (!t || !this.id) return;
    setText(this.title, t.name);
    const parts = [`${fmt.shortId(t.id)}…`, fmt.bytes(t.size), `${t.pieces} pieces of ${fmt.bytes(t.piece_size)}`, t.save_dir];
    if (t.error) parts.push(`Error: ${t.error}`);
    if (t.stop_reason) parts.push(`Stopped: ${t.stop_reason}`);
    if (t.queue_position) parts.push(`queue #${t.queue_position}${t.force_start ? ' (forced)' : ''}`);
    setText(this.meta, parts.join(' · '));
    this.labels.show(t);
    setText(this.pauseBtn, t.state === 'paused' || t.state === 'error' ? 'Resume' : 'Pause');
    this.order.update(t);
  }

  setTab(tab) {
    this.tab = tab;
    for (const [t, b] of Object.entries(this.tabBtns)) {
      b.setAttribute('aria-selected', String(t === tab));
      b.tabIndex = t === tab ? 0 : -1;
    }
    this.body.setAttribute('aria-labelledby', `tab-${tab}`);
    this.body.replaceChildren(this.view(tab).el);
    this.refresh();
  }

  view(tab) {
    if (this.views[tab]) return this.views[tab];
    let v;
    if (tab === 'files') v = filesView(this);
    else if (tab === 'peers') v = peersView();
    else if (tab === 'trackers') v = trackersView();
    else v = piecesView();
    this.views[tab] = v;
    return v;
  }

  abort() {
    if (this.ctl) this.ctl.abort();
    this.ctl = null;
  }

  async refresh() {
    if (!this.id || this.el.hidden || this.busy) return;
    const id = this.id;
    const tab = this.tab;
    this.abort();
    this.ctl = new AbortController();
    this.busy = true;
    try {
      const data = await get(`/api/torrents/${id}/${tab}`, { signal: this.ctl.signal });
      if (id === this.id && tab === this.tab) this.view(tab).update(data);
    } catch (e) {
      if (e.status === 404 && id === this.id) {
        this.show(null);
      } else if (id === this.id) reportError(e, `Cannot load ${tab}`);
    } finally {
      this.busy = false;
    }
  }

  close() {
    this.abort();
    this.id = null;
  }

  async action(e) {
    const btn = e.target.closest('[data-action]');
    if (!btn || !this.id) return;
    const id = this.id;
    const t = this.current;
    const a = btn.dataset.action;
    if (a === 'torrent') return;
    try {
      if (a === 'close') {
        this.show(null);
        if (this.onClose) this.onClose();
      } else if (a === 'toggle') {
        await api('POST', `/api/torrents/${id}/${t && (t.state === 'paused' || t.state === 'error') ? 'resume' : 'pause'}`);
      } else if (a === 'queue') {
        await api('POST', `/api/torrents/${id}/queue`, { move: btn.dataset.to });
      } else if (a === 'force') {
        await api('POST', `/api/torrents/${id}/force_start`, { force: !(t && t.force_start) });
      } else if (a === 'limits') {
        await editLimits(id, t);
      } else if (a === 'recheck') {
        await api('POST', `/api/torrents/${id}/recheck`);
        toast('Checking pieces…', 'info');
      } else if (a === 'magnet') {
        const d = await get(`/api/torrents/${id}`);
        await copyText(d.magnet, 'Magnet copied');
      } else if (a === 'remove') {
        const ok = await confirmDialog({
          title: `Remove “${t ? t.name : id}”?`,
          text: 'The torrent stops and leaves the list.',
          ok: 'Remove',
          check: 'Also delete its data from disk',
        });
        if (!ok) return;
        await api('DELETE', `/api/torrents/${id}?delete_data=${ok.checked}`);
        toast(`Removed ${t ? t.name : id}`, 'ok');
        this.show(null);
        if (this.onClose) this.onClose();
      }
    } catch (err) {
      reportError(err, 'Action failed');
    }
  }
}

/** Asks for a torrent's own seeding limits: empty uses the global setting, "none" none. */
async function editLimits(id, t) {
  const show = (v) => (v === -2 ? '' : v === -1 ? 'none' : String(v));
  const read = (v, name) => {
    const s = (v || '').trim().toLowerCase();
    if (s === '') return -2;
    if (s === 'none') return -1;
    const n = Number(s);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${name}: a number, "none" or empty for the global setting`);
    return n;
  };
  const ask = (label, v) => window.prompt(`${label} (empty: global setting, "none": no limit)`, show(v));
  const ratio = ask('Share ratio limit', t ? t.ratio_limit : -2);
  if (ratio === null) return;
  const time = ask('Seeding time limit, minutes', t ? t.seed_time_limit : -2);
  if (time === null) return;
  const idle = ask('Idle limit, minutes', t ? t.seed_idle_limit : -2);
  if (idle === null) return;
  await api('PUT', `/api/torrents/${id}/limits`, {
    ratio_limit: read(ratio, 'Ratio'), seed_time_limit: read(time, 'Seeding time'), seed_idle_limit: read(idle, 'Idle time'),
  });
  toast('Limits saved', 'ok');
}

function filesView(details) {
  // A change the user just made, by file index: polls that started before it must not
  // show the old value again, so until one agrees (or 5 s pass) the row shows the change.
  const pending = new Map();
  const overlay = (f) => {
    const p = pending.get(f.index);
    if (!p) return f;
    const keys = ['wanted', 'priority'].filter((k) => k in p && p[k] !== f[k]);
    if (!keys.length || Date.now() > p.until) {
      pending.delete(f.index);
      return f;
    }
    return { ...f, ...Object.fromEntries(keys.map((k) => [k, p[k]])) };
  };
  const prio = () => {
    const s = h('select', { dataset: { action: 'priority' }, 'aria-label': 'Priority' });
    for (const p of ['low', 'normal', 'high']) s.append(h('option', { value: p, text: p[0].toUpperCase() + p.slice(1) }));
    return s;
  };
  const table = new KeyedTable([
    {
      id: 'want', label: 'Get', cls: 'check',
      create: (td) => td.append(h('input', { type: 'checkbox', dataset: { action: 'wanted' }, 'aria-label': 'Download this file' })),
      update: (td, f) => {
        if (document.activeElement !== td.firstChild) td.firstChild.checked = f.wanted;
      },
    },
    { id: 'path', label: 'File', cls: 'name', sort: (f) => f.path, text: (f) => f.path, title: (f) => f.path },
    { id: 'size', label: 'Size', cls: 'num', sort: (f) => f.size, text: (f) => fmt.bytes(f.size) },
    {
      id: 'progress', label: 'Done', cls: 'progress', sort: (f) => f.progress,
      create: (td) => td.append(progressBar()),
      update: (td, f) => setProgress(td.firstChild, f.progress, fmt.pct(f.progress), f.wanted ? '' : 'skipped'),
    },
    {
      id: 'prio', label: 'Priority',
      create: (td) => td.append(prio()),
      update: (td, f) => {
        if (document.activeElement !== td.firstChild) td.firstChild.value = f.priority;
        td.firstChild.disabled = !f.wanted;
      },
    },
    playColumn,
  ], {
    key: (f) => String(f.index),
    label: 'Files',
    empty: h('div.empty.small', { text: 'No files.' }),
    onAction: async (action, key, f, el) => {
      if (playAction(action, details.id, f)) return;
      const body = action === 'wanted' ? { wanted: el.checked } : { priority: el.value };
      pending.set(f.index, { ...pending.get(f.index), ...body, until: Date.now() + 5000 });
      try {
        const nf = await api('PUT', `/api/torrents/${details.id}/files/${f.index}`, body);
        if (nf) table.update(table.items.map((x) => (x.index === nf.index ? nf : x)));
      } catch (e) {
        pending.delete(f.index);
        // Back to what the node has.
        if (action === 'wanted') el.checked = f.wanted;
        else el.value = f.priority;
        reportError(e, 'Cannot change the file');
      }
    },
  });
  return { el: table.wrap, update: (files) => table.update(files.map(overlay)) };
}

function peersView() {
  const table = new KeyedTable([
    { id: 'addr', label: 'Address', sort: (p) => p.addr, text: (p) => p.addr },
    { id: 'client', label: 'Client', cls: 'name', sort: (p) => p.client || '', text: (p) => p.client || 'unknown' },
    {
      id: 'progress', label: 'Progress', cls: 'progress', sort: (p) => p.progress,
      create: (td) => td.append(progressBar()),
      update: (td, p) => setProgress(td.firstChild, p.progress, fmt.pct(p.progress)),
    },
    { id: 'down', label: 'Down', cls: 'num', sort: (p) => p.down_rate, text: (p) => fmt.rate(p.down_rate, true) },
    { id: 'up', label: 'Up', cls: 'num', sort: (p) => p.up_rate, text: (p) => fmt.rate(p.up_rate, true) },
    { id: 'dl', label: 'Downloaded', cls: 'num opt', sort: (p) => p.downloaded, text: (p) => fmt.bytes(p.downloaded) },
    { id: 'ul', label: 'Uploaded', cls: 'num opt', sort: (p) => p.uploaded, text: (p) => fmt.bytes(p.uploaded) },
    { id: 'source', label: 'Source', sort: (p) => p.source || '', text: (p) => p.source || '', title: () => 'Where the peer was learnt: tracker, dht, pex, lsd, incoming, magnet (x.pe) or manual' },
    { id: 'transport', label: 'Via', cls: 'mono', sort: (p) => `${p.transport || ''} ${p.family || ''}`, text: (p) => (p.transport || '') + (p.family === 'ipv6' ? ' v6' : ''), title: () => 'Transport: tcp or utp (uTP, BEP 29); v6 marks an IPv6 peer' },
    { id: 'flags', label: 'Flags', cls: 'mono', text: (p) => p.flags || '', title: () => 'D downloading · U uploading · d/u interested but choked · I incoming · S snubbed · E encrypted · P uTP' },
  ], {
    key: (p) => p.addr, label: 'Peers', sortBy: 'addr',
    empty: h('div.empty.small', { text: 'No connected peers.' }),
  });
  return { el: table.wrap, update: (peers) => table.update(peers) };
}

function trackersView() {
  const table = new KeyedTable([
    { id: 'url', label: 'URL', cls: 'name', text: (t) => t.url, title: (t) => t.url },
    { id: 'tier', label: 'Tier', cls: 'num', text: (t) => t.tier },
    {
      id: 'status', label: 'Status',
      create: (td) => td.append(h('span.badge')),
      update: (td, t) => setBadge(td.firstChild, t.status, t.status === 'working' ? 'ok' : t.status === 'error' ? 'bad' : 'muted'),
    },
    { id: 'msg', label: 'Message', cls: 'name', text: (t) => t.message || '' },
    { id: 'next', label: 'Next announce', text: nextAnnounce },
    { id: 'seeders', label: 'Seeders', cls: 'num', text: (t) => fmt.count(t.seeders) },
    { id: 'leechers', label: 'Leechers', cls: 'num', text: (t) => fmt.count(t.leechers) },
  ], {
    key: (t) => `${t.tier}:${t.url}`, label: 'Trackers',
    empty: h('div.empty.small', { text: 'This torrent has no trackers.' }),
  });
  return { el: table.wrap, update: (tr) => table.update(tr) };
}

/** "retrying in 15s" after failures, "in 29m 50s" otherwise; "now" while under way. */
function nextAnnounce(t) {
  if (t.next_announce_in == null) return '';
  if (t.next_announce_in === 0) return 'now';
  const when = `in ${fmt.duration(t.next_announce_in)}`;
  return t.failures > 0 ? `retrying ${when}` : when;
}

function piecesView() {
  const canvas = h('canvas.pieces', { role: 'img', 'aria-label': 'Piece map' });
  const legend = h('div.legend', null,
    h('span.key.have', { text: 'have' }), h('span.key.missing', { text: 'missing' }), h('span.muted.piece-count'));
  const el = h('div.piece-wrap', null, canvas, legend);
  return {
    el,
    update: (p) => {
      const have = drawPieces(canvas, p);
      setText(legend.querySelector('.piece-count'), `${have} of ${p.count} pieces`);
      canvas.setAttribute('aria-label', `Piece map: ${have} of ${p.count} pieces downloaded`);
    },
  };
}
