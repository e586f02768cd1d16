// A fake Shoal node for working on the UI without a real one: serves web/ and a canned
// API with live (random) updates. `node tests/browser/dev/mock-node.mjs [port] [torrents]`.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';

const WEB = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../web');
const port = Number(process.argv[2] || 8099);
const N = Number(process.argv[3] || 12);
const hex = (s) => crypto.createHash('sha1').update(s).digest('hex');
const now = () => Math.floor(Date.now() / 1000);
const names = ['ubuntu-24.04-desktop-amd64.iso', 'holiday photos', 'Big Buck Bunny (1080p)', 'debian-12.5.0-amd64-netinst.iso', 'dataset-2024.tar.zst', 'podcast episode 42.mp3', 'Project Gutenberg collection', 'music/album FLAC', 'linux-6.8.tar.xz', 'readme.txt'];
const states = ['downloading', 'seeding', 'paused', 'queued', 'checking', 'error', 'downloading', 'seeding'];
const torrents = Array.from({ length: N }, (_, i) => {
  const size = Math.floor(Math.random() * 4e9) + 1e5;
  const state = states[i % states.length];
  const progress = state === 'seeding' ? 1 : Math.random();
  return {
    id: hex(`t${i}`), name: names[i % names.length] + (i >= names.length ? ` (${i})` : ''), size, state, progress,
    down_rate: 0, up_rate: 0, downloaded: Math.floor(size * progress), uploaded: Math.floor(Math.random() * size),
    ratio: Math.random() * 3, peers: i % 4, seeds: i % 3, swarm_seeders: i % 5 ? i % 7 : null, swarm_leechers: i % 5 ? i % 4 : null,
    eta_secs: null, added_at: now() - i * 3600, completed_at: null, save_dir: '/home/user/Downloads',
    error: state === 'error' ? 'Storage error: cannot write piece 12 to /home/user/Downloads/x: disk full' : null,
    role: progress >= 1 ? 'seeder' : 'leecher', private: false, piece_size: 262144, pieces: Math.ceil(size / 262144),
    pieces_have: 0, files: 3,
  };
});
let stats = { down_rate: 0, up_rate: 0, downloaded: 123456789, uploaded: 987654321, files_shared: 3, downloads_completed: 7, downloads_failed: 1, torrents: N, peers: 5 };
const jobs = [{ id: 'j1', path: '/home/user/Videos/holiday', done_bytes: 0, total_bytes: 734003200, state: 'hashing', torrent_id: null, error: null }];
const log = Array.from({ length: 420 }, (_, i) => ({ ts_ms: Date.now() - i * 900, direction: i % 3 ? 'down' : 'up', peer: `127.0.0.1:${6001 + (i % 3)}`, info_hash: torrents[i % N].id, piece: i % 97, bytes: 262144 }));
const history = [
  { id: hex('h1'), name: 'debian-12.5.0-amd64-netinst.iso', size: 659554304, status: 'completed', error: null, avg_speed: 45e6, started_at: now() - 4000, finished_at: now() - 3900, seeds: 3, peers: 1 },
  { id: hex('h2'), name: 'lost-archive.zip', size: 12345678, status: 'failed', error: 'No peer has sent data for 600 s and the tracker lists no seeders: the seeder is gone', avg_speed: 1200, started_at: now() - 9000, finished_at: now() - 8000, seeds: 0, peers: 0 },
  { id: hex('h3'), name: 'old-movie.mkv', size: 2345678901, status: 'cancelled', error: null, avg_speed: 3e6, started_at: now() - 99000, finished_at: now() - 98000, seeds: 1, peers: 2 },
];

setInterval(() => {
  let d = 0;
  let u = 0;
  for (const t of torrents) {
    t.down_rate = t.state === 'downloading' ? Math.floor(Math.random() * 5e6) : 0;
    t.up_rate = t.state === 'seeding' || t.state === 'downloading' ? Math.floor(Math.random() * 1e6) : 0;
    if (t.state === 'downloading') {
      t.progress = Math.min(1, t.progress + t.down_rate / t.size);
      t.eta_secs = t.down_rate ? Math.floor(((1 - t.progress) * t.size) / t.down_rate) : null;
      if (t.progress >= 1) { t.state = 'seeding'; t.role = 'seeder'; t.eta_secs = null; }
    }
    d += t.down_rate;
    u += t.up_rate;
  }
  stats = { ...stats, down_rate: d, up_rate: u, downloaded: stats.downloaded + d, uploaded: stats.uploaded + u };
  if (jobs[0].state === 'hashing') {
    jobs[0].done_bytes = Math.min(jobs[0].total_bytes, jobs[0].done_bytes + 3e7);
    if (jobs[0].done_bytes >= jobs[0].total_bytes) { jobs[0].state = 'done'; jobs[0].torrent_id = torrents[1].id; }
  }
}, 1000);

const clients = new Set();
setInterval(() => {
  const msg = `event: update\ndata: ${JSON.stringify({ stats, torrents, jobs })}\n\n`;
  for (const res of clients) res.write(msg);
}, 1000);

const send = (res, code, body) => {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(body === undefined ? '' : JSON.stringify(body));
};
const fsTree = {
  '/home/user': [{ name: 'Documents', dir: true, size: 0 }, { name: 'Videos', dir: true, size: 0 }, { name: 'notes.txt', dir: false, size: 2048 }, { name: 'photo.jpg', dir: false, size: 3.2e6 }],
  '/home/user/Videos': [{ name: 'holiday', dir: true, size: 0 }, { name: 'clip.mp4', dir: false, size: 7.4e8 }],
};

http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  const p = u.pathname;
  if (p === '/' || p === '/index.html') {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache' });
    return res.end(fs.readFileSync(path.join(WEB, 'index.html'), 'utf8').replaceAll('{{VERSION}}', 'dev'));
  }
  const am = p.match(/^\/assets\/[^/]+\/(.+)$/);
  if (am) {
    const f = path.join(WEB, am[1]);
    if (!f.startsWith(WEB) || !fs.existsSync(f)) return send(res, 404, { error: 'no such asset' });
    res.writeHead(200, { 'Content-Type': f.endsWith('.css') ? 'text/css' : 'text/javascript', 'Cache-Control': 'no-cache' });
    return res.end(fs.readFileSync(f));
  }
  if (p === '/api/events') {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    res.write(`event: update\ndata: ${JSON.stringify({ stats, torrents, jobs })}\n\n`);
    clients.add(res);
    req.on('close', () => clients.delete(res));
    return;
  }
  if (p === '/api/node') return send(res, 200, { peer_id: '-SH0100-a1b2c3d4e5f6', peer_port: 6001, web_url: `http://127.0.0.1:${port}/`, version: '0.1.0', data_dir: '/home/user/.local/share/shoal', download_dir: '/home/user/Downloads', trackers: ['http://127.0.0.1:5000/announce'], embedded_tracker: null, uptime_secs: 3723 });
  if (p === '/api/stats') return send(res, 200, stats);
  if (p === '/api/torrents') return send(res, 200, torrents);
  if (p === '/api/fs') {
    const dir = u.searchParams.get('path') || '/home/user';
    if (!fsTree[dir]) return send(res, 200, { path: dir, parent: dir.split('/').slice(0, -1).join('/') || null, entries: [] });
    return send(res, 200, { path: dir, parent: dir === '/home/user' ? null : '/home/user', entries: fsTree[dir] });
  }
  if (p === '/api/search') {
    const q = (u.searchParams.get('q') || '').toLowerCase();
    return send(res, 200, { page: 0, results: torrents.filter((t) => t.name.toLowerCase().includes(q)).slice(0, 20).map((t) => ({ id: t.id, name: t.name, size: t.size, file_count: 3, seeders: 2, leechers: 1, completed: 4, published: now() - 86400 })) });
  }
  if (p === '/api/history') {
    const f = (u.searchParams.get('filter') || '').toLowerCase();
    const st = u.searchParams.get('status');
    return send(res, 200, history.filter((x) => x.name.toLowerCase().includes(f) && (!st || x.status === st)));
  }
  if (p === '/api/log') {
    const page = Number(u.searchParams.get('page') || 0);
    const per = Number(u.searchParams.get('per_page') || 50);
    const dir = u.searchParams.get('direction');
    const items = log.filter((x) => !dir || x.direction === dir);
    return send(res, 200, { total: items.length, page, per_page: per, items: items.slice(page * per, page * per + per) });
  }
  if (p === '/api/settings') return send(res, 200, { max_down: 0, max_up: 1048576, auto_share: true, max_active: 5, trackers: ['http://127.0.0.1:5000/announce'], download_dir: '/home/user/Downloads' });
  let m = p.match(/^\/api\/torrents\/(\w+)\/(files|peers|trackers|pieces)$/);
  if (m) {
    const t = torrents.find((x) => x.id.startsWith(m[1]));
    if (m[2] === 'files') return send(res, 200, [0, 1, 2].map((i) => ({ index: i, path: `${t.name}/part-${i}.bin`, size: Math.floor(t.size / 3), progress: t.progress, wanted: i !== 2, priority: ['normal', 'high', 'low'][i] })));
    if (m[2] === 'peers') return send(res, 200, [{ addr: '127.0.0.1:6002', client: 'Shoal 0.1.0', progress: 0.25, down_rate: 123456, up_rate: 0, downloaded: 1e6, uploaded: 0, seed: false, flags: 'D I' }, { addr: '10.0.0.7:51413', client: 'Transmission 3.00', progress: 1, down_rate: 2e6, up_rate: 1e4, downloaded: 5e7, uploaded: 1e5, seed: true, flags: 'D U' }]);
    if (m[2] === 'trackers') return send(res, 200, [{ url: 'http://127.0.0.1:5000/announce', tier: 0, status: 'working', message: '', seeders: 1, leechers: 2 }]);
    const count = t.pieces;
    const bytes = Buffer.alloc(Math.ceil(count / 8));
    for (let i = 0; i < count; i++) if (Math.random() < t.progress) bytes[i >> 3] |= 0x80 >> (i & 7);
    return send(res, 200, { count, have: bytes.toString('base64') });
  }
  if (req.method !== 'GET') return send(res, 200, {});
  send(res, 404, { error: 'not found' });
}).listen(port, '127.0.0.1', () => console.log(`mock node on http://127.0.0.1:${port}/`));
