#!/usr/bin/python3
"""Seed or download one torrent with libtorrent (python3-libtorrent), for bench/run.

    lt_driver.py seed|leech TORRENT SAVE_DIR [--port P] [--keep-seeding]

Session: no default plugins (no PEX, ut_metadata, smart_ban), DHT, LSD, UPnP and NAT-PMP
off, uTP off (TCP only), allow_multiple_connections_per_ip on (else libtorrent bans 127.0.0.1 after seeing
its own address in a tracker reply), listening on 127.0.0.1 only.
Prints `peer port: N` once listening, `seeding` when a seeder has checked its data,
`complete: NAME` when a leecher has every piece verified (then exits unless
--keep-seeding), and `uploaded: N` (payload bytes) on SIGTERM/SIGINT before exiting.
"""

import argparse
import signal
import sys
import time

import libtorrent as lt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["seed", "leech"])
    ap.add_argument("torrent")
    ap.add_argument("save")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--keep-seeding", action="store_true")
    a = ap.parse_args()

    settings = {
        "listen_interfaces": f"127.0.0.1:{a.port}",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        # TCP only, like the other clients: uTP over loopback is CPU-bound at a few 10 MB/s.
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "alert_mask": lt.alert.category_t.status_notification | lt.alert.category_t.error_notification,
    }
    ses = lt.session(settings, flags=0)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    info = lt.torrent_info(a.torrent)
    atp = lt.add_torrent_params()
    atp.ti = info
    atp.save_path = a.save
    h = ses.add_torrent(atp)
    name = info.name()

    port = ses.listen_port()
    while port == 0 and not stop:
        time.sleep(0.01)
        port = ses.listen_port()
    print(f"peer port: {port}", flush=True)

    said_seeding = False
    done = False
    while not stop:
        ses.wait_for_alert(50)
        for al in ses.pop_alerts():
            if isinstance(al, lt.torrent_error_alert) or isinstance(al, lt.file_error_alert):
                print(f"error: {al.message()}", file=sys.stderr, flush=True)
        st = h.status()
        if a.mode == "seed":
            if not said_seeding and st.is_seeding:
                print(f"seeding {name}", flush=True)
                said_seeding = True
        elif not done and st.is_seeding and st.num_pieces == info.num_pieces():
            print(f"complete: {name}", flush=True)
            done = True
            if not a.keep_seeding:
                break
    st = h.status()
    print(f"uploaded: {st.total_payload_upload}", flush=True)
    # Leave without waiting for the tracker's stopped announce.
    sys.stdout.flush()
    import os
    os._exit(0)


if __name__ == "__main__":
    main()
