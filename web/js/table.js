// A table whose rows are kept by key and updated in place: unchanged cells are never
// touched, rows are moved only when the sort order changes, so live updates don't flicker.

import { h, setText } from './ui.js';

/**
 * columns: [{id, label, sort?: item => value, text?: item => string,
 *            create?: (td) => void, update?: (td, item) => void, cls?, title?: item => string}]
 * options: {key: item => string, selectable, onSelect(key, item), onAction(action, key, item, el),
 *           empty: element shown when there are no rows, sortBy, sortDir, label}
 */
export class KeyedTable {
  constructor(columns, options) {
    this.columns = columns;
    this.opts = options;
    this.rows = new Map();
    this.order = [];
    this.items = [];
    this.sortBy = options.sortBy || null;
    this.sortDir = options.sortDir || 1;
    this.selected = null;

    this.table = h('table.grid', { 'aria-label': options.label || null });
    const tr = h('tr');
    this.heads = new Map();
    for (const c of columns) {
      const th = h(`th${c.cls ? '.' + c.cls.split(' ').join('.') : ''}`, { scope: 'col', dataset: { col: c.id } });
      if (c.sort) {
        const btn = h('button.sort', { type: 'button', text: c.label });
        btn.addEventListener('click', () => this.setSort(c.id));
        th.append(btn);
      } else {
        th.textContent = c.label;
      }
      this.heads.set(c.id, th);
      tr.append(th);
    }
    this.thead = h('thead', null, tr);
    this.tbody = h('tbody');
    this.table.append(this.thead, this.tbody);
    this.wrap = h('div.table-wrap', null, this.table);
    if (options.empty) this.wrap.append(options.empty);

    this.tbody.addEventListener('click', (e) => this.onClick(e));
    this.tbody.addEventListener('keydown', (e) => this.onKey(e));
    this.tbody.addEventListener('change', (e) => {
      const el = e.target.closest('[data-action]');
      const tr = e.target.closest('tr');
      const row = tr && this.rows.get(tr.dataset.key);
      if (el && row && this.opts.onAction) this.opts.onAction(el.dataset.action, tr.dataset.key, row.item, el);
    });
    this.markSort();
  }

  setSort(id) {
    if (this.sortBy === id) this.sortDir = -this.sortDir;
    else {
      this.sortBy = id;
      this.sortDir = 1;
    }
    this.markSort();
    this.reorder();
  }

  markSort() {
    for (const [id, th] of this.heads) {
      if (id === this.sortBy) th.setAttribute('aria-sort', this.sortDir > 0 ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    }
  }

  rowFor(key) {
    return this.rows.get(key);
  }

  /** Replaces the table's content with `items`, reusing rows by key. */
  update(items) {
    this.items = items;
    const seen = new Set();
    for (const item of items) {
      const k = this.opts.key(item);
      seen.add(k);
      let row = this.rows.get(k);
      if (!row) {
        row = this.createRow(k);
        this.rows.set(k, row);
      }
      row.item = item;
      this.fill(row, item);
    }
    for (const [k, row] of this.rows) {
      if (!seen.has(k)) {
        row.tr.remove();
        this.rows.delete(k);
        if (this.selected === k) this.selected = null;
      }
    }
    this.reorder();
    if (this.opts.empty) this.opts.empty.hidden = this.rows.size > 0;
    this.table.classList.toggle('is-empty', this.rows.size === 0);
  }

  createRow(k) {
    const tr = h('tr', { dataset: { key: k } });
    if (this.opts.selectable) {
      tr.tabIndex = 0;
      tr.setAttribute('aria-selected', 'false');
    }
    const cells = [];
    for (const c of this.columns) {
      const td = h(`td${c.cls ? '.' + c.cls.split(' ').join('.') : ''}`);
      if (c.create) c.create(td);
      cells.push(td);
      tr.append(td);
    }
    return { tr, cells, item: null };
  }

  fill(row, item) {
    this.columns.forEach((c, i) => {
      const td = row.cells[i];
      if (c.update) c.update(td, item);
      else if (c.text) setText(td, c.text(item));
      if (c.title) {
        const t = c.title(item) || '';
        if (td.title !== t) td.title = t;
      }
    });
  }

  reorder() {
    let items = this.items;
    const col = this.columns.find((c) => c.id === this.sortBy);
    if (col && col.sort) {
      const dir = this.sortDir;
      const f = col.sort;
      items = items.slice().sort((a, b) => {
        const x = f(a);
        const y = f(b);
        if (x === y) return 0;
        if (x == null) return 1;
        if (y == null) return -1;
        return (typeof x === 'string' ? x.localeCompare(y) : x < y ? -1 : 1) * dir;
      });
    }
    const keys = items.map((it) => this.opts.key(it));
    if (keys.length === this.order.length && keys.every((k, i) => k === this.order[i])) return;
    this.order = keys;
    // Move only rows that are out of place.
    let cursor = this.tbody.firstElementChild;
    for (const k of keys) {
      const tr = this.rows.get(k).tr;
      if (tr === cursor) cursor = cursor.nextElementSibling;
      else this.tbody.insertBefore(tr, cursor);
    }
  }

  select(key, notify = true) {
    if (this.selected && this.rows.has(this.selected)) {
      const old = this.rows.get(this.selected).tr;
      old.classList.remove('selected');
      old.setAttribute('aria-selected', 'false');
    }
    this.selected = key;
    const row = key ? this.rows.get(key) : null;
    if (row) {
      row.tr.classList.add('selected');
      row.tr.setAttribute('aria-selected', 'true');
    }
    if (notify && this.opts.onSelect) this.opts.onSelect(key, row ? row.item : null);
  }

  onClick(e) {
    const tr = e.target.closest('tr');
    if (!tr || !this.tbody.contains(tr)) return;
    const key = tr.dataset.key;
    const row = this.rows.get(key);
    if (!row) return;
    const act = e.target.closest('[data-action]');
    if (act && this.opts.onAction) {
      if (act.tagName === 'INPUT' || act.tagName === 'SELECT') return;
      this.opts.onAction(act.dataset.action, key, row.item, act);
      return;
    }
    if (e.target.closest('button, input, select, a, label')) return;
    if (this.opts.selectable) this.select(this.selected === key ? null : key);
  }

  onKey(e) {
    if (!this.opts.selectable) return;
    const tr = e.target;
    if (tr.tagName !== 'TR') return;
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      this.select(this.selected === tr.dataset.key ? null : tr.dataset.key);
    } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const next = e.key === 'ArrowDown' ? tr.nextElementSibling : tr.previousElementSibling;
      if (next) next.focus();
    }
  }
}
