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
  // Unchanged choices are left alone (replacing them would disturb an open dropdown).
  const values = [...extra.map(([v]) => v), ...categories.map((c) => c.name)];
  if (values.length === select.options.length && values.every((v, i) => select.options[i].value === v)) return;
  // An empty select's value is "", which is also the "Uncategorized" option's: on the
  // first fill there is no choice to keep, so the first option ("All") stays selected.
  const chosen = select.options.length ? select.value : null;
  select.replaceChildren(...extra.map(([v, label]) => h('option', { value: v, text: label })),
    ...categories.map((c) => h('option', { value: c.name, text: c.name })));
  if (chosen !== null && [...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

/**
 * A fetcher of the category list whose answers are used only while they are the newest:
 * it resolves to null when a later call was made meanwhile, or when the fetch failed (the
 * choices already shown stay; the next call retries).
 */
function newestCategories() {
  let generation = 0;
  return async () => {
    const mine = ++generation;
    try {
      const categories = await get('/api/categories');
      return mine === generation ? categories : null;
    } catch (e) {
      return null;
    }
  };
}

/** The list filter: all, uncategorized, or one category. Calls `onChange` when it changes. */
export function categoryFilter(ctx, onChange) {
  const el = h('select.category-filter', { 'aria-label': 'Filter by category' });
  const fetchCategories = newestCategories();
  const refresh = async () => {
    const categories = await fetchCategories();
    if (!categories) return;
    const before = el.options.length ? el.value : null;
    fillCategories(el, categories, [['*', 'All categories'], ['', 'Uncategorized']]);
    // The chosen category was deleted: the list shows every torrent again.
    if (before !== null && el.value !== before) onChange();
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
  const EXTRA = [['', 'No category'], ['+', 'New category…']];
  let id = null;
  // The select always shows the shown torrent's category at once; the list of categories
  // is fetched beside it, and only the newest fetch applies (fillCategories keeps the choice).
  const fetchCategories = newestCategories();
  const refreshChoices = async () => {
    const categories = await fetchCategories();
    if (categories) fillCategories(category, categories, EXTRA);
  };
  /** Selects `t`'s category, adding it to the choices until the next fetch when missing. */
  const showCategory = (t) => {
    const c = (t && t.category) || '';
    if (![...category.options].some((o) => o.value === c)) {
      if (!category.options.length) fillCategories(category, [], EXTRA);
      if (c) category.append(h('option', { value: c, text: c }));
      refreshChoices();
    }
    category.value = c;
  };
  // The labels just saved: live updates taken before the save must not show the old ones
  // again, so summaries that differ are skipped until one agrees (or a few seconds pass).
  let saved = null;
  // Set once the user changes this torrent's category or tags, until they save or pick
  // another torrent: live updates must not undo an edit in progress.
  let dirty = false;
  // Counts the user's edits, so a save's answer does not undo one made while it was sent.
  let edits = 0;
  const edited = () => {
    dirty = true;
    edits += 1;
  };
  ctx.listen(category, 'change', edited);
  ctx.listen(tags, 'input', edited);
  // Categories made elsewhere appear when the user opens the select.
  ctx.listen(category, 'focus', refreshChoices);
  ctx.listen(save, 'click', async () => {
    // Everything the save needs is read before the first await: the user may pick another
    // torrent or go on typing while it is on its way.
    const target = id;
    if (!target) return;
    const list = tags.value.split(',').map((x) => x.trim()).filter(Boolean);
    let c = category.value;
    const mark = edits;
    try {
      if (c === '+') {
        c = (window.prompt('Name of the new category') || '').trim();
        if (!c) return;
        await api('POST', '/api/categories', { name: c });
      }
      const t = await api('PUT', `/api/torrents/${target}/labels`, { category: c || null, tags: list });
      saved = { id: t.id, key: labelKey(t), until: Date.now() + 5000 };
      if (t.id === id && edits === mark) {
        dirty = false;
        tags.value = (t.tags || []).join(', ');
        showCategory(t);
      }
      toast('Labels saved', 'ok');
      if (onSaved) onSaved(t);
    } catch (e) {
      reportError(e, 'Cannot save labels');
    }
  });
  return {
    el,
    /** Forgets the torrent shown and any unsaved edit (the details closed or changed). */
    reset() {
      id = null;
      dirty = false;
      saved = null;
    },
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
      showCategory(t);
    },
  };
}
