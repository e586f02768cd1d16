// Share: browse the node's share roots and share a file or folder, drop files to upload
// them, watch hashing jobs, and list shared torrents.

import * as fmt from '../format.js';
import { api, get, qs, upload } from '../api.js';
import { KeyedTable } from '../table.js';
import { h, setText, progressBar, setProgress, setBadge, reportError, toast, copyText } from '../ui.js';

export function idCell() {
  return {
    id: 'id', label: 'ID', cls: 'mono',
    sort: (t) => t.id,
    create: (td) => td.append(h('button.idbtn', { type: 'button', dataset: { action: 'copy' } })),
    update: (td, t) => {
      const b = td.firstChild;
      setText(b, fmt.shortId(t.id));
      if (b.title !== t.id) {
        b.title = `${t.id} (click to copy)`;
        b.setAttribute('aria-label', `Copy ID ${t.id}`);
      }
    },
  };
}

export default {
  mount(root, ctx) {
    const pathEl = h('div.crumbs', { 'aria-label': 'Current folder' });
    const upBtn = h('button.btn', { type: 'button', text: '↑ Up', 'aria-label': 'Parent folder', disabled: true });
    const homeBtn = h('button.btn.small', { type: 'button', text: 'Home', title: 'The first share root' });
    const dlBtn = h('button.btn.small', { type: 'button', text: 'Downloads', title: 'The download folder' });
    const shareDirBtn = h('button.btn', { type: 'button', text: 'Share this folder' });
    const shareSelBtn = h('button.btn.primary', { type: 'button', text: 'Share selected', disabled: true });
    const list = h('ul.files', { role: 'listbox', 'aria-label': 'Files and folders' });
    const browserEmpty = h('div.empty.small', { hidden: true, text: 'This folder is empty.' });
    const jobsList = h('ul.jobs', { 'aria-label': 'Hashing jobs' });
    const drop = h('label.drop', { tabindex: '-1' },
      h('input.visually-hidden', { type: 'file', multiple: true, 'aria-label': 'Choose files to upload and share' }),
      h('div.drop-ico', { 'aria-hidden': 'true', text: '⇪' }),
      h('div', null, h('b', { text: 'Drop files here' }), ' or ', h('span.link', { text: 'choose files' })),
      h('div.muted.small', { text: 'They are uploaded into the download folder, hashed and shared.' }));
    const fileInput = drop.querySelector('input');

    const shared = new KeyedTable([
      idCell(),
      { id: 'name', label: 'Name', cls: 'name', sort: (t) => t.name.toLowerCase(), text: (t) => t.name, title: (t) => t.name },
      { id: 'size', label: 'Size', cls: 'num opt', sort: (t) => t.size, text: (t) => fmt.bytes(t.size) },
      {
        id: 'progress', label: 'Progress', cls: 'progress', sort: (t) => t.progress,
        create: (td) => td.append(progressBar()),
        update: (td, t) => setProgress(td.firstChild, t.progress, fmt.pct(t.progress), t.state),
      },
      {
        id: 'role', label: 'Role', sort: (t) => t.role,
        create: (td) => td.append(h('span.badge')),
        update: (td, t) => setBadge(td.firstChild, t.role === 'seeder' ? 'Seeder' : 'Leecher', t.role === 'seeder' ? 'up' : 'down'),
      },
      { id: 'swarm', label: 'Seeders / leechers', cls: 'num', sort: (t) => t.swarm_seeders ?? -1, text: (t) => `${fmt.count(t.swarm_seeders)} / ${fmt.count(t.swarm_leechers)}` },
      { id: 'upr', label: 'Upload speed', cls: 'num', sort: (t) => t.up_rate, text: (t) => fmt.rate(t.up_rate, true) },
      { id: 'uploaded', label: 'Uploaded', cls: 'num opt', sort: (t) => t.uploaded, text: (t) => fmt.bytes(t.uploaded) },
    ], {
      key: (t) => t.id,
      label: 'Shared torrents',
      sortBy: 'name',
      onAction: (a, id) => {
        if (a === 'copy') copyText(id, 'ID copied');
      },
      empty: h('div.empty', null, h('div.empty-title', { text: 'Nothing shared yet' }),
        h('p', { text: 'Pick a file or folder above, or drop files onto this page.' })),
    });

    root.append(
      h('div.view-head', null, h('h1', { text: 'Share' })),
      h('div.cols',
        null,
        h('section.card.browser', { 'aria-label': 'File browser' },
          h('div.card-head', null, h('h2', { text: 'Files on this node' }), h('div.spacer'), upBtn, shareDirBtn, shareSelBtn),
          pathEl, h('div.file-scroll', null, list, browserEmpty)),
        h('div.stack',
          null,
          h('section.card', { 'aria-label': 'Upload' }, h('div.card-head', null, h('h2', { text: 'Upload' })), drop),
          h('section.card', { 'aria-label': 'Hashing' },
            h('div.card-head', null, h('h2', { text: 'Hashing' })), jobsList,
            h('div.empty.small.jobs-empty', { text: 'No hashing in progress.' })))),
      h('section.card', { 'aria-label': 'Shared torrents' },
        h('div.card-head', null, h('h2', { text: 'Shared torrents' })), shared.wrap),
    );

    // --- file browser
    let dir = null;
    let selected = null; // absolute path
    let browseCtl = null;
    const join = (base, name) => (base.endsWith('/') ? base + name : `${base}/${name}`);

    async function browse(path) {
      if (browseCtl) browseCtl.abort();
      browseCtl = new AbortController();
      try {
        const d = await get(`/api/fs${qs({ path })}`, { signal: browseCtl.signal });
        dir = d;
        selected = null;
        shareSelBtn.disabled = true;
        upBtn.disabled = !d.parent;
        shareDirBtn.disabled = !d.path;
        renderCrumbs(d);
        renderEntries(d);
      } catch (e) {
        reportError(e, 'Cannot open folder');
      }
    }

    function renderCrumbs(d) {
      // One button per share root the node allows (GET /api/fs lists them in `roots`).
      const roots = Array.isArray(d.roots) && d.roots.length ? d.roots : null;
      const rootBtns = roots
        ? roots.map((r) => {
          const b = h('button.btn.small', { type: 'button', text: r.split('/').filter(Boolean).pop() || r, title: r });
          b.addEventListener('click', () => browse(r), { signal: ctx.signal });
          return b;
        })
        : [homeBtn, dlBtn];
      pathEl.replaceChildren(h('span.mono.grow', { text: d.path || 'Share roots' }), ...rootBtns);
    }

    function renderEntries(d) {
      const entries = (d.entries || []).slice().sort((a, b) => (b.dir - a.dir) || a.name.localeCompare(b.name));
      list.replaceChildren(...entries.map((e) => {
        const full = e.path || join(d.path, e.name);
        return h('li.file', {
          role: 'option', tabindex: '0', 'aria-selected': 'false',
          dataset: { path: full, dir: e.dir ? '1' : '' },
          title: e.dir ? `${full} — double-click or Enter to open` : full,
        },
        h(e.dir ? 'span.file-ico.dir' : 'span.file-ico', { 'aria-hidden': 'true' }),
        h('span.file-name', { text: e.name }),
        h('span.muted.num', { text: e.dir ? '' : fmt.bytes(e.size) }));
      }));
      browserEmpty.hidden = entries.length > 0;
    }

    function select(li) {
      for (const x of list.querySelectorAll('[aria-selected="true"]')) x.setAttribute('aria-selected', 'false');
      if (!li) return;
      li.setAttribute('aria-selected', 'true');
      selected = li.dataset.path;
      shareSelBtn.disabled = false;
    }

    async function shareIt(path) {
      try {
        const r = await api('POST', '/api/share', { path });
        toast(`Hashing ${path.split('/').filter(Boolean).pop() || path}…`, 'info');
        if (r && r.job_id) watchJob(r.job_id);
      } catch (e) {
        reportError(e, 'Cannot share');
      }
    }

    ctx.listen(list, 'click', (e) => {
      const li = e.target.closest('li.file');
      if (li) select(li);
    });
    ctx.listen(list, 'dblclick', (e) => {
      const li = e.target.closest('li.file');
      if (li && li.dataset.dir) browse(li.dataset.path);
    });
    ctx.listen(list, 'keydown', (e) => {
      const li = e.target.closest('li.file');
      if (!li) return;
      if (e.key === 'Enter') {
        if (li.dataset.dir) browse(li.dataset.path);
        else shareIt(li.dataset.path);
      } else if (e.key === ' ') {
        e.preventDefault();
        select(li);
      } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        const n = e.key === 'ArrowDown' ? li.nextElementSibling : li.previousElementSibling;
        if (n) n.focus();
      } else if (e.key === 'Backspace' && dir && dir.parent) {
        browse(dir.parent);
      }
    });
    ctx.listen(upBtn, 'click', () => dir && dir.parent && browse(dir.parent));
    ctx.listen(homeBtn, 'click', () => browse(undefined));
    ctx.listen(dlBtn, 'click', () => {
      const n = ctx.store.node;
      browse(n ? n.download_dir : undefined);
    });
    ctx.listen(shareDirBtn, 'click', () => dir && dir.path && shareIt(dir.path));
    ctx.listen(shareSelBtn, 'click', () => selected && shareIt(selected));

    // --- uploads (drop anywhere on the view, or pick files)
    const uploads = new Map(); // name -> li
    async function uploadFiles(files) {
      for (const f of files) {
        const li = h('li.job', null, h('div.job-name', { text: `Uploading ${f.name}` }), progressBar());
        jobsList.prepend(li);
        syncJobsEmpty();
        uploads.set(f.name, li);
        try {
          const r = await upload(`/api/upload${qs({ name: f.name })}`, f, (p) => setProgress(li.lastChild, p, fmt.pct(p)));
          toast(`Uploaded ${f.name}; hashing…`, 'ok');
          if (r && r.job_id) watchJob(r.job_id);
        } catch (e) {
          reportError(e, `Cannot upload ${f.name}`);
        } finally {
          li.remove();
          uploads.delete(f.name);
          syncJobsEmpty();
        }
      }
    }
    ctx.listen(fileInput, 'change', () => {
      if (fileInput.files.length) uploadFiles([...fileInput.files]);
      fileInput.value = '';
    });
    let dragDepth = 0;
    ctx.listen(root, 'dragenter', (e) => {
      if (!e.dataTransfer || ![...e.dataTransfer.types].includes('Files')) return;
      e.preventDefault();
      dragDepth++;
      drop.classList.add('over');
    });
    ctx.listen(root, 'dragover', (e) => {
      if (e.dataTransfer && [...e.dataTransfer.types].includes('Files')) e.preventDefault();
    });
    ctx.listen(root, 'dragleave', () => {
      dragDepth = Math.max(0, dragDepth - 1);
      if (!dragDepth) drop.classList.remove('over');
    });
    ctx.listen(root, 'drop', (e) => {
      e.preventDefault();
      dragDepth = 0;
      drop.classList.remove('over');
      const files = [...(e.dataTransfer ? e.dataTransfer.files : [])];
      if (files.length) uploadFiles(files);
    });

    // --- jobs (from the live stream)
    const jobRows = new Map();
    const finished = new Set();
    const watched = new Set();
    function watchJob(id) {
      watched.add(id);
    }
    function syncJobsEmpty() {
      root.querySelector('.jobs-empty').hidden = jobsList.children.length > 0;
    }
    function renderJobs(jobs) {
      const seen = new Set();
      for (const j of jobs) {
        // Jobs finished before this page watched them are old news: not listed.
        if (j.state === 'hashing') watched.add(j.id);
        if (j.state !== 'hashing' && !watched.has(j.id) && !jobRows.has(j.id)) continue;
        seen.add(j.id);
        let li = jobRows.get(j.id);
        if (!li) {
          li = h('li.job', { dataset: { job: j.id } }, h('div.job-name'), progressBar());
          jobRows.set(j.id, li);
          jobsList.append(li);
        }
        const name = j.path.split('/').filter(Boolean).pop() || j.path;
        const label = j.state === 'error' ? `${name}: ${j.error}` : j.state === 'done' ? `${name}: shared` : `Hashing ${name}`;
        setText(li.firstChild, label);
        li.firstChild.title = j.path;
        const p = j.total_bytes ? j.done_bytes / j.total_bytes : j.state === 'done' ? 1 : 0;
        setProgress(li.lastChild, p, j.state === 'hashing' ? `${fmt.pct(p)} of ${fmt.bytes(j.total_bytes)}` : j.state === 'done' ? 'Done' : 'Failed', j.state);
        if (j.state !== 'hashing' && watched.has(j.id) && !finished.has(j.id)) {
          finished.add(j.id);
          if (j.state === 'done') toast(`Shared ${name}`, 'ok');
          else toast(`Cannot share ${name}: ${j.error}`, 'error');
        }
      }
      for (const [id, li] of jobRows) {
        if (!seen.has(id)) {
          li.remove();
          jobRows.delete(id);
          finished.delete(id);
          watched.delete(id);
        }
      }
      syncJobsEmpty();
    }

    ctx.onUpdate((data) => {
      renderJobs(data.jobs || []);
      shared.update(data.torrents);
    });

    browse(undefined);
  },
};
