"""Scenario 5, UDP: aquatic_udp_load_test against `shoal tracker` and aquatic_udp."""

import os
import re
import socket
import struct
import subprocess
import time

from clients import ShoalTracker
from proc import Proc, free_port, machine_state


def aquatic_bins(cfg):
    """(load test binary, aquatic_udp binary or None, why missing)."""
    cache = os.path.join(cfg.bench, "cache")
    load = os.path.join(cache, "aquatic_udp_load_test", "bin", "aquatic_udp_load_test")
    server = os.path.join(cache, "aquatic_udp", "bin", "aquatic_udp")
    why = []
    for b, crate in ((load, "aquatic_udp_load_test"), (server, "aquatic_udp")):
        if not os.access(b, os.X_OK):
            failed = os.path.join(cache, crate + ".failed")
            why.append(f"{crate}: " + ("cargo install failed (bench/cache/" + crate + ".failed)"
                                       if os.path.exists(failed) else "not built (bench/install)"))
    return (load if os.access(load, os.X_OK) else None,
            server if os.access(server, os.X_OK) else None, "; ".join(why))


def udp_ready(port, timeout, proc):
    """Wait until a BEP 15 connect request on 127.0.0.1:PORT gets its answer."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited ({proc.exit_code}): {proc.tail()}")
            s.sendto(struct.pack(">QII", 0x41727101980, 0, 0x1234), ("127.0.0.1", port))
            try:
                data, _ = s.recvfrom(64)
                if len(data) >= 16 and struct.unpack(">II", data[:8]) == (0, 0x1234):
                    return
            except OSError:
                pass
    raise TimeoutError(f"no UDP tracker answer on port {port} after {timeout}s")


def udp_bench(sess, kind, run, load_bin, server_bin):
    cfg = sess.cfg
    ctx = sess.ctx
    rec = {"scenario": "tracker-udp", "client": kind, "run": run, "ok": False, "error": None,
           "torrents": 1000, "state": machine_state()}
    port = free_port()
    t = None
    try:
        if kind == "shoal":
            t = ShoalTracker(ctx, port).proc
        else:
            conf = os.path.join(ctx.tmp, f"aquatic-{run}.toml")
            with open(conf, "w") as f:
                f.write(f'socket_workers = 1\nlog_level = "error"\n\n[network]\n'
                        f'address = "127.0.0.1:{port}"\n')
            t = Proc([server_bin, "-c", conf], name="aquatic_udp", log_path=ctx.log("aquatic_udp"),
                     merge_stderr=True)
        udp_ready(port, 20, t)
        dur = 2 if cfg.quick else 10
        conf = os.path.join(ctx.tmp, f"load-{kind}-{run}.toml")
        with open(conf, "w") as f:
            f.write(f'server_address = "127.0.0.1:{port}"\nlog_level = "error"\nworkers = 1\n'
                    f'duration = {dur}\nsummarize_last = 0\nextra_statistics = false\n\n'
                    '[requests]\nnumber_of_torrents = 1000\nnumber_of_peers = 100000\n')
        cpu0 = t.cpu_s()
        out = subprocess.run([load_bin, "-c", conf], capture_output=True, text=True,
                             timeout=dur + 60)
        cpu = t.cpu_s() - cpu0
        text = out.stdout
        rep = text[text.find("# aquatic load test report"):]
        total = re.search(r"Average responses per second: ([\d.]+)", rep)
        ann = re.search(r"Announce responses: ([\d.]+)", rep)
        err = re.search(r"Error responses: ([\d.]+)", rep)
        if not total:
            raise RuntimeError(f"no report from the load test (exit {out.returncode}): "
                               f"{(out.stdout + out.stderr)[-300:]}")
        rec.update({"resp_s": round(float(total.group(1))),
                    "announce_s": round(float(ann.group(1))) if ann else None,
                    "error_resp_s": round(float(err.group(1))) if err else None,
                    "duration_s": dur, "load_workers": 1,
                    "tracker_cpu_s": round(cpu, 2)})
        m = t.mem()
        rec["tracker_peak_rss_mib"] = m["peak_rss_mib"]
        rec["tracker_peak_anon_mib"] = m["peak_anon_mib"]
        if kind != "shoal":
            rec["tracker_socket_workers"] = 1
        rec["ok"] = rec["resp_s"] > 0 and (rec["error_resp_s"] or 0) < 0.01 * rec["resp_s"]
        if not rec["ok"]:
            rec["error"] = f"error responses {rec['error_resp_s']}/s of {rec['resp_s']}/s"
    except Exception as e:  # noqa: BLE001
        rec["error"] = f"{type(e).__name__}: {e}"[:500]
    finally:
        if t is not None:
            t.stop()
    return rec
