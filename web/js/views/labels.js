// Categories and tags in the dashboard: a category filter for the torrent list and a
// small editor (category select, tags field) in the torrent's details.

import { api, get } from '../api.js';
import { h, reportError, toast } from '../ui.js';

/** Table columns for a torrent's category and tags. */
export function labelColumns() {
  return [
    { id: 'category', label: 'Category', cls: 'opt', sort: (t) => (t.category || '').toLowerCase(), text: (t) => t.category || '' },
    { id: 'tags', label: 'Tags', cls: 'opt', sort: (t) => (t.tags || []).join(','), text: (t) => (t.tags || []).join(', ') },
  ];
}

/** Fills a <select> with the categories, keeping the chosen value; `extra` options first. */
function fillCategories(select, categories, extra) {
  // An empty select's value is "", which is also the "Uncategorized" option's: on the
  // first fill there is no choice to keep, so the first option ("All") stays selected.
  const chosen = select.options.length ? select.value : null;
  select.replaceChildren(...extra.map(([v, label]) => h('option', { value: v, text: label })),
    ...categories.map((c) => h('option', { value: c.name, text: c.name })));
  if (chosen !== null && [...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

/** The list filter: all, uncategorized, or one category. Calls `onChange` when it changes. */
export function categoryFilter(ctx, onChange) {
  const el = h('select.category-filter', { 'aria-label': 'Filter by category' });
  const refresh = async () => {
    try {
      fillCategories(el, await get('/api/categories'), [['*', 'All categories'], ['', 'Uncategorized']]);
    } catch (e) {
      // The list still works unfiltered; the next refresh retries.
    }
  };
  ctx.listen(el, 'change', onChange);
  ctx.listen(el, 'focus', refresh);
  refresh();
  return {
    el,
    refresh,
    matches: (t) => {
      if (!el.options.length || el.value === '*') return true;
      return el.value === '' ? !t.category : t.category === el.value;
    },
  };
}

/** A torrent's labels as one comparable string. */
function labelKey(t) {
  return JSON.stringify([t.category || '', t.tags || []]);
}

/** The details' label editor: category select (with "new…"), tags field, Save. */
export function labelEditor(ctx, onSaved) {
  const category = h('select', { 'aria-label': 'Category' });
  const tags = h('input', { type: 'text', placeholder: 'tags, comma separated', 'aria-label': 'Tags' });
  const save = h('button.btn', { type: 'button', text: 'Save labels' });
  const el = h('div.row.labels', null, category, tags, save);
  let id = null;
  // Loads may overlap (a save, then a live update); only the latest one is applied.
  let generation = 0;
  // The labels just saved: live updates taken before the save must not show the old ones
  // again, so summaries that differ are skipped until one agrees (or a few seconds pass).
  let saved = null;
  // Set once the user changes this torrent's category or tags, until they save or pick
  // another torrent: live updates must not undo an edit in progress.
  let dirty = false;
  const setCategory = (t) => {
    category.value = (t && t.category) || '';
  };
  const load = async (t) => {
    const mine = ++generation;
    const categories = await get('/api/categories');
    if (mine !== generation) return;
    fillCategories(category, categories, [['', 'No category'], ['+', 'New category…']]);
    setCategory(t);
  };
  const edited = () => {
    dirty = true;
    ++generation;
  };
  ctx.listen(category, 'change', edited);
  ctx.listen(tags, 'input', edited);
  // Categories made elsewhere appear when the user opens the select.
  ctx.listen(category, 'focus', async () => {
    const mine = generation;
    try {
      const categories = await get('/api/categories');
      if (mine === generation) fillCategories(category, categories, [['', 'No category'], ['+', 'New category…']]);
    } catch (e) {
      // The choices already shown stay.
    }
  });
  ctx.listen(save, 'click', async () => {
    if (!id) return;
    try {
      let c = category.value;
      if (c === '+') {
        c = (window.prompt('Name of the new category') || '').trim();
        if (!c) return;
        await api('POST', '/api/categories', { name: c });
      }
      const list = tags.value.split(',').map((x) => x.trim()).filter(Boolean);
      const t = await api('PUT', `/api/torrents/${id}/labels`, { category: c || null, tags: list });
      saved = { id: t.id, key: labelKey(t), until: Date.now() + 5000 };
      if (t.id === id) {
        dirty = false;
        await load(t);
      }
      toast('Labels saved', 'ok');
      if (onSaved) onSaved(t);
    } catch (e) {
      reportError(e, 'Cannot save labels');
    }
  });
  return {
    el,
    /** Shows torrent `t` (a summary), unless the user is editing this torrent's labels. */
    show(t) {
      if (!t) return;
      const same = t.id === id;
      id = t.id;
      if (!same) dirty = false;
      if (same && (dirty || el.contains(document.activeElement))) return;
      if (saved) {
        if (saved.id === t.id && labelKey(t) !== saved.key && Date.now() < saved.until) return;
        saved = null;
      }
      tags.value = (t.tags || []).join(', ');
      // The categories are fetched again only when this torrent's is not among them yet.
      if (!same || ![...category.options].some((o) => o.value === (t.category || ''))) {
        load(t).catch(() => {});
      } else {
        ++generation;
        setCategory(t);
      }
    },
  };
}
