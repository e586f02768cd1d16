// Live speed history: fixed-size ring buffers and a canvas line chart over a fixed window.

import { rate } from './format.js';

/** The speed charts' fixed window. */
export const CHART_WINDOW_MS = 5 * 60 * 1000;

/** Timestamped samples in a fixed ring; memory never grows past `capacity`. */
export class Ring {
  constructor(capacity) {
    this.t = new Float64Array(capacity);
    this.v = new Float64Array(capacity);
    this.cap = capacity;
    this.head = 0;
    this.len = 0;
  }

  push(t, v) {
    this.t[this.head] = t;
    this.v[this.head] = v;
    this.head = (this.head + 1) % this.cap;
    if (this.len < this.cap) this.len++;
  }

  /** Calls fn(t, v) oldest first. */
  forEach(fn) {
    const start = (this.head - this.len + this.cap) % this.cap;
    for (let i = 0; i < this.len; i++) {
      const j = (start + i) % this.cap;
      fn(this.t[j], this.v[j]);
    }
  }

  max(since) {
    let m = 0;
    this.forEach((t, v) => {
      if (t >= since && v > m) m = v;
    });
    return m;
  }
}

function niceCeil(v) {
  if (v <= 0) return 1024;
  const steps = [1, 2, 2.5, 5, 10];
  const base = 1024 ** Math.floor(Math.log(v) / Math.log(1024));
  const x = v / base;
  const mag = 10 ** Math.floor(Math.log10(x));
  for (const s of steps) if (s * mag >= x) return s * mag * base;
  return 10 * mag * base;
}

function cssVar(el, name) {
  return getComputedStyle(el).getPropertyValue(name).trim();
}

/**
 * Draws `ring` on `canvas` over the last `windowMs` ending at `now`.
 * The canvas' CSS size is used; the backing store follows devicePixelRatio.
 */
export function drawChart(canvas, ring, { windowMs, now, color }) {
  const dpr = window.devicePixelRatio || 1;
  const cw = canvas.clientWidth;
  const ch = canvas.clientHeight;
  if (!cw || !ch) return;
  if (canvas.width !== Math.round(cw * dpr) || canvas.height !== Math.round(ch * dpr)) {
    canvas.width = Math.round(cw * dpr);
    canvas.height = Math.round(ch * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cw, ch);
  const since = now - windowMs;
  const peak = ring.max(since);
  const top = niceCeil(peak);
  const padL = 74;
  const padR = 10;
  const padT = 10;
  const padB = 22;
  const w = cw - padL - padR;
  const hgt = ch - padT - padB;
  const grid = cssVar(canvas, '--grid') || '#8884';
  const muted = cssVar(canvas, '--muted') || '#888';
  ctx.font = '11px system-ui, sans-serif';
  ctx.lineWidth = 1;
  ctx.strokeStyle = grid;
  ctx.fillStyle = muted;
  ctx.textBaseline = 'middle';
  ctx.textAlign = 'right';
  for (let i = 0; i <= 4; i++) {
    const y = Math.round(padT + (hgt * i) / 4) + 0.5;
    ctx.beginPath();
    ctx.moveTo(padL, y);
    ctx.lineTo(padL + w, y);
    ctx.stroke();
    ctx.fillText(rate((top * (4 - i)) / 4), padL - 8, y);
  }
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  const mins = Math.round(windowMs / 60000);
  for (let m = 0; m <= mins; m++) {
    const x = padL + w - (w * m) / mins;
    ctx.fillText(m === 0 ? 'now' : `-${m}m`, Math.max(padL + 12, Math.min(x, padL + w - 10)), padT + hgt + 6);
  }
  const X = (t) => padL + ((t - since) / windowMs) * w;
  const Y = (v) => padT + hgt - (v / top) * hgt;
  ctx.beginPath();
  let first = true;
  let lastX = 0;
  let firstX = 0;
  let points = 0;
  ring.forEach((t, v) => {
    if (t < since) return;
    const x = X(t);
    const y = Y(v);
    if (first) {
      ctx.moveTo(x, y);
      firstX = x;
      first = false;
    } else ctx.lineTo(x, y);
    lastX = x;
    points++;
  });
  if (points > 1) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.lineJoin = 'round';
    ctx.stroke();
    ctx.lineTo(lastX, padT + hgt);
    ctx.lineTo(firstX, padT + hgt);
    ctx.closePath();
    ctx.globalAlpha = 0.15;
    ctx.fillStyle = color;
    ctx.fill();
    ctx.globalAlpha = 1;
  }
  canvas.dataset.points = String(points);
  canvas.dataset.peak = String(Math.round(peak));
}
