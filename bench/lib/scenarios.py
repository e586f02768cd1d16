"""The six scenarios of issue 7. Each yields result records (dicts) for the JSON lines."""

import json
import os
import re
import resource
import shutil
import signal
import subprocess
import time
import urllib.parse

import data
from clients import (CLIENTS, OpenTracker, ShoalTracker, http, info_hash, wait_port,
                     wait_seeding_on_tracker)
from proc import Proc, free_port, machine_state
from stream import s_stream

GiB = 1 << 30
MiB = 1 << 20

# Runs per case of a full run (`--runs N` overrides them all; --quick: 1, repeat 3). The
# pairs of S1, S2 and S4 (and S3, S5, hashing) get 7 interleaved runs so the median and the
# slowest run mean something; `node` has a 60 s idle window per run, so 3; `repeat` is the
# 20 back-to-back Shoal transfers. Estimated full-run time: bench/README.md.
DEFAULT_RUNS = {"single": 7, "tree": 7, "crowd": 7, "mixed": 7, "tracker": 7, "node": 3,
                "hash": 7, "repeat": 20, "magnet": 7, "mse": 7, "stream": 7, "utp": 7}
QUICK_RUNS = {"repeat": 3}


class Session:
    """State shared by the scenarios of one bench/run."""

    def __init__(self, ctx, cfg, out):
        self.ctx = ctx
        self.cfg = cfg
        self.out = out
        self.tracker_port = free_port()
        self.tracker_kind = "shoal"
        if cfg.tracker == "opentracker" or (cfg.tracker == "auto" and not cfg.quick
                                            and OpenTracker.available()):
            self.tracker_kind = "opentracker"
        ctx.tracker_url = f"http://127.0.0.1:{self.tracker_port}/announce"
        self.hashes = []
        self.torrents = {}
        # Download folders of many-file runs, deleted at the end of the scenario.
        self.trash = []

    def runs(self, scenario):
        """Runs per case of SCENARIO: --runs when given, else the scenario's default."""
        if self.cfg.runs:
            return self.cfg.runs
        if self.cfg.quick:
            return QUICK_RUNS.get(scenario, 1)
        return DEFAULT_RUNS[scenario]

    def size(self, default):
        """Size of a single-file data set: --size-mib when given (checks only), else DEFAULT."""
        if getattr(self.cfg, "size_mib", None):
            return self.cfg.size_mib * MiB
        return default

    def emit(self, rec):
        rec.setdefault("type", "run")
        rec["time"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        rec["load1"] = os.getloadavg()[0]
        self.out.write(json.dumps(rec) + "\n")
        self.out.flush()
        brief = {k: rec[k] for k in ("scenario", "client", "run", "ok", "mb_s", "wall_s", "error")
                 if k in rec and rec[k] is not None}
        print("  " + json.dumps(brief), flush=True)

    def skip(self, scenario, client, reason):
        self.emit({"type": "skip", "scenario": scenario, "client": client, "reason": reason})

    def torrent(self, ds, tracker=True):
        """Create (once per session) the .torrent of data set DS: 256 KiB pieces. Without
        TRACKER (scenario `magnet`: seeders started from a .torrent, leechers given only a
        bare magnet link) the torrent has no announce URL; its info dictionary, hence its
        info-hash, is the same."""
        key = (ds.root, tracker)
        if key in self.torrents:
            return self.torrents[key]
        out = os.path.join(self.ctx.tmp, os.path.basename(ds.root)
                           + ("" if tracker else "-notracker") + ".torrent")
        argv = [self.ctx.shoal, "create", ds.path, "--piece-size", str(256 * 1024), "-o", out]
        if tracker:
            argv[3:3] = ["--tracker", self.ctx.tracker_url]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        self.torrents[key] = out
        if tracker:
            self.hashes.append(info_hash(self.ctx, out))
        return out

    def start_tracker(self):
        if self.tracker_kind == "opentracker":
            return OpenTracker(self.ctx, self.tracker_port, self.hashes)
        return ShoalTracker(self.ctx, self.tracker_port)


def usable(sess, scenario, names):
    """The clients of NAMES that can run; a skip record for the others."""
    out = []
    for n in names:
        if sess.cfg.clients and n not in sess.cfg.clients:
            continue
        ok, why = CLIENTS[n].available()
        if ok:
            out.append(n)
        else:
            sess.skip(scenario, n, why)
    return out


def mem_of(h, prefix):
    m = (h.proc if hasattr(h, "proc") else h).mem()
    return {f"{prefix}_peak_rss_mib": m["peak_rss_mib"], f"{prefix}_peak_anon_mib": m["peak_anon_mib"]}


def transfer(sess, scenario, ds, seeder_name, leecher_name, run, n_leechers=1, keep_seeding=False,
             timeout=300, magnet=False):
    """One seeder, N leechers started together; returns the result record.

    MAGNET (scenario `magnet`): no tracker; the seeder starts from a tracker-less .torrent
    and serves metadata; each leecher gets only `magnet:?xt=urn:btih:<hex>&x.pe=127.0.0.1:
    <seeder port>` and the record also has t_metadata_s and t_first_piece_s (from the
    leecher's spawn to its `metadata received:` and `first piece verified` lines)."""
    ctx = sess.ctx
    torrent = sess.torrent(ds, tracker=not magnet)
    rec = {"scenario": scenario, "client": seeder_name if seeder_name == leecher_name else
           f"{seeder_name}->{leecher_name}", "seeder": seeder_name, "leecher": leecher_name,
           "run": run, "bytes": ds.size, "files": ds.files or 1, "leechers": n_leechers,
           "tracker": "none (magnet x.pe)" if magnet else sess.tracker_kind, "ok": False,
           "error": None}
    # Flush dirty pages before the run too, not only after the previous one: the first run of
    # a scenario would otherwise compete with the writeback of a data set just generated (up
    # to 1 GiB dirty) or of other processes' writes. The state is taken after this sync, so it
    # shows what the run really starts with.
    os.sync()
    rec["state"] = machine_state()
    tracker = seeder = None
    leechers = []
    dirs = []
    try:
        if not magnet:
            tracker = sess.start_tracker()
        paths = ds.file_paths()
        data.warm(paths)
        if magnet:
            # seed() returns once the seeder prints `seeding` (its data checked); it is
            # listening by then (`peer port: N` comes first).
            seeder = CLIENTS[seeder_name].seed(ctx, torrent, ds.root, serve_metadata=True)
            _, m = seeder.proc.wait_line(r"^peer port: (\d+)", 10)
            uri = f"magnet:?xt=urn:btih:{info_hash(ctx, torrent)}&x.pe=127.0.0.1:{m.group(1)}"
            rec["magnet"] = uri
        else:
            seeder = CLIENTS[seeder_name].seed(ctx, torrent, ds.root)
            # Every seeder must be known to the tracker before the clock starts, so each
            # leecher gets it in its first announce reply.
            wait_seeding_on_tracker(ctx, torrent, seeder.proc)
        rec["seeder_cache"] = data.cached_fraction(paths)
        rec["seeder_cache_state"] = "warm (read before the run)"
        s_cpu0 = seeder.proc.cpu_s()
        st = machine_state()
        rec["dirty_wb_at_clock_mib"] = round(st.get("dirty_mib", 0) + st.get("writeback_mib", 0), 1)
        for i in range(n_leechers):
            d = ctx.tmpdir(f"leech{i}")
            dirs.append(d)
            if magnet:
                leechers.append(CLIENTS[leecher_name].leech_magnet(ctx, uri, d))
            else:
                leechers.append(CLIENTS[leecher_name].leech(ctx, torrent, d, keep_seeding))
        for h in leechers:
            h.wait_done(timeout)
        for h in leechers:
            h.check()
        if magnet:
            # Lines are timestamped as the harness reads them (bench/lib/proc.py); both came
            # before `complete:`, so they are already in.
            h = leechers[0]
            t_meta, _ = h.proc.wait_line(r"^metadata received: ", 1)
            t_piece, _ = h.proc.wait_line(r"^first piece verified", 1)
            rec["t_metadata_s"] = round(t_meta - h.t0, 3)
            rec["t_first_piece_s"] = round(t_piece - h.t0, 3)
        s_cpu = seeder.proc.cpu_s() - s_cpu0
        t0 = min(h.t0 for h in leechers)
        t_last = max(h.t_done for h in leechers)
        wall = t_last - t0
        rec.update({
            "wall_s": round(wall, 3),
            "mb_s": round(ds.size / 1e6 / wall, 1),
            "leecher_cpu_s": round(sum(h.cpu_done for h in leechers) / n_leechers, 3),
            "seeder_cpu_s": round(s_cpu, 3),
            "done_by": leechers[0].done_by,
        })
        if n_leechers > 1:
            rec["leecher_walls_s"] = [round(h.t_done - h.t0, 3) for h in leechers]
            rec["leecher_cpu_total_s"] = round(sum(h.cpu_done for h in leechers), 3)
        rel = [os.path.relpath(p, ds.root) for p in paths]
        rec["verified"] = all(data.same_content(paths, [os.path.join(d, r) for r in rel])
                              for d in dirs)
        if not rec["verified"]:
            raise RuntimeError("downloaded data differs from the seeder's")
        rec["ok"] = True
    except Exception as e:  # noqa: BLE001 - one failed run must not stop the session
        rec["error"] = f"{type(e).__name__}: {e}"[:500]
        sess.cfg.failed_logs = True
    finally:
        lmem = [h.proc.mem() for h in leechers]
        for h in leechers:
            h.stop()
        if seeder is not None:
            extra = seeder.stop()
            rec.update(mem_of(seeder, "seeder"))
            if "uploaded" in extra:
                rec["seeder_uploaded"] = extra["uploaded"]
                rec["seeder_uploaded_x"] = round(extra["uploaded"] / ds.size, 2)
        if lmem:
            rec["leecher_peak_rss_mib"] = max(m["peak_rss_mib"] for m in lmem)
            rec["leecher_peak_anon_mib"] = max(m["peak_anon_mib"] for m in lmem)
        if tracker is not None:
            tracker.stop()
        if (ds.files or 1) > 1:
            # Deleting thousands of files right before the next run makes ext4 scan its
            # recently deleted inodes on every create (recently_deleted() in a kernel
            # profile): file creation then costs 5-10x more, growing run after run. That
            # measures the harness, not the client, so many-file downloads are deleted
            # once, after the scenario (see round_robin).
            sess.trash.extend(dirs)
        else:
            for d in dirs:
                shutil.rmtree(d, ignore_errors=True)
        os.sync()
    return rec


def round_robin(sess, scenario, pairs, ds, **kw):
    """Runs 1..N of every pair interleaved (Shoal, reference, ..., Shoal, reference, ...), so
    load changes hit every client alike. Round r starts (r-1) places further along the list,
    so every client takes every position in a round in turn (no client always runs first,
    or always right after the same other client) and no client runs twice in a row. With
    two pairs a rotation would run one of them twice in a row at every round's end, so the
    order stays A, B, A, B."""
    n = sess.runs(scenario)
    for run in range(1, n + 1):
        k = (run - 1) % len(pairs) if len(pairs) >= 3 else 0
        for s, l in pairs[k:] + pairs[:k]:
            print(f"[{scenario}] {s}->{l} run {run}/{n}", flush=True)
            sess.emit(transfer(sess, scenario, ds, s, l, run, **kw))
    for d in sess.trash:
        shutil.rmtree(d, ignore_errors=True)
    sess.trash = []
    os.sync()


def s1_single(sess):
    cfg = sess.cfg
    size = sess.size(16 * MiB if cfg.quick else GiB)
    ds = data.DataSet(cfg.cache, "single", "file", size=size).ensure()
    names = usable(sess, "single", ["shoal", "qbittorrent", "libtorrent", "rqbit", "aria2"])
    round_robin(sess, "single", [(n, n) for n in names], ds)


def s2_tree(sess):
    cfg = sess.cfg
    files = 40 if cfg.quick else 1000
    ds = data.DataSet(cfg.cache, "tree", "tree", files=files, file_size=64 * 1024).ensure()
    names = usable(sess, "tree", ["shoal", "qbittorrent", "libtorrent", "rqbit", "aria2"])
    round_robin(sess, "tree", [(n, n) for n in names], ds)


def s3_crowd(sess):
    cfg = sess.cfg
    size = 8 * MiB if cfg.quick else 256 * MiB
    n = 3 if cfg.quick else 8
    ds = data.DataSet(cfg.cache, "crowd", "file", size=size).ensure()
    names = usable(sess, "crowd", ["shoal", "libtorrent"])
    round_robin(sess, "crowd", [(c, c) for c in names], ds, n_leechers=n, keep_seeding=True)


def s4_mixed(sess):
    cfg = sess.cfg
    ds = data.DataSet(cfg.cache, "single", "file",
                      size=sess.size(16 * MiB if cfg.quick else GiB)).ensure()
    others = usable(sess, "mixed", ["qbittorrent", "libtorrent"])
    pairs = [(o, "shoal") for o in others] + [("shoal", o) for o in others]
    round_robin(sess, "mixed", pairs, ds)


def s_magnet(sess):
    """A bare magnet link to the first verified piece and to done: the 1 GiB file of
    `single` (--size-mib N: N MiB), metadata (BEP 9) from the one seeder named by the
    link's x.pe, no tracker. Shoal -> Shoal and libtorrent -> libtorrent, interleaved."""
    cfg = sess.cfg
    ds = data.DataSet(cfg.cache, "single", "file",
                      size=sess.size(16 * MiB if cfg.quick else GiB)).ensure()
    names = usable(sess, "magnet", ["shoal", "libtorrent"])
    round_robin(sess, "magnet", [(n, n) for n in names], ds, magnet=True)


def s_repeat(sess):
    """20 back-to-back `shoal seed` -> `shoal download` transfers of 512 MiB (the same
    transfer() as S1: fresh tracker and seeder each time, warm seeder data, sync between
    runs). The summary gives every run, min/median/max and whether the slowest run is
    within 1.5x of the fastest: a stability check, not a comparison."""
    cfg = sess.cfg
    size = sess.size(8 * MiB if cfg.quick else 512 * MiB)
    ds = data.DataSet(cfg.cache, "repeat", "file", size=size).ensure()
    if not usable(sess, "repeat", ["shoal"]):
        return
    round_robin(sess, "repeat", [("shoal", "shoal")], ds)


def s_mse(sess):
    """The single-file transfer of S1 (1 GiB, or --size-mib) with Shoal plaintext and Shoal
    with `--encryption require` at both ends (RC4 on every byte), runs interleaved. The
    summary gives the RC4 / plaintext ratio; the target is RC4 at most 15% slower."""
    cfg = sess.cfg
    size = sess.size(16 * MiB if cfg.quick else GiB)
    ds = data.DataSet(cfg.cache, "single", "file", size=size).ensure()
    # The RC4 variant is Shoal too: it runs whenever Shoal does.
    if usable(sess, "mse", ["shoal"]):
        round_robin(sess, "mse", [("shoal", "shoal"), ("shoal-rc4", "shoal-rc4")], ds)


def s_utp(sess):
    """The single-file transfer of S1 (1 GiB, or --size-mib) over TCP and over uTP: Shoal
    with `--utp false` (`shoal`, TCP), Shoal on its defaults at both ends (`shoal-utp`: uTP
    dialled first; the leecher's `downloaded over:` line must show uTP) and libtorrent
    with TCP off at both ends (`libtorrent-utp`), runs interleaved. Targets: Shoal over uTP
    at least 50% of Shoal over TCP (median and slowest run), and no slower than
    libtorrent over uTP (median)."""
    cfg = sess.cfg
    size = sess.size(16 * MiB if cfg.quick else GiB)
    ds = data.DataSet(cfg.cache, "single", "file", size=size).ensure()
    # The uTP variant is Shoal too: it runs whenever Shoal does.
    names = usable(sess, "utp", ["shoal", "libtorrent"])
    pairs = []
    if "shoal" in names:
        pairs += [("shoal", "shoal"), ("shoal-utp", "shoal-utp")]
    if "libtorrent" in names:
        pairs.append(("libtorrent-utp", "libtorrent-utp"))
    round_robin(sess, "utp", pairs, ds)


# --- scenario 5: trackers ------------------------------------------------------------------

def s5_tracker(sess):
    cfg = sess.cfg
    ctx = sess.ctx
    hashes = [data.hashlib.sha1(f"bench-torrent-{i}".encode()).hexdigest() for i in range(1000)]
    hfile = os.path.join(ctx.tmp, "hashes.txt")
    with open(hfile, "w") as f:
        f.write("".join(h + "\n" for h in hashes))
    trackers = ["shoal"] + ([] if cfg.quick else ["opentracker"])
    if shutil.which("wrk") is None:
        sess.skip("tracker-http", "*", "wrk not installed")
    else:
        for run in range(1, sess.runs("tracker") + 1):
            for kind in trackers:
                if kind == "opentracker" and not OpenTracker.available():
                    if run == 1:
                        sess.skip("tracker-http", "opentracker", "opentracker not installed")
                    continue
                for mode in ("close", "keepalive"):
                    print(f"[tracker-http] {kind} {mode} run {run}", flush=True)
                    sess.emit(http_bench(sess, kind, mode, hashes, hfile, run))
    udp_bench_all(sess, hashes)


def _start_tracker(sess, kind, port, hashes):
    if kind == "opentracker":
        return OpenTracker(sess.ctx, port, hashes)
    return ShoalTracker(sess.ctx, port)


def http_bench(sess, kind, mode, hashes, hfile, run):
    cfg = sess.cfg
    rec = {"scenario": "tracker-http", "client": kind, "mode": mode, "run": run, "ok": False,
           "error": None, "torrents": len(hashes), "state": machine_state()}
    port = free_port()
    t = None
    try:
        t = _start_tracker(sess, kind, port, hashes)
        # One real announce: a whitelisted hash must get a reply without a failure reason.
        q = urllib.parse.quote(bytes.fromhex(hashes[0]), safe="")
        _, body = http("GET", f"http://127.0.0.1:{port}/announce?info_hash={q}"
                       "&peer_id=-BE0001-abcdefghijkl&port=7000&uploaded=0&downloaded=0"
                       "&left=5&compact=1")
        if b"failure" in body:
            raise RuntimeError(f"tracker refused a sane announce: {body[:200]!r}")
        dur = 2 if cfg.quick else 10
        conns = 32

        def user_sys():  # the tracker's own threads, user and kernel CPU seconds
            with open(f"/proc/{t.proc.pid}/stat") as f:
                st = f.read()
            fields = st[st.rindex(")") + 2:].split()
            tick = os.sysconf("SC_CLK_TCK")
            return int(fields[11]) / tick, int(fields[12]) / tick

        cpu0 = t.proc.cpu_s()
        us0 = user_sys()
        # wrk's CPU too (it is the only child reaped during the run): it shares the two
        # cores with the tracker, so it bounds the announces/s ratio (README, scenario 5).
        wrk0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{dur}s", "--latency", "-s",
                              os.path.join(cfg.bench, "drivers", "announce.lua"),
                              f"http://127.0.0.1:{port}/announce", "--", hfile, mode],
                             capture_output=True, text=True, timeout=dur + 30)
        wrk1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = t.proc.cpu_s() - cpu0
        us1 = user_sys()
        text = out.stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
        n = rps * dur
        wrk_cpu = (wrk1.ru_utime - wrk0.ru_utime) + (wrk1.ru_stime - wrk0.ru_stime)
        if n > 0:
            rec.update({"wrk_cpu_s": round(wrk_cpu, 2),
                        "wrk_us_per_req": round(1e6 * wrk_cpu / n, 1),
                        "tracker_user_us_per_req": round(1e6 * (us1[0] - us0[0]) / n, 1),
                        "tracker_sys_us_per_req": round(1e6 * (us1[1] - us0[1]) / n, 1)})
        m = re.search(r"bench: failures=(\d+) ok=(\d+)", text)
        fails, oks = (int(m.group(1)), int(m.group(2))) if m else (None, None)
        errs = re.search(r"Socket errors: (.*)", text)
        lat = re.search(r"Latency\s+([\d.]+\w+)", text)
        rec.update({"req_s": round(rps), "duration_s": dur, "connections": conns,
                    "wrk_threads": 2, "tracker_cpu_s": round(cpu, 2),
                    "req_per_cpu_s": round(rps * dur / cpu) if cpu > 0 else None,
                    "failures": fails, "answered": oks,
                    "socket_errors": errs.group(1).strip() if errs else None,
                    "latency_avg": lat.group(1) if lat else None})
        rec.update(mem_of(t, "tracker"))
        rec["ok"] = bool(oks) and (fails or 0) < 0.01 * (oks + (fails or 0))
        if not rec["ok"]:
            rec["error"] = f"{fails} failed answers of {fails + oks}" if m else "no wrk summary"
    except Exception as e:  # noqa: BLE001
        rec["error"] = f"{type(e).__name__}: {e}"[:500]
    finally:
        if t is not None:
            t.stop()
    return rec


def udp_bench_all(sess, hashes):
    from udp import udp_bench, aquatic_bins
    cfg = sess.cfg
    load_bin, server_bin, why = aquatic_bins(cfg)
    if load_bin is None:
        sess.skip("tracker-udp", "*", why)
        return
    kinds = ["shoal"] + ([] if cfg.quick or server_bin is None else ["aquatic_udp"])
    if server_bin is None and not cfg.quick:
        sess.skip("tracker-udp", "aquatic_udp", why)
    for run in range(1, sess.runs("tracker") + 1):
        for kind in kinds:
            print(f"[tracker-udp] {kind} run {run}", flush=True)
            sess.emit(udp_bench(sess, kind, run, load_bin, server_bin))


# --- scenario 6: one node with many torrents -------------------------------------------------

def api(base, method, path, obj=None):
    body = json.dumps(obj).encode() if obj is not None else None
    _, out = http(method, base + path, body, {"Content-Type": "application/json"} if body else {},
                  timeout=30)
    return json.loads(out) if out else None


def start_node(sess, data_dir, dl_dir, web_port, tracker_url, tag, share_root):
    argv = [sess.ctx.shoal, "up", "--data-dir", data_dir, "--port", "0",
            "--web", f"127.0.0.1:{web_port}", "--tracker", tracker_url, "--download-dir", dl_dir]
    helptext = subprocess.run([sess.ctx.shoal, "up", "--help"], capture_output=True,
                              text=True).stdout
    if "--share-root" in helptext:  # the API shares only from its share roots
        argv += ["--share-root", share_root]
    p = Proc(argv, name=f"shoal-up-{tag}",
             log_path=sess.ctx.log(f"shoal-up-{tag}"))
    return p


def wait_all_seeding(base, n, timeout, proc):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"node exited {proc.exit_code}: {proc.tail()}")
        try:
            ts = api(base, "GET", "/api/torrents")
            seeding = sum(1 for t in ts if t["state"] == "seeding")
            last = (len(ts), seeding)
            if len(ts) >= n and seeding >= n:
                return time.monotonic()
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"not all {n} torrents seeding after {timeout}s (torrents, seeding) = {last}")


def s6_node(sess):
    cfg = sess.cfg
    n = 20 if cfg.quick else 1000
    ds = data.DataSet(cfg.cache, "node", "tree", files=n, file_size=16 * 1024).ensure()
    for run in range(1, sess.runs("node") + 1):
        print(f"[node] shoal run {run}", flush=True)
        node_run(sess, ds, n, run)


def node_run(sess, ds, n, run):
    cfg = sess.cfg
    ctx = sess.ctx
    idle = 3 if cfg.quick else 60
    rec = {"scenario": "node", "client": "shoal", "run": run, "torrents": n, "ok": False,
           "error": None, "idle_window_s": idle, "state": machine_state()}
    tracker = node = None
    tport = free_port()
    try:
        tracker = ShoalTracker(ctx, tport)
        data_dir = ctx.tmpdir("node-data")
        dl_dir = ctx.tmpdir("node-dl")
        web = free_port()
        base = f"http://127.0.0.1:{web}"
        node = start_node(sess, data_dir, dl_dir, web, tracker.url, "first", ds.root)
        wait_port(web, 30, node)
        t0 = time.monotonic()
        for p in ds.file_paths():
            api(base, "POST", "/api/share", {"path": p})
        wait_all_seeding(base, n, 600, node)
        rec["share_all_s"] = round(time.monotonic() - t0, 2)
        rec["first_run_rss_mib"] = node.mem()["peak_rss_mib"]
        node.stop(30)
        # Restart: time from spawn until every torrent is seeding again.
        node = start_node(sess, data_dir, dl_dir, web, tracker.url, "restart", ds.root)
        t0 = node.t_start
        wait_port(web, 60, node)
        rec["api_up_s"] = round(time.monotonic() - t0, 3)
        t_all = wait_all_seeding(base, n, 300, node)
        rec["startup_all_active_s"] = round(t_all - t0, 3)
        rec["startup_cpu_s"] = round(node.cpu_s(), 2)
        time.sleep(2)  # let start-up announces settle before the idle window
        c0 = node.cpu_s()
        time.sleep(idle)
        c1 = node.cpu_s()
        rec["idle_cpu_pct"] = round((c1 - c0) / idle * 100, 2)
        from proc import read_status
        st = read_status(node.pid) or {}
        rec["rss_mib"] = round(st.get("VmRSS", 0) / 1024, 1)
        rec["anon_mib"] = round(st.get("RssAnon", 0) / 1024, 1)
        rec.update(mem_of(node, "node"))
        rec["ok"] = True
    except Exception as e:  # noqa: BLE001
        rec["error"] = f"{type(e).__name__}: {e}"[:500]
    finally:
        if node is not None:
            node.stop(30)
        if tracker is not None:
            tracker.stop()
    sess.emit(rec)


def openssl_sha1(seconds):
    try:
        out = subprocess.run(["openssl", "speed", "-evp", "sha1", "-bytes", "262144", "-seconds",
                              str(seconds)], capture_output=True, text=True, timeout=60).stdout
        m = re.search(r"^sha1\s+([\d.]+)k", out, re.M)
        return round(float(m.group(1)) * 1000 / 1e6, 1) if m else None
    except (OSError, subprocess.SubprocessError):
        return None


def hashing(sess):
    cfg = sess.cfg
    ctx = sess.ctx
    size = 16 * MiB if cfg.quick else GiB
    ds = data.DataSet(cfg.cache, "single", "file", size=size).ensure()
    sha = openssl_sha1(1 if cfg.quick else 3)
    for run in range(1, sess.runs("hash") + 1):
        for cores, prefix in (("1", ["taskset", "-c", "0"]), ("all", [])):
            if prefix and shutil.which("taskset") is None:
                continue
            data.warm(ds.file_paths())
            state = machine_state()
            out = os.path.join(ctx.tmp, f"hash-{run}-{cores}.torrent")
            p = Proc(prefix + [ctx.shoal, "create", ds.path, "--tracker", ctx.tracker_url,
                               "--piece-size", str(256 * 1024), "-o", out], name="shoal-create",
                     log_path=ctx.log("shoal-create"))
            code = p.wait_exit(600)
            wall = p.t_exit - p.t_start
            rec = {"scenario": "hash", "client": "shoal", "cores": cores, "run": run,
                   "bytes": size, "ok": code == 0, "error": None if code == 0 else
                   f"exit {code}: {p.tail()}", "wall_s": round(wall, 3),
                   "mb_s": round(size / 1e6 / wall, 1), "cpu_s": round(p.cpu_s(), 3),
                   "openssl_sha1_mb_s": sha, "state": state}
            rec.update(mem_of(p, "create"))
            if sha:
                rec["vs_openssl"] = round(rec["mb_s"] / sha, 2)
            sess.emit(rec)


SCENARIOS = {
    "single": s1_single, "tree": s2_tree, "crowd": s3_crowd, "mixed": s4_mixed,
    "tracker": s5_tracker, "node": s6_node, "hash": hashing, "repeat": s_repeat,
    "magnet": s_magnet,
    "mse": s_mse,
    "utp": s_utp,
    "stream": s_stream,
}
ALIASES = {"1": ["single"], "2": ["tree"], "3": ["crowd"], "4": ["mixed"], "5": ["tracker"],
           "6": ["node", "hash"], "s1": ["single"], "s2": ["tree"], "s3": ["crowd"],
           "s4": ["mixed"], "s5": ["tracker"], "s6": ["node", "hash"]}
