// Real `shoal` processes on loopback for the browser tests: a tracker and nodes in temp
// dirs, readiness read from their output (never a fixed port plus sleep), killed at exit.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';

export const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
export const SHOAL = process.env.SHOAL_BIN || path.join(REPO, 'target/debug/shoal');
export const SHOTS = process.env.SHOAL_SCREENSHOTS || path.join(REPO, 'target/ui-screenshots');

const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try {
      p.child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

export function tempDir(tag) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `shoal-ui-${tag}-`));
}

/** A child process whose stdout and stderr lines are kept for waiting and for failure reports. */
export class Proc {
  constructor(name, args, { cwd, env } = {}) {
    if (!fs.existsSync(SHOAL)) throw new Error(`${SHOAL} is missing: run \`cargo build\` first or set SHOAL_BIN`);
    this.name = name;
    this.lines = [];
    this.waiters = new Set();
    this.child = spawn(SHOAL, args, { cwd, env: { ...process.env, SHOAL_LOG: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.child.on('exit', (code, sig) => {
      live.delete(this);
      this.code = code ?? sig;
      for (const w of this.waiters) w();
      resolve(this.code);
    }));
    live.add(this);
    for (const stream of [this.child.stdout, this.child.stderr]) {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          this.lines.push(buf.slice(0, i));
          if (this.lines.length > 2000) this.lines.splice(0, 1000);
          buf = buf.slice(i + 1);
          for (const w of this.waiters) w();
        }
      });
    }
  }

  /** Resolves to the rest of the first output line starting with `prefix`. */
  waitFor(prefix, ms = 30000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const line = this.lines.find((l) => l.startsWith(prefix));
        if (line !== undefined) {
          done();
          resolve(line.slice(prefix.length).trim());
        } else if (this.code !== undefined) {
          done();
          reject(new Error(`${this.name} exited (${this.code}) before printing ${prefix}\n${this.tail()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name} printed no ${prefix} within ${ms} ms\n${this.tail()}`));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  tail(n = 30) {
    return this.lines.slice(-n).map((l) => `  ${this.name}| ${l}`).join('\n');
  }

  /** SIGTERM, then SIGKILL if it lingers. */
  async stop(ms = 5000) {
    if (this.code !== undefined) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), ms);
    await this.exited;
    clearTimeout(t);
  }
}

export async function startTracker(root) {
  const proc = new Proc('tracker', ['tracker', '--bind', '127.0.0.1:0', '--interval', '2'], { cwd: root });
  const url = await proc.waitFor('tracker: ');
  return { proc, url };
}

/**
 * Starts `shoal up` with its own home, data and download dirs under `root/name`.
 * Returns {proc, url, home, dl, data, api(method, path, body)}.
 */
export async function startNode(root, name, tracker, extra = []) {
  const base = path.join(root, name);
  const home = path.join(base, 'home');
  const dl = path.join(base, 'downloads');
  const data = path.join(base, 'data');
  for (const d of [home, dl, data]) fs.mkdirSync(d, { recursive: true });
  const proc = new Proc(`node ${name}`, [
    'up', '--data-dir', data, '--port', '0', '--web', '127.0.0.1:0', '--download-dir', dl, '--tracker', tracker, ...extra,
  ], { cwd: base, env: { HOME: home, XDG_DOWNLOAD_DIR: dl } });
  const url = await proc.waitFor('web: ');
  const node = { name, proc, url, home, dl, data, base };
  node.api = (method, p, body) => apiCall(url, method, p, body);
  return node;
}

export async function apiCall(base, method, p, body) {
  const res = await fetch(new URL(p, base), {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
  return data;
}

/** Writes `count` files of random bytes (`size` each) into dir/name. */
export function makeFolder(dir, name, count, size) {
  const folder = path.join(dir, name);
  fs.mkdirSync(folder, { recursive: true });
  for (let i = 0; i < count; i++) fs.writeFileSync(path.join(folder, `part-${i}.bin`), crypto.randomBytes(size));
  return folder;
}

/** Polls fn until it returns a truthy value. */
/** A test file's teardown: closes its browser, stops its processes, removes its temp dir
 * (kept with SHOAL_KEEP=1). Each may be missing when `before` failed part way. */
export async function cleanUp(browser, procs, root) {
  if (browser) await browser.close();
  for (const p of procs) if (p) await p.proc.stop();
  if (root && !process.env.SHOAL_KEEP) fs.rmSync(root, { recursive: true, force: true });
}

export async function until(what, fn, ms = 30000, every = 250) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, every));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}
