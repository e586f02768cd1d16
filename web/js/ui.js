// Small DOM helpers shared by the views: element builder, toasts, confirm dialog, copy.

/** h('div.card', {title: 'x'}, child, 'text') — tag with optional .classes and #id. */
export function h(spec, attrs, ...children) {
  const m = spec.match(/^([a-z0-9]+)?((?:[.#][\w-]+)*)$/i);
  const el = document.createElement((m && m[1]) || 'div');
  if (m && m[2]) {
    for (const part of m[2].match(/[.#][\w-]+/g)) {
      if (part[0] === '.') el.classList.add(part.slice(1));
      else el.id = part.slice(1);
    }
  }
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === 'text') el.textContent = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k in el && typeof v !== 'string') el[k] = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
  }
  for (const c of children) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Sets text only when it changed, so unchanged cells are never touched. */
export function setText(el, text) {
  const s = String(text);
  if (el.textContent !== s) el.textContent = s;
}

export function setAttr(el, name, value) {
  const s = String(value);
  if (el.getAttribute(name) !== s) el.setAttribute(name, s);
}

const MAX_TOASTS = 5;

/** Shows a message in the corner; kind 'error' | 'ok' | 'info'. */
export function toast(message, kind = 'info', ms = kind === 'error' ? 8000 : 4000) {
  const box = document.getElementById('toasts');
  while (box.children.length >= MAX_TOASTS) box.firstElementChild.remove();
  const close = h('button.toast-close', { type: 'button', 'aria-label': 'Dismiss', text: '×' });
  const el = h(`div.toast.${kind}`, { role: kind === 'error' ? 'alert' : 'status' },
    h('span.toast-text', { text: message }), close);
  const timer = setTimeout(() => el.remove(), ms);
  close.addEventListener('click', () => {
    clearTimeout(timer);
    el.remove();
  }, { once: true });
  box.append(el);
}

/** Toast for a failed API call; aborted requests are not errors. */
export function reportError(err, what) {
  if (err && err.name === 'AbortError') return;
  const msg = err && err.message ? err.message : String(err);
  toast(what ? `${what}: ${msg}` : msg, 'error');
}

/**
 * Asks for confirmation in a modal dialog. Resolves to null (cancelled) or
 * {checked} where checked is the optional checkbox's state.
 */
export function confirmDialog({ title, text, ok = 'Confirm', check = null, danger = true }) {
  const dlg = document.getElementById('confirm');
  dlg.querySelector('.dlg-title').textContent = title;
  dlg.querySelector('.dlg-text').textContent = text;
  const okBtn = dlg.querySelector('.dlg-ok');
  okBtn.textContent = ok;
  okBtn.classList.toggle('danger', danger);
  okBtn.classList.toggle('primary', !danger);
  const label = dlg.querySelector('.dlg-check');
  const box = label.querySelector('input');
  box.checked = false;
  label.hidden = !check;
  if (check) label.querySelector('.dlg-check-text').textContent = check;
  dlg.returnValue = '';
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => {
      resolve(dlg.returnValue === 'ok' ? { checked: box.checked } : null);
    }, { once: true });
    dlg.showModal();
    dlg.querySelector('button[value="cancel"]').focus();
  });
}

/** Copies text to the clipboard and says so. */
export async function copyText(text, what = 'Copied') {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const ta = h('textarea', { readonly: true });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    document.execCommand('copy');
    ta.remove();
  }
  toast(`${what}: ${text}`, 'ok', 2500);
}

export function debounce(fn, ms) {
  let t = 0;
  const d = (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
  d.cancel = () => clearTimeout(t);
  return d;
}

/** A progress bar element; update with setProgress. */
export function progressBar() {
  return h('div.bar', { role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100' },
    h('div.bar-fill'), h('span.bar-text'));
}

export function setProgress(bar, fraction, label, stateClass) {
  const p = Math.max(0, Math.min(1, fraction || 0));
  const w = `${(p * 100).toFixed(1)}%`;
  const fill = bar.firstElementChild;
  if (fill.style.width !== w) fill.style.width = w;
  setText(bar.lastElementChild, label);
  setAttr(bar, 'aria-valuenow', Math.floor(p * 100));
  if (stateClass !== undefined && bar.dataset.state !== stateClass) bar.dataset.state = stateClass;
}

/** A small status pill. */
export function setBadge(el, text, kind) {
  setText(el, text);
  if (el.dataset.kind !== kind) el.dataset.kind = kind;
}
