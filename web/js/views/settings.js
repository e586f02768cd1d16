// Settings: the node options that change at run time, and what the node is.

import * as fmt from '../format.js';
import { api, get } from '../api.js';
import { h, setText, reportError, toast } from '../ui.js';
import { autoSettings } from './settings_auto.js';

function field(label, input, help) {
  const id = input.id;
  return h('div.field', null, h('label', { for: id, text: label }), input, help ? h('div.muted.small', { id: `${id}-help`, text: help }) : null);
}

function kib(n) {
  return n ? String(Math.round(n / 1024)) : '0';
}

export default {
  mount(root, ctx) {
    const maxDown = h('input', { id: 'set-max-down', type: 'number', min: '0', step: '1', inputmode: 'numeric', 'aria-describedby': 'set-max-down-help' });
    const maxUp = h('input', { id: 'set-max-up', type: 'number', min: '0', step: '1', inputmode: 'numeric', 'aria-describedby': 'set-max-up-help' });
    const maxActive = h('input', { id: 'set-max-active', type: 'number', min: '1', step: '1', inputmode: 'numeric' });
    const autoShare = h('input', { id: 'set-auto-share', type: 'checkbox' });
    const trackers = h('textarea', { id: 'set-trackers', rows: '4', spellcheck: 'false', 'aria-describedby': 'set-trackers-help' });
    const downloadDir = h('input', { id: 'set-download-dir', type: 'text', spellcheck: 'false' });
    const save = h('button.btn.primary', { type: 'submit', text: 'Save settings' });
    const reset = h('button.btn', { type: 'button', text: 'Revert' });
    const auto = autoSettings();
    const form = h('form.card.settings', { 'aria-label': 'Settings' },
      h('div.card-head', null, h('h2', { text: 'Transfers' })),
      h('div.grid2',
        null,
        field('Download limit (KiB/s)', maxDown, '0 means unlimited.'),
        field('Upload limit (KiB/s)', maxUp, '0 means unlimited.'),
        field('Active downloads at once', maxActive, 'Further downloads wait in the queue.'),
        h('div.field', null, h('span.label', { text: 'Sharing' }),
          h('label.check', { for: 'set-auto-share' }, autoShare, h('span', { text: 'Share finished downloads automatically' })))),
      h('div.card-head', null, h('h2', { text: 'Storage and trackers' })),
      field('Download folder', downloadDir),
      field('Trackers', trackers, 'One announce URL per line; new shares announce to these and search their catalogs.'),
      ...auto.sections,
      h('div.row.end', null, reset, save));
    const info = h('dl.info');
    root.append(
      h('div.view-head', null, h('h1', { text: 'Settings' })),
      h('div.cols.settings-cols', null, form, h('section.card', { 'aria-label': 'About this node' },
        h('div.card-head', null, h('h2', { text: 'This node' })), info)),
    );

    let current = null;
    // The form is read-only until the settings are loaded and while a save is on its way, so
    // an answer arriving late never overwrites what the user typed.
    let focused = null;
    const editable = (on) => {
      // Disabling the focused field would drop the focus to the page: it comes back after.
      if (!on && form.contains(document.activeElement)) focused = document.activeElement;
      for (const el of form.elements) el.disabled = !on;
      if (on && focused) {
        if (document.activeElement === document.body || !document.activeElement) focused.focus();
        focused = null;
      }
    };
    function fill(s) {
      current = s;
      maxDown.value = kib(s.max_down);
      maxUp.value = kib(s.max_up);
      maxActive.value = String(s.max_active);
      autoShare.checked = !!s.auto_share;
      trackers.value = (s.trackers || []).join('\n');
      downloadDir.value = s.download_dir || '';
      auto.fill(s);
    }
    async function load() {
      editable(false);
      try {
        fill(await get('/api/settings', { signal: ctx.signal }));
        editable(true);
      } catch (e) {
        reportError(e, 'Cannot load settings');
        // Revert loads them again.
        reset.disabled = false;
      }
    }
    function renderInfo(n) {
      if (!n) return;
      const rows = [
        ['Peer ID', n.peer_id], ['Peer port', n.peer_port], ['Web address', n.web_url], ['Version', n.version],
        ['Data folder', n.data_dir], ['Embedded tracker', n.embedded_tracker || 'none'], ['Peer encryption', n.encryption], ['DHT', n.dht && n.dht.enabled ? `on, ${n.dht.nodes} nodes` : 'off (--dht or dht = true in config.toml)'], ['Local discovery', n.lsd ? 'on' : 'off (--lsd)'], ['Uptime', fmt.duration(n.uptime_secs)],
      ];
      info.replaceChildren(...rows.flatMap(([k, v]) => [h('dt', { text: k }), h('dd.mono', { text: String(v ?? '—') })]));
    }
    ctx.listen(form, 'submit', async (e) => {
      e.preventDefault();
      const patch = {};
      const num = (el, name, mult) => {
        const v = Number(el.value);
        if (!Number.isFinite(v) || v < 0 || el.value.trim() === '') throw new Error(`${name} must be a number of 0 or more`);
        return Math.round(v * mult);
      };
      try {
        const next = {
          max_down: num(maxDown, 'Download limit', 1024),
          max_up: num(maxUp, 'Upload limit', 1024),
          max_active: num(maxActive, 'Active downloads', 1),
          auto_share: autoShare.checked,
          trackers: trackers.value.split('\n').map((x) => x.trim()).filter(Boolean),
          download_dir: downloadDir.value.trim(),
        };
        for (const [k, v] of Object.entries(next)) {
          if (JSON.stringify(v) !== JSON.stringify(current ? current[k] : undefined)) patch[k] = v;
        }
        if (current && kib(current.max_down) === maxDown.value) delete patch.max_down;
        if (current && kib(current.max_up) === maxUp.value) delete patch.max_up;
        Object.assign(patch, auto.patch(current));
      } catch (err) {
        reportError(err, 'Invalid setting');
        return;
      }
      if (!Object.keys(patch).length) {
        toast('Nothing changed', 'info');
        return;
      }
      editable(false);
      try {
        fill(await api('PATCH', '/api/settings', patch));
        toast('Settings saved', 'ok');
      } catch (err) {
        reportError(err, 'Cannot save settings');
      } finally {
        editable(true);
      }
    });
    ctx.listen(reset, 'click', () => (current ? fill(current) : load()));
    load();
    get('/api/node', { signal: ctx.signal }).then((n) => {
      ctx.store.node = n;
      renderInfo(n);
    }).catch((e) => reportError(e, 'Cannot read node information'));
    renderInfo(ctx.store.node);
    setText(save, 'Save settings');
  },
};
