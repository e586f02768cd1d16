"""Drives a Transmission RPC server with the `transmission-rpc` package, as tools do.

Usage: trpc_client.py PORT TORRENT DATA_DIR MAGNET

Runs the same steps against Shoal and against transmission-daemon (tests/transmission_rpc.rs):
session-get, torrent-add (metainfo from a file, then a magnet), torrent-get, stop, start,
session-set (speed limit), free-space, session-stats, remove (the magnet, then the torrent
with its data). Prints one JSON object with what it saw; exits non-zero on a failed check.
"""

import json
import sys
import time

from transmission_rpc import Client


def wait(what, pred, secs=20):
    end = time.time() + secs
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def main():
    port, torrent, data_dir, magnet = sys.argv[1:5]
    c = Client(host="127.0.0.1", port=int(port), timeout=30)
    out = {}
    s = c.get_session()
    out["version"] = s.version
    out["rpc_version"] = s.rpc_version
    with open(torrent, "rb") as f:
        added = c.add_torrent(f, download_dir=data_dir)
    out["added"] = {"id": added.id, "name": added.name, "hash": added.hash_string}
    tid = added.id
    listed = c.get_torrents()
    assert any(t.hash_string == added.hash_string for t in listed), "added torrent not listed"
    t = wait("the data to be verified", lambda: (lambda t: t if t.percent_done == 1.0 else None)(c.get_torrent(tid)))
    out["torrent"] = {
        "name": t.name, "total_size": t.total_size, "files": len(t.get_files()),
        "trackers": [tr.announce for tr in t.trackers], "download_dir": t.download_dir,
    }
    c.stop_torrent(tid)
    wait("stopped", lambda: c.get_torrent(tid).status == "stopped")
    c.start_torrent(tid)
    wait("started", lambda: c.get_torrent(tid).status != "stopped")
    out["status_after_start"] = str(c.get_torrent(tid).status)
    c.set_session(speed_limit_down=123, speed_limit_down_enabled=True)
    s = c.get_session()
    assert s.speed_limit_down == 123 and s.speed_limit_down_enabled, "speed limit not set"
    c.set_session(speed_limit_down_enabled=False)
    assert not c.get_session().speed_limit_down_enabled, "speed limit not cleared"
    out["free_space"] = c.free_space(data_dir)
    assert out["free_space"] and out["free_space"] > 0, "no free space reported"
    st = c.session_stats()
    out["torrent_count"] = st.torrent_count
    m = c.add_torrent(magnet, paused=True)
    out["magnet"] = {"id": m.id, "hash": m.hash_string}
    assert len(c.get_torrents()) == 2, "magnet not listed"
    c.remove_torrent(m.id)
    c.remove_torrent(tid, delete_data=True)
    wait("removal", lambda: len(c.get_torrents()) == 0)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
