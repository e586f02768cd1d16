// Shoal web UI entry: one SSE connection feeds a small store; a hash router mounts one
// view at a time and tears down everything it registered (listeners, timers, fetches).

import { get, initSession } from './api.js';
import { rate } from './format.js';
import { Ring, CHART_WINDOW_MS } from './chart.js';
import { reportError, setText } from './ui.js';
import dashboard from './views/dashboard.js';
import share from './views/share.js';
import download from './views/download.js';
import stats from './views/stats.js';
import settings from './views/settings.js';

const VIEWS = { dashboard, share, download, stats, settings };

/** Speed history kept for the Statistics charts: a fixed window, 1 sample per update. */
// A little over the window, so the chart's left edge is always covered.
const RING = Math.ceil(CHART_WINDOW_MS / 1000) + 30;

const store = {
  node: null,
  update: null, // last {stats, torrents, jobs}
  downRing: new Ring(RING),
  upRing: new Ring(RING),
  listeners: new Set(),
};

function emit(data) {
  for (const fn of store.listeners) {
    try {
      fn(data);
    } catch (e) {
      console.warn('view update failed', e);
    }
  }
}

let source = null;
function connect() {
  const conn = document.getElementById('conn');
  source = new EventSource('/api/events');
  source.addEventListener('open', () => {
    conn.dataset.state = 'live';
    setText(conn.querySelector('.conn-text'), 'Live');
  });
  source.addEventListener('error', () => {
    conn.dataset.state = 'down';
    setText(conn.querySelector('.conn-text'), 'Reconnecting…');
  });
  source.addEventListener('update', (e) => {
    let data;
    try {
      data = JSON.parse(e.data);
    } catch {
      return;
    }
    store.update = data;
    const now = Date.now();
    const s = data.stats || {};
    store.downRing.push(now, s.down_rate || 0);
    store.upRing.push(now, s.up_rate || 0);
    setText(document.getElementById('side-down'), rate(s.down_rate));
    setText(document.getElementById('side-up'), rate(s.up_rate));
    const title = s.down_rate || s.up_rate
      ? `↓ ${rate(s.down_rate)} ↑ ${rate(s.up_rate)} · Shoal` : 'Shoal';
    if (document.title !== title) document.title = title;
    emit(data);
  });
}

let current = null; // {name, ctl: AbortController, cleanup}

/** Context handed to a view: everything registered through it ends on unmount. */
function makeContext(ctl) {
  const timers = new Set();
  const ctx = {
    store,
    signal: ctl.signal,
    /** Called with each SSE update (and once now if one is known). */
    onUpdate(fn) {
      store.listeners.add(fn);
      ctl.signal.addEventListener('abort', () => store.listeners.delete(fn), { once: true });
      if (store.update) fn(store.update);
    },
    every(ms, fn) {
      const id = setInterval(fn, ms);
      timers.add(id);
    },
    listen(target, type, fn, opts = {}) {
      target.addEventListener(type, fn, { ...opts, signal: ctl.signal });
    },
    go(view) {
      location.hash = `#/${view}`;
    },
  };
  ctl.signal.addEventListener('abort', () => {
    for (const id of timers) clearInterval(id);
    timers.clear();
  }, { once: true });
  return ctx;
}

function route() {
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1];
  const view = VIEWS[name] ? name : 'dashboard';
  if (current && current.name === view) return;
  if (current) {
    current.ctl.abort();
    if (current.cleanup) current.cleanup();
  }
  const root = document.getElementById('view');
  root.replaceChildren();
  root.dataset.view = view;
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.view === view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const ctl = new AbortController();
  const ctx = makeContext(ctl);
  current = { name: view, ctl, cleanup: null };
  try {
    current.cleanup = VIEWS[view].mount(root, ctx) || null;
  } catch (e) {
    reportError(e, 'Cannot show this view');
  }
}

async function start() {
  try {
    store.node = await get('/api/node');
  } catch (e) {
    reportError(e, 'Cannot read node information');
  }
  window.addEventListener('hashchange', route);
  route();
  connect();
  initSession();
}

start();
