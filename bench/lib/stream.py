"""Scenario `stream`: time to the first byte of a Range in the middle of a file while the
torrent downloads (issue "Play while downloading"), Shoal against rqbit in the same run.

One seeder holds the 1 GiB file of `single` and is known to a fresh loopback tracker
before the clock starts: libtorrent (`drivers/lt_driver.py seed`, a neutral third party),
once TCP only (the harness's convention) and once with uTP too (`--utp`, libtorrent's
default transports); Shoal's own `shoal seed` in --quick runs, which have no reference
clients. Each downloader is a daemon with an HTTP API, started and listening before the
clock:
- shoal: `shoal up --no-tracker` (the torrent's own tracker only; DHT and LSD are off by
  default), torrent added with `POST /api/torrents` (raw .torrent), stream
  `GET /api/torrents/:id/files/0/stream`; shoal-tcp: the same with `--utp false`;
- rqbit: `rqbit server start --disable-persistence` with DHT, LSD and UPnP off, torrent added
  with `POST /torrents?overwrite=true&output_folder=D` (raw .torrent), stream
  `GET /torrents/:id/stream/0`.
Both learn the seeder from the same tracker (its first announce reply). The clock starts
just before the add call; right after the add answers, the harness sends
`Range: bytes=M-(M+64KiB-1)` with M the middle of the file, and records the time to the
response headers, to the first body byte and to the full 64 KiB, then checks the bytes
against the source. The rest of the torrent keeps downloading in the background (each
client's own order) until the run ends; the downloader is then stopped and its files
deleted.
"""

import http.client as httpc
import json
import os
import shutil
import time
import urllib.parse

import data
from clients import BENCH, CLIENTS, SYS_PY, Handle, http, wait_port, wait_seeding_on_tracker
from proc import Proc, free_port, machine_state

GiB = 1 << 30
MiB = 1 << 20
RANGE = 64 * 1024


class ShoalNode:
    """`shoal up` as the downloader: a daemon whose API adds the torrent and streams it."""

    name = "shoal"
    # Extra `shoal up` flags (the TCP-only variant adds `--utp false`).
    flags = []

    def available(self):
        return True, ""

    def start(self, ctx, dl_dir):
        self.web = free_port()
        argv = [ctx.shoal, "up", "--data-dir", ctx.tmpdir("stream-node-data"), "--port", "0",
                "--web", f"127.0.0.1:{self.web}", "--no-tracker", "--download-dir", dl_dir]
        argv += self.flags
        self.proc = Proc(argv, name="shoal-up-stream", log_path=ctx.log("shoal-up-stream"))
        wait_port(self.web, 60, self.proc)

    def add(self, torrent_bytes, dl_dir):
        """Adds the torrent; returns the stream path of its file 0."""
        _, body = http("POST", f"http://127.0.0.1:{self.web}/api/torrents", torrent_bytes,
                       {"Content-Type": "application/x-bittorrent"}, timeout=60)
        tid = json.loads(body)["id"]
        return f"/api/torrents/{tid}/files/0/stream"

    def stop(self):
        self.proc.stop(30)


class ShoalNodeTcp(ShoalNode):
    """`shoal up --utp false`: dials TCP at once, as rqbit (TCP only by default) does; it
    shows what the rest of the path costs without the uTP-first dial."""

    name = "shoal-tcp"
    flags = ["--utp", "false"]


class RqbitServer:
    """`rqbit server start` as the downloader, its HTTP API on loopback."""

    name = "rqbit"

    def available(self):
        return CLIENTS["rqbit"].available()

    def start(self, ctx, dl_dir):
        self.web = free_port()
        port = free_port()
        # Global flags before the subcommand; --announce-port must match the listen port
        # (rqbit 9.1 announces 4240 otherwise). No state kept between runs.
        argv = [CLIENTS["rqbit"].bin(), "-v", "warn", "--disable-dht", "--disable-dht-persistence",
                "--disable-lsd", "--disable-upnp-port-forward", "--listen-ip", "127.0.0.1",
                "--listen-port", str(port), "--announce-port", str(port),
                "--http-api-listen-addr", f"127.0.0.1:{self.web}",
                "server", "start", "--disable-persistence", dl_dir]
        self.proc = Proc(argv, name="rqbit-server", log_path=ctx.log("rqbit-server"),
                         merge_stderr=True)
        wait_port(self.web, 60, self.proc)

    def add(self, torrent_bytes, dl_dir):
        q = urllib.parse.urlencode({"overwrite": "true", "output_folder": dl_dir})
        _, body = http("POST", f"http://127.0.0.1:{self.web}/torrents?{q}", torrent_bytes,
                       {"Content-Type": "application/x-bittorrent"}, timeout=60)
        tid = json.loads(body)["id"]
        return f"/torrents/{tid}/stream/0"

    def stop(self):
        self.proc.stop(30)


DOWNLOADERS = {"shoal": ShoalNode, "shoal-tcp": ShoalNodeTcp, "rqbit": RqbitServer}


def read_range(port, path, start, length, t0, timeout=120):
    """GET PATH with `Range: bytes=START-(START+LENGTH-1)`; returns (times from T0 to the
    headers, the first body byte and the last, the body)."""
    conn = httpc.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Range": f"bytes={start}-{start + length - 1}"})
        resp = conn.getresponse()
        t_head = time.monotonic() - t0
        if resp.status != 206:
            raise RuntimeError(f"stream answered {resp.status}: {resp.read(300)!r}")
        # read(1) returns as soon as the socket has a byte (the buffered reader does not
        # wait to fill its buffer).
        first = resp.read(1)
        t_first = time.monotonic() - t0
        if not first:
            raise RuntimeError("stream body ended before its first byte")
        parts = [first]
        got = 1
        while got < length:
            b = resp.read(length - got)
            if not b:
                raise RuntimeError(f"stream body ended after {got} of {length} bytes")
            parts.append(b)
            got += len(b)
        return t_head, t_first, time.monotonic() - t0, b"".join(parts)
    finally:
        conn.close()


def source_bytes(path, start, length):
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(length)


SEEDERS = {
    # The harness's convention: every client on TCP only (uTP on loopback measures uTP).
    "libtorrent": [],
    # libtorrent's default transports, TCP and uTP: what a seeder in the wild runs.
    "libtorrent-utp": ["--utp"],
}


def start_seeder(ctx, kind, torrent, root):
    """The seeder of one run, ready (data checked) when this returns."""
    if kind == "shoal":
        return CLIENTS["shoal"].seed(ctx, torrent, root)
    argv = [SYS_PY, os.path.join(BENCH, "drivers", "lt_driver.py"), "seed", torrent, root]
    p = Proc(argv + SEEDERS[kind], name=f"{kind}-seed", log_path=ctx.log(f"{kind}-seed"))
    p.wait_line(r"^seeding ", 300)
    return Handle(p)


def stream_run(sess, ds, seeder_kind, client, run):
    """One run: fresh tracker, seeder and downloader; returns the result record."""
    ctx = sess.ctx
    torrent = sess.torrent(ds)
    with open(torrent, "rb") as f:
        tbytes = f.read()
    mid = ds.size // 2
    length = min(RANGE, ds.size - mid)
    rec = {"scenario": "stream", "client": client, "seeder": seeder_kind, "run": run,
           "bytes": ds.size, "range_start": mid, "range_len": length,
           "tracker": sess.tracker_kind, "ok": False, "error": None}
    os.sync()
    rec["state"] = machine_state()
    tracker = seeder = dl = None
    dl_dir = ctx.tmpdir("stream-dl")
    try:
        tracker = sess.start_tracker()
        paths = ds.file_paths()
        data.warm(paths)
        seeder = start_seeder(ctx, seeder_kind, torrent, ds.root)
        wait_seeding_on_tracker(ctx, torrent, seeder.proc)
        rec["seeder_cache"] = data.cached_fraction(paths)
        dl = DOWNLOADERS[client]()
        dl.start(ctx, dl_dir)
        # Let the daemon finish starting (its first ticks) before the clock, as for
        # qBittorrent in `single`.
        time.sleep(0.3)
        st = machine_state()
        rec["load1_at_clock"] = st["load"][0] if st.get("load") else None
        t0 = time.monotonic()
        path = dl.add(tbytes, dl_dir)
        rec["t_added_s"] = round(time.monotonic() - t0, 4)
        t_head, t_first, t_full, body = read_range(dl.web, path, mid, length, t0)
        rec.update({"t_headers_s": round(t_head, 4), "t_first_byte_s": round(t_first, 4),
                    "t_range_s": round(t_full, 4)})
        rec["verified"] = body == source_bytes(paths[0], mid, length)
        if not rec["verified"]:
            raise RuntimeError("streamed bytes differ from the source")
        rec["ok"] = True
    except Exception as e:  # noqa: BLE001 - one failed run must not stop the session
        rec["error"] = f"{type(e).__name__}: {e}"[:500]
        sess.cfg.failed_logs = True
    finally:
        if dl is not None and hasattr(dl, "proc"):
            rec["downloader_peak_anon_mib"] = dl.proc.mem()["peak_anon_mib"]
            dl.stop()
        if seeder is not None:
            seeder.stop()
        if tracker is not None:
            tracker.stop()
        shutil.rmtree(dl_dir, ignore_errors=True)
        os.sync()
    return rec


def s_stream(sess):
    """Time to the first byte of 64 KiB in the middle of the 1 GiB file of `single`
    (--size-mib N: N MiB; --quick: 16 MiB, a Shoal seeder and the Shoal node only) while
    downloading from one seeder. Per round, each seeder kind (libtorrent TCP only, then
    libtorrent with uTP too) serves each downloader in turn; the downloaders' order
    rotates by one place every round, so none always runs first."""
    cfg = sess.cfg
    ds = data.DataSet(cfg.cache, "single", "file",
                      size=sess.size(16 * MiB if cfg.quick else GiB)).ensure()
    # Quick runs (CI: no reference clients) seed with Shoal.
    seeders = ["shoal"] if cfg.quick else list(SEEDERS)
    ok, why = CLIENTS["shoal" if cfg.quick else "libtorrent"].available()
    if not ok:
        sess.skip("stream", "*", f"seeder: {why}")
        return
    names = []
    for n in DOWNLOADERS:
        if cfg.clients and n not in cfg.clients:
            continue
        ok, why = DOWNLOADERS[n]().available()
        if ok:
            names.append(n)
        else:
            sess.skip("stream", n, why)
    n = sess.runs("stream")
    for run in range(1, n + 1):
        k = (run - 1) % len(names) if names else 0
        for seeder in seeders:
            for c in names[k:] + names[:k]:
                print(f"[stream] {seeder} -> {c} run {run}/{n}", flush=True)
                sess.emit(stream_run(sess, ds, seeder, c, run))
