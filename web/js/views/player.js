// Playing a torrent's audio and video files while they download: the Play and
// "Copy link" buttons of the Files table, the player dialog (the browser's media
// element on the file's stream URL), and the download-order toggles of the details.

import { api } from '../api.js';
import { copyText, h, reportError, setAttr, toast } from '../ui.js';

const VIDEO = ['mp4', 'm4v', 'mkv', 'webm', 'avi', 'mov', 'ogv', 'mpg', 'mpeg', 'ts'];
const AUDIO = ['mp3', 'm4a', 'aac', 'flac', 'ogg', 'oga', 'opus', 'wav', 'weba'];

/** 'video', 'audio' or null, by the file's extension. */
export function mediaKind(path) {
  const m = /\.([a-z0-9]+)$/i.exec(path || '');
  const ext = m ? m[1].toLowerCase() : '';
  if (VIDEO.includes(ext)) return 'video';
  if (AUDIO.includes(ext)) return 'audio';
  return null;
}

export function streamPath(id, index) {
  return `/api/torrents/${id}/files/${index}/stream`;
}

/** The Files table's column with Play and Copy link on media files. */
export const playColumn = {
  id: 'play', label: 'Play', cls: 'actions',
  create: (td) => td.append(
    h('button.btn.small', { type: 'button', dataset: { action: 'play' }, text: 'Play' }),
    ' ',
    h('button.btn.small.ghost', { type: 'button', dataset: { action: 'copylink' }, text: 'Copy link', title: 'A link for VLC or mpv' })),
  update: (td, f) => {
    const hide = !mediaKind(f.path) || !f.wanted;
    for (const b of td.children) if (b.hidden !== hide) b.hidden = hide;
  },
};

/** Handles the column's actions; false for actions that are not its own. */
export function playAction(action, id, f) {
  if (action === 'play') {
    openPlayer(id, f);
    return true;
  }
  if (action === 'copylink') {
    copyLink(id, f);
    return true;
  }
  return false;
}

async function copyLink(id, f) {
  try {
    // A token URL, so a player that cannot log in can open it.
    const t = await api('POST', `/api/torrents/${id}/files/${f.index}/stream-token`);
    await copyText(t.url, 'Link copied for VLC or mpv');
  } catch (e) {
    reportError(e, 'Cannot make a link');
  }
}

/** A modal dialog playing file `f` of torrent `id`; closing it stops the stream. */
export function openPlayer(id, f) {
  const kind = mediaKind(f.path) || 'video';
  const media = h(kind, { controls: true, autoplay: true, preload: 'auto', 'aria-label': f.path });
  media.className = 'player-media';
  media.addEventListener('canplay', () => setAttr(media, 'data-ready', '1'));
  media.addEventListener('error', () => {
    if (media.getAttribute('src')) toast(`Cannot play ${f.path}`, 'error');
  });
  const dlg = h('dialog.dialog.player', { 'aria-label': `Playing ${f.path}` },
    h('form', { method: 'dialog' },
      h('h2', { text: f.path }),
      media,
      h('div.dlg-actions', null, h('button.btn', { value: 'close', text: 'Close' }))));
  dlg.addEventListener('close', () => {
    // Dropping the source closes the connection, which ends the stream's deadlines.
    media.pause();
    media.removeAttribute('src');
    media.load();
    dlg.remove();
  }, { once: true });
  document.body.append(dlg);
  media.src = streamPath(id, f.index);
  dlg.showModal();
  return dlg;
}

/** The details' download-order toggles; update(t) shows torrent t's order. */
export function orderControls(details) {
  const box = (name, text, title) => h('label.check', { title },
    h('input', { type: 'checkbox', dataset: { order: name } }), h('span', { text }));
  const el = h('div.row.order', { role: 'group', 'aria-label': 'Download order' },
    box('sequential', 'Sequential download', 'Download pieces in order, to play files while they download'),
    box('first_last_piece', 'First and last pieces first', 'Fetch the first and last piece of every file before the rest'));
  // What the user just chose, by option, for one torrent: older updates of that torrent
  // must not show the old value again.
  const pending = {};
  el.addEventListener('change', async (e) => {
    const input = e.target.closest('input[data-order]');
    const id = details.id;
    if (!input || !id) return;
    const name = input.dataset.order;
    pending[name] = { id, value: input.checked, until: Date.now() + 5000 };
    try {
      const t = await api('PUT', `/api/torrents/${id}/order`, { [name]: input.checked });
      if (t && t.id === details.id) update(t);
    } catch (err) {
      delete pending[name];
      if (id === details.id) input.checked = !input.checked;
      reportError(err, 'Cannot change the download order');
    }
  });
  const update = (t) => {
    el.hidden = !t || t.state === 'metadata';
    if (!t) return;
    for (const input of el.querySelectorAll('input[data-order]')) {
      const name = input.dataset.order;
      const p = pending[name];
      if (p && p.id === t.id && p.value !== !!t[name] && Date.now() < p.until) continue;
      delete pending[name];
      if (document.activeElement !== input) input.checked = !!t[name];
    }
  };
  return { el, update };
}
