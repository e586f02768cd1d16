#!/usr/bin/python3
"""A libtorrent peer for Shoal's magnet interop tests (python3-libtorrent, loopback only).

    lt_magnet.py seed TORRENT SAVE_DIR      seeds; prints `peer port: N`, then `seeding`
    lt_magnet.py fetch MAGNET SAVE_DIR HOST:PORT
                                            adds the bare magnet, connects to that peer only,
                                            prints `metadata: NAME` when it has the info
                                            dictionary and `complete: NAME` when every piece
                                            is verified, then exits

The session keeps libtorrent's default plugins (ut_metadata, ut_pex) and turns off DHT, LSD,
UPnP, NAT-PMP and uTP; `allow_multiple_connections_per_ip` is on for loopback.
"""

import os
import signal
import sys
import time

import libtorrent as lt


def session():
    settings = {
        # LT_LISTEN="[::1]:0" for the IPv6 tests.
        "listen_interfaces": os.environ.get("LT_LISTEN", "127.0.0.1:0"),
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "alert_mask": lt.alert.category_t.status_notification | lt.alert.category_t.error_notification,
    }
    return lt.session(settings)


def port_of(ses):
    port = ses.listen_port()
    while port == 0:
        time.sleep(0.01)
        port = ses.listen_port()
    return port


def main():
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    mode = sys.argv[1]
    ses = session()
    if mode == "seed":
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(sys.argv[2])
        atp.save_path = sys.argv[3]
        h = ses.add_torrent(atp)
        print(f"peer port: {port_of(ses)}", flush=True)
        said = False
        while not stop:
            ses.wait_for_alert(100)
            ses.pop_alerts()
            if not said and h.status().is_seeding:
                print("seeding", flush=True)
                said = True
        return
    atp = lt.parse_magnet_uri(sys.argv[2])
    atp.save_path = sys.argv[3]
    h = ses.add_torrent(atp)
    host, port = sys.argv[4].rsplit(":", 1)
    host = host.strip("[]")
    print(f"peer port: {port_of(ses)}", flush=True)
    h.connect_peer((host, int(port)))
    said_meta = False
    while not stop:
        ses.wait_for_alert(100)
        for al in ses.pop_alerts():
            if isinstance(al, (lt.torrent_error_alert, lt.file_error_alert)):
                print(f"error: {al.message()}", file=sys.stderr, flush=True)
        st = h.status()
        if not said_meta and st.has_metadata:
            print(f"metadata: {st.name}", flush=True)
            said_meta = True
        if said_meta and st.is_seeding:
            print(f"complete: {st.name}", flush=True)
            return
        if st.num_peers == 0:
            h.connect_peer((host, int(port)))


if __name__ == "__main__":
    main()
