// Draws a torrent's piece bitfield as a grid of cells (or a strip when pieces outnumber pixels).

function cssVar(el, name) {
  return getComputedStyle(el).getPropertyValue(name).trim();
}

function decode(b64) {
  const bin = atob(b64 || '');
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** pieces: {count, have: base64 MSB-first bitfield}. Returns the number of pieces had. */
export function drawPieces(canvas, pieces) {
  const count = pieces.count || 0;
  const bits = decode(pieces.have);
  const has = (i) => ((bits[i >> 3] || 0) >> (7 - (i & 7))) & 1;
  const dpr = window.devicePixelRatio || 1;
  const cw = canvas.clientWidth || 600;
  const maxH = 220;
  const on = cssVar(canvas, '--accent') || '#0e7490';
  const off = cssVar(canvas, '--piece-off') || '#8883';
  let size = Math.floor(Math.sqrt((cw * maxH) / Math.max(1, count)));
  size = Math.min(size, 18);
  let ch;
  let have = 0;
  const ctx = canvas.getContext('2d');
  if (size >= 3) {
    const cols = Math.max(1, Math.floor(cw / size));
    const rows = Math.ceil(count / cols);
    ch = Math.max(size, rows * size);
    resize(canvas, cw, ch, dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cw, ch);
    const gap = size >= 6 ? 1 : 0;
    for (let i = 0; i < count; i++) {
      const x = (i % cols) * size;
      const y = Math.floor(i / cols) * size;
      const b = has(i);
      have += b;
      ctx.fillStyle = b ? on : off;
      ctx.fillRect(x, y, size - gap, size - gap);
    }
  } else {
    // More pieces than cells: one column per pixel, shaded by the share of pieces had.
    ch = 48;
    resize(canvas, cw, ch, dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = off;
    ctx.fillRect(0, 0, cw, ch);
    ctx.fillStyle = on;
    for (let x = 0; x < cw; x++) {
      const a = Math.floor((x * count) / cw);
      const b = Math.max(a + 1, Math.floor(((x + 1) * count) / cw));
      let n = 0;
      for (let i = a; i < b; i++) n += has(i);
      have += n;
      if (n) {
        ctx.globalAlpha = n / (b - a);
        ctx.fillRect(x, 0, 1, ch);
      }
    }
    ctx.globalAlpha = 1;
  }
  canvas.dataset.have = String(have);
  canvas.dataset.count = String(count);
  return have;
}

function resize(canvas, cw, ch, dpr) {
  canvas.style.height = `${ch}px`;
  const w = Math.round(cw * dpr);
  const hh = Math.round(ch * dpr);
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== hh) canvas.height = hh;
}
