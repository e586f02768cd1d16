"""Drivers for the clients and trackers bench/run measures.

Every client offers `seed(ctx, torrent, data_root)` and `leech(ctx, torrent, save_dir,
keep_seeding)`, both returning a `Handle` whose `proc` is a measured `Proc`. A seeder
handle is ready when `seed` returns. `leech` returns at once; `Handle.wait_done`
returns the monotonic time when every piece was verified (a completion line, the
process exit, or the client's API, per client; `Handle.done_by` says which).
`Handle.t0` is when the download was started (process spawn, or the add call for a
daemon client), and `Handle.cpu0` the client's CPU seconds at that moment.
"""

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from proc import Proc, free_port

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYS_PY = "/usr/bin/python3"


class Ctx:
    """What drivers share in one bench session."""

    def __init__(self, shoal, tmp, logs, tracker_url):
        self.shoal = shoal
        self.tmp = tmp
        self.logs = logs
        self.tracker_url = tracker_url
        self.seq = 0

    def log(self, what):
        self.seq += 1
        return os.path.join(self.logs, f"{self.seq:04d}-{what}.log")

    def tmpdir(self, what):
        d = os.path.join(self.tmp, f"{what}-{uuid.uuid4().hex[:8]}")
        os.makedirs(d)
        return d


class Handle:
    def __init__(self, proc, t0=None, cpu0=0.0, done_pattern=None, done_by="line"):
        self.proc = proc
        self.t0 = t0 if t0 is not None else proc.t_start
        self.cpu0 = cpu0
        self.done_pattern = done_pattern
        self.done_by = done_by
        self.t_done = None
        self.cpu_done = None
        self.cleanup = []
        # Run once the download is done; raises when the run must not count (scenario
        # `utp`: the transfer did not go over uTP).
        self.check = lambda: None

    def wait_done(self, timeout):
        if self.done_by == "exit":
            code = self.proc.wait_exit(timeout)
            if code != 0:
                raise RuntimeError(f"{self.proc.name} exited {code}: {self.proc.tail()}")
            self.t_done = self.proc.t_exit
        else:
            self.t_done, _ = self.proc.wait_line(self.done_pattern, timeout)
        self.cpu_done = self.cpu()
        return self.t_done

    def cpu(self):
        return self.proc.cpu_s() - self.cpu0

    def stop(self):
        """Stop the client; returns extra figures (e.g. uploaded bytes) if it reports them."""
        extra = {}
        self.proc.stop()
        for _, line in self.proc.lines:
            m = re.match(r"uploaded: (\d+)", line)
            if m:
                extra["uploaded"] = int(m.group(1))
        for fn in self.cleanup:
            fn()
        return extra


def wait_port(port, timeout, proc=None):
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited ({proc.exit_code}): {proc.tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"port {port} not listening after {timeout}s")


def http(method, url, body=None, headers=None, timeout=10):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        detail = e.read()[:300].decode("utf-8", "replace")
        raise RuntimeError(f"{method} {url.split('?')[0]}: HTTP {e.code}: {detail}") from None


_IH = {}


def info_hash(ctx, torrent):
    if torrent not in _IH:
        out = subprocess.run([ctx.shoal, "info", torrent], capture_output=True, text=True,
                             check=True)
        _IH[torrent] = re.search(r"info hash: ([0-9a-f]{40})", out.stdout).group(1)
    return _IH[torrent]


def scrape_complete(tracker_url, ih_hex):
    url = tracker_url.replace("/announce", "/scrape") + "?info_hash=" + urllib.parse.quote(
        bytes.fromhex(ih_hex), safe="")
    try:
        _, body = http("GET", url, timeout=2)
    except (OSError, urllib.error.URLError):
        return 0
    m = re.search(rb"8:completei(\d+)e", body)
    return int(m.group(1)) if m else 0


def wait_seeding_on_tracker(ctx, torrent, proc, timeout=120):
    """Readiness for clients without a ready line: the tracker lists a complete peer."""
    ih = info_hash(ctx, torrent)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited ({proc.exit_code}) while starting: {proc.tail()}")
        if scrape_complete(ctx.tracker_url, ih) >= 1:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{proc.name}: not seeding on the tracker after {timeout}s")


# --- trackers ----------------------------------------------------------------------------

class ShoalTracker:
    name = "shoal"

    def __init__(self, ctx, port, hashes=None):
        self.proc = Proc([ctx.shoal, "tracker", "--bind", f"127.0.0.1:{port}"],
                         name="shoal-tracker", log_path=ctx.log("shoal-tracker"))
        self.proc.wait_line(r"^tracker: ", 20)
        self.url = f"http://127.0.0.1:{port}/announce"
        self.udp = ("127.0.0.1", port)

    def stop(self):
        self.proc.stop()


class OpenTracker:
    name = "opentracker"

    @staticmethod
    def available():
        return shutil.which("opentracker") is not None

    def __init__(self, ctx, port, hashes):
        d = ctx.tmpdir("opentracker")
        os.chmod(d, 0o755)
        with open(os.path.join(d, "whitelist.txt"), "w") as f:
            f.write("".join(h + "\n" for h in hashes))
        os.chmod(os.path.join(d, "whitelist.txt"), 0o644)
        # Debian's build is whitelist-only; -d chroots there, so the list is named relative.
        self.proc = Proc(["opentracker", "-i", "127.0.0.1", "-p", str(port), "-P", str(port),
                          "-d", d, "-w", "whitelist.txt"], name="opentracker",
                         log_path=ctx.log("opentracker"))
        wait_port(port, 10, self.proc)
        self.url = f"http://127.0.0.1:{port}/announce"
        self.udp = ("127.0.0.1", port)
        if hashes:  # the whitelist is loaded by a thread: wait until it answers for the
            # first and the last hash of the list (a run failed when only the first was in)
            deadline = time.monotonic() + 20
            pending = list(dict.fromkeys([hashes[0], hashes[-1]]))
            while pending and time.monotonic() < deadline:
                q = urllib.parse.quote(bytes.fromhex(pending[0]), safe="")
                _, body = http("GET", f"{self.url}?info_hash={q}&peer_id=-BE0000-000000000000"
                               "&port=1&uploaded=0&downloaded=0&left=1&event=stopped&compact=1")
                if b"failure" in body:
                    time.sleep(0.05)
                else:
                    pending.pop(0)
            if pending:
                raise RuntimeError("opentracker did not load its whitelist within 20 s")

    def stop(self):
        self.proc.stop()


# --- clients -----------------------------------------------------------------------------

class Shoal:
    name = "shoal"
    # Extra flags of both ends. TCP only, as every client of the transfer scenarios runs
    # (libtorrent and qBittorrent have uTP off too): Shoal's default dials uTP first, and
    # two Shoal ends on loopback would then measure uTP, not the client. uTP has its own
    # scenario. The MSE variant adds `--encryption require`.
    flags = ["--utp", "false"]

    def available(self):
        return True, ""

    def version(self, ctx):
        return subprocess.run([ctx.shoal, "--version"], capture_output=True,
                              text=True).stdout.strip()

    def seed(self, ctx, torrent, data_root, serve_metadata=False):
        # Shoal always serves metadata (ut_metadata); serve_metadata changes nothing.
        p = Proc([ctx.shoal, "seed", torrent, "--dir", data_root, "--port", "0",
                  "--bind-ip", "127.0.0.1"] + self.flags, name=f"{self.name}-seed",
                 log_path=ctx.log(f"{self.name}-seed"))
        p.wait_line(r"^seeding ", 300)
        return Handle(p)

    def leech(self, ctx, torrent, save_dir, keep_seeding=False):
        argv = [ctx.shoal, "download", torrent, "--dir", save_dir, "--port", "0",
                "--bind-ip", "127.0.0.1", "--stall-timeout", "60"] + self.flags
        if keep_seeding:
            argv.append("--seed")
        p = Proc(argv, name=f"{self.name}-leech", log_path=ctx.log(f"{self.name}-leech"))
        return Handle(p, done_pattern=r"^complete: ")

    def leech_magnet(self, ctx, magnet, save_dir):
        """Download from a bare magnet link (its x.pe names the seeder): prints `metadata
        received: NAME`, `first piece verified`, `complete: NAME`."""
        p = Proc([ctx.shoal, "download", magnet, "--dir", save_dir, "--port", "0",
                  "--bind-ip", "127.0.0.1", "--stall-timeout", "60"] + self.flags,
                 name="shoal-magnet", log_path=ctx.log("shoal-magnet"))
        return Handle(p, done_pattern=r"^complete: ")


class ShoalRc4(Shoal):
    """Shoal with MSE required at both ends: every byte RC4-encrypted (scenario `mse`)."""
    name = "shoal-rc4"
    flags = Shoal.flags + ["--encryption", "require"]


class ShoalUtp(Shoal):
    """Shoal on its defaults at both ends (uTP dialled first, so the transfer runs on uTP;
    scenario `utp`). The leecher's `downloaded over: tcp N utp M` line must show at least
    99% of the payload over uTP, else the run fails."""
    name = "shoal-utp"
    flags = []

    def leech(self, ctx, torrent, save_dir, keep_seeding=False):
        h = super().leech(ctx, torrent, save_dir, keep_seeding)
        h.check = lambda: check_shoal_utp(h.proc)
        return h


def check_shoal_utp(proc):
    _, m = proc.wait_line(r"^downloaded over: tcp (\d+) utp (\d+)", 5)
    tcp, utp = int(m.group(1)), int(m.group(2))
    if utp == 0 or tcp > (tcp + utp) // 100:
        raise RuntimeError(f"shoal-utp: transfer not on uTP (tcp {tcp} bytes, utp {utp})")


class Libtorrent:
    name = "libtorrent"

    def available(self):
        ok = subprocess.run([SYS_PY, "-c", "import libtorrent"], capture_output=True).returncode == 0
        return ok, "" if ok else "python3-libtorrent not installed"

    def version(self, ctx):
        return "libtorrent " + subprocess.run(
            [SYS_PY, "-c", "import libtorrent; print(libtorrent.version)"],
            capture_output=True, text=True).stdout.strip()

    # Extra driver flags of both ends (`--utp-only` for libtorrent-utp).
    flags = []

    def _argv(self, mode, torrent, d, keep=False):
        argv = [SYS_PY, os.path.join(BENCH, "drivers", "lt_driver.py"), mode, torrent, d]
        return argv + (["--keep-seeding"] if keep else []) + self.flags

    def seed(self, ctx, torrent, data_root, serve_metadata=False):
        # serve_metadata: a session with libtorrent's default plugins (ut_metadata), so
        # magnet leechers can fetch the info dictionary from it (scenario `magnet`).
        argv = self._argv("seed", torrent, data_root) + (["--plugins"] if serve_metadata else [])
        p = Proc(argv, name="lt-seed", log_path=ctx.log("lt-seed"))
        p.wait_line(r"^seeding ", 300)
        return Handle(p)

    def leech_magnet(self, ctx, magnet, save_dir):
        """Bare magnet link; the driver dials the x.pe seeder (default plugins for BEP 9)."""
        peer = re.search(r"[?&]x\.pe=([^&]+)", magnet).group(1)
        p = Proc(self._argv("magnet", magnet, save_dir) + ["--peer", peer], name="lt-magnet",
                 log_path=ctx.log("lt-magnet"))
        return Handle(p, done_pattern=r"^complete: ")

    def leech(self, ctx, torrent, save_dir, keep_seeding=False):
        p = Proc(self._argv("leech", torrent, save_dir, keep_seeding), name="lt-leech",
                 log_path=ctx.log("lt-leech"))
        return Handle(p, done_pattern=r"^complete: ")


class LibtorrentUtp(Libtorrent):
    """libtorrent with TCP off and uTP on at both ends (scenario `utp`); the leecher must
    print `utp peer:` (a connected peer on a uTP socket), else the run fails."""
    name = "libtorrent-utp"
    flags = ["--utp-only"]

    def leech(self, ctx, torrent, save_dir, keep_seeding=False):
        h = super().leech(ctx, torrent, save_dir, keep_seeding)
        h.check = lambda: h.proc.wait_line(r"^utp peer: ", 1)
        return h


class Aria2:
    name = "aria2"
    COMMON = ["--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
              "--enable-peer-exchange=false", "--summary-interval=0", "--console-log-level=warn",
              "--show-console-readout=false", "--bt-stop-timeout=0", "--follow-torrent=false",
              "--no-conf=true", "--check-certificate=false"]

    def available(self):
        ok = shutil.which("aria2c") is not None
        return ok, "" if ok else "aria2c not installed"

    def version(self, ctx):
        return subprocess.run(["aria2c", "--version"], capture_output=True,
                              text=True).stdout.split("\n")[0]

    def seed(self, ctx, torrent, data_root):
        port = free_port()
        p = Proc(["aria2c", *self.COMMON, f"--listen-port={port}", "--check-integrity=true",
                  "--seed-ratio=0.0", "--bt-seed-unverified=false", "-d", data_root, torrent],
                 name="aria2-seed", log_path=ctx.log("aria2-seed"))
        wait_seeding_on_tracker(ctx, torrent, p)
        return Handle(p)

    def leech(self, ctx, torrent, save_dir, keep_seeding=False):
        port = free_port()
        argv = ["aria2c", *self.COMMON, f"--listen-port={port}", "-d", save_dir, torrent]
        argv += ["--seed-ratio=0.0"] if keep_seeding else ["--seed-time=0"]
        p = Proc(argv, name="aria2-leech", log_path=ctx.log("aria2-leech"))
        # No RPC: aria2 exits once the download is verified (--seed-time=0).
        return Handle(p, done_by="exit")


class Rqbit:
    name = "rqbit"

    def bin(self):
        return os.path.join(BENCH, "cache", "rqbit", "bin", "rqbit")

    def available(self):
        if os.access(self.bin(), os.X_OK):
            return True, ""
        failed = os.path.join(BENCH, "cache", "rqbit.failed")
        return False, ("cargo install rqbit failed (bench/cache/rqbit.failed)"
                       if os.path.exists(failed) else "rqbit not built (run bench/install)")

    def version(self, ctx):
        return subprocess.run([self.bin(), "--version"], capture_output=True,
                              text=True).stdout.strip()

    def _argv(self, port, mode_args):
        # Global flags before the subcommand; --announce-port must match the listen port
        # (rqbit 9.1 announces 4240 otherwise).
        return [self.bin(), "-v", "warn", "--disable-dht", "--disable-dht-persistence",
                "--disable-lsd", "--disable-upnp-port-forward", "--listen-ip", "127.0.0.1",
                "--listen-port", str(port), "--announce-port", str(port),
                "download", "--disable-http-api"] + mode_args

    def seed(self, ctx, torrent, data_root):
        # --overwrite: use the existing files (checked, then seeded until stopped).
        argv = self._argv(free_port(), ["--overwrite", "-o", data_root, torrent])
        p = Proc(argv, name="rqbit-seed", log_path=ctx.log("rqbit-seed"), merge_stderr=True)
        wait_seeding_on_tracker(ctx, torrent, p)
        return Handle(p)

    def leech(self, ctx, torrent, save_dir, keep_seeding=False):
        mode = ([] if keep_seeding else ["--exit-on-finish"]) + ["-o", save_dir, torrent]
        p = Proc(self._argv(free_port(), mode), name="rqbit-leech",
                 log_path=ctx.log("rqbit-leech"), merge_stderr=True)
        return Handle(p, done_by="exit")


class QBittorrent:
    """qbittorrent-nox in a temp profile; torrents added and polled through its Web API."""
    name = "qbittorrent"

    def available(self):
        ok = shutil.which("qbittorrent-nox") is not None
        return ok, "" if ok else "qbittorrent-nox not installed"

    def version(self, ctx):
        return subprocess.run(["qbittorrent-nox", "--version"], capture_output=True,
                              text=True).stdout.strip()

    def _start(self, ctx, what):
        prof = ctx.tmpdir("qbt-profile")
        port, web = free_port(), free_port()
        conf = os.path.join(prof, "qBittorrent", "config")
        os.makedirs(conf)
        with open(os.path.join(conf, "qBittorrent.conf"), "w") as f:
            f.write(f"""[LegalNotice]
Accepted=true

[BitTorrent]
Session\\DHTEnabled=false
Session\\LSDEnabled=false
Session\\PeXEnabled=false
Session\\BTProtocol=TCP
Session\\Port={port}
Session\\Interface=lo
Session\\InterfaceName=lo
Session\\MultiConnectionsPerIp=true
Session\\QueueingSystemEnabled=false
Session\\AnonymousModeEnabled=false
Session\\AddTorrentPaused=false
Session\\DefaultSavePath={prof}/dl

[Network]
PortForwardingEnabled=false

[Preferences]
Connection\\UPnP=false
Downloads\\SavePath={prof}/dl
General\\Locale=en
WebUI\\Address=127.0.0.1
WebUI\\Port={web}
WebUI\\LocalHostAuth=false
WebUI\\CSRFProtection=false
WebUI\\HostHeaderValidation=false
WebUI\\ClickjackingProtection=false
""")
        p = Proc(["qbittorrent-nox", f"--profile={prof}"], name=f"qbt-{what}",
                 log_path=ctx.log(f"qbt-{what}"), merge_stderr=True,
                 env=dict(os.environ, HOME=prof))
        wait_port(web, 30, p)
        self.api = f"http://127.0.0.1:{web}/api/v2"
        return p, prof

    def _add(self, torrent, save_dir, skip_check):
        boundary = uuid.uuid4().hex
        with open(torrent, "rb") as f:
            tbytes = f.read()
        parts = []
        for k, v in (("savepath", save_dir), ("skip_checking", "true" if skip_check else "false"),
                     ("paused", "false"), ("autoTMM", "false")):
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'
                         f"{v}\r\n".encode())
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="torrents"; '
                     f'filename="t.torrent"\r\nContent-Type: application/x-bittorrent\r\n\r\n'
                     .encode() + tbytes + b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        status, body = http("POST", self.api + "/torrents/add", b"".join(parts),
                            {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        if status != 200 or b"Fails" in body:
            raise RuntimeError(f"qBittorrent refused the torrent: {status} {body[:200]}")

    def _info(self, ih):
        _, body = http("GET", f"{self.api}/torrents/info?hashes={ih}", timeout=5)
        arr = json.loads(body)
        return arr[0] if arr else None

    def seed(self, ctx, torrent, data_root):
        p, _ = self._start(ctx, "seed")
        ih = info_hash(ctx, torrent)
        self._add(torrent, data_root, skip_check=False)
        deadline = time.monotonic() + 300
        while True:
            t = self._info(ih)
            if t and t["progress"] >= 1.0 and t["state"] in ("uploading", "stalledUP"):
                break
            if t and t["state"] in ("error", "missingFiles"):
                raise RuntimeError(f"qBittorrent seeder: {t['state']}")
            if time.monotonic() > deadline:
                raise TimeoutError("qBittorrent seeder not ready")
            time.sleep(0.1)
        wait_seeding_on_tracker(ctx, torrent, p)
        return Handle(p)

    def leech(self, ctx, torrent, save_dir, keep_seeding=False):
        p, _ = self._start(ctx, "leech")
        ih = info_hash(ctx, torrent)
        api = self.api
        time.sleep(0.3)  # let the session settle before the clock starts
        cpu0 = p.cpu_s()
        t0 = time.monotonic()
        self._add(torrent, save_dir, skip_check=False)
        h = _QbtHandle(p, t0, cpu0, api, ih)
        return h


class _QbtHandle(Handle):
    """Completion from the Web API, polled every 50 ms (progress 1 and an upload state)."""

    def __init__(self, p, t0, cpu0, api, ih):
        super().__init__(p, t0=t0, cpu0=cpu0, done_by="api poll 50ms")
        self.api, self.ih = api, ih

    def wait_done(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.proc.alive():
                raise RuntimeError(f"qbittorrent-nox exited {self.proc.exit_code}")
            try:
                _, body = http("GET", f"{self.api}/torrents/info?hashes={self.ih}", timeout=5)
                arr = json.loads(body)
            except (OSError, ValueError):
                arr = []
            now = time.monotonic()
            if arr and arr[0]["progress"] >= 1.0 and arr[0]["state"] in (
                    "uploading", "stalledUP", "queuedUP", "forcedUP", "pausedUP"):
                self.t_done = now
                self.cpu_done = self.cpu()
                return now
            if arr and arr[0]["state"] in ("error", "missingFiles"):
                raise RuntimeError(f"qBittorrent leecher: {arr[0]['state']}")
            time.sleep(0.05)
        raise TimeoutError("qBittorrent leecher did not finish")


CLIENTS = {c.name: c for c in (Shoal(), ShoalRc4(), ShoalUtp(), QBittorrent(), Libtorrent(),
                                LibtorrentUtp(), Rqbit(), Aria2())}
