// Human-friendly units: sizes in binary units, rates per second, ETA like "1h 02m".

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 -> "1.50 KiB"; three significant digits above 1 KiB. */
export function bytes(n) {
  if (n == null || !Number.isFinite(n)) return '—';
  let v = Math.max(0, n);
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  if (u === 0) return `${Math.round(v)} B`;
  const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${v.toFixed(digits)} ${UNITS[u]}`;
}

/** Bytes per second; "—" for an idle zero when `dash` is set. */
export function rate(n, dash = false) {
  if (dash && !n) return '—';
  return `${bytes(n || 0)}/s`;
}

const pad2 = (n) => String(n).padStart(2, '0');

/** Seconds -> "42s", "5m 03s", "1h 02m", "3d 04h"; null -> "∞" unless done. */
export function eta(secs) {
  if (secs == null || !Number.isFinite(secs) || secs < 0) return '∞';
  const s = Math.round(secs);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad2(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${pad2(Math.floor((s % 3600) / 60))}m`;
  if (s < 100 * 86400) return `${Math.floor(s / 86400)}d ${pad2(Math.floor((s % 86400) / 3600))}h`;
  return '∞';
}

/** Fraction 0..1 -> "45.3%"; never shows 100% before it is complete. */
export function pct(p) {
  const v = Math.max(0, Math.min(1, p || 0));
  if (v >= 1) return '100%';
  return `${(Math.floor(v * 1000) / 10).toFixed(1)}%`;
}

export function ratio(r) {
  if (r == null || !Number.isFinite(r)) return '∞';
  return r.toFixed(2);
}

export function count(n) {
  return n == null ? '–' : String(n);
}

/** Connected and swarm counts: "1 (3)". */
export function connSwarm(conn, swarm) {
  return swarm == null ? String(conn ?? 0) : `${conn ?? 0} (${swarm})`;
}

/** Unix seconds -> local date and time, short. */
export function dateTime(secs) {
  if (!secs) return '—';
  const d = new Date(secs * 1000);
  return d.toLocaleString(undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
  });
}

/** Milliseconds -> "12:03:44.120". */
export function clock(ms) {
  const d = new Date(ms);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

export function duration(secs) {
  if (secs == null) return '—';
  const s = Math.max(0, Math.round(secs));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad2(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${pad2(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d ${pad2(Math.floor((s % 86400) / 3600))}h`;
}

const STATE_LABELS = {
  downloading: 'Downloading',
  seeding: 'Seeding',
  paused: 'Paused',
  queued: 'Queued',
  checking: 'Checking',
  metadata: 'Fetching metadata',
  error: 'Error',
};

/** Status shown for a torrent summary; a paused complete torrent is "Finished". */
export function status(t) {
  if (t.state === 'paused' && t.progress >= 1) return 'Finished';
  return STATE_LABELS[t.state] || t.state;
}

export function shortId(id) {
  return (id || '').slice(0, 8);
}

/** Parses "512", "512K", "1.5 MiB" (per second) -> bytes; null when malformed. */
export function parseSize(text) {
  const m = String(text).trim().match(/^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?(?:\/s)?$/i);
  if (!m) return null;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase()];
  return Math.round(parseFloat(m[1]) * mult);
}
