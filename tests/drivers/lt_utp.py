#!/usr/bin/python3
"""A libtorrent peer over uTP only, for Shoal's uTP interop tests (python3-libtorrent,
loopback only).

    lt_utp.py seed|leech TORRENT SAVE_DIR [HOST:PORT...]

libtorrent's TCP is off both ways (`enable_incoming_tcp` = `enable_outgoing_tcp` =
false), uTP on. Listens on LT_LISTEN (default `127.0.0.1:0`; `[::1]:0` for the IPv6
tests), connects to the peers given (`[::1]:PORT` for IPv6). Prints `peer port: N`,
`seeding NAME` or `complete: NAME` (a leecher then exits) and `utp peer: ADDR` once a
connected peer is on a uTP socket. Error and connection alerts go to stderr as
`alert: ...`, so a test log shows why a connection failed.
"""

import os
import signal
import sys
import time

import libtorrent as lt

mode, torrent, save = sys.argv[1:4]
peers = sys.argv[4:]
ses = lt.session({
    "listen_interfaces": os.environ.get("LT_LISTEN", "127.0.0.1:0"),
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "allow_multiple_connections_per_ip": True,
    "enable_outgoing_tcp": False, "enable_incoming_tcp": False,
    "enable_outgoing_utp": True, "enable_incoming_utp": True,
    "alert_mask": lt.alert.category_t.error_notification
    | lt.alert.category_t.connect_notification,
}, flags=0)
# Not exported by the 2.0 bindings: peer_info::utp_socket is flag bit 17 (rc4_encrypted,
# which is, is bit 19).
UTP_SOCKET = int(getattr(lt.peer_info, "utp_socket", 1 << 17))
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
info = lt.torrent_info(torrent)
atp = lt.add_torrent_params()
atp.ti = info
atp.save_path = save
h = ses.add_torrent(atp)
port = ses.listen_port()
while port == 0:
    time.sleep(0.01)
    port = ses.listen_port()
print(f"peer port: {port}", flush=True)
for p in peers:
    host, _, pport = p.rpartition(":")
    h.connect_peer((host.strip("[]"), int(pport)))
said_seeding = said_utp = False
while not stop:
    ses.wait_for_alert(50)
    for a in ses.pop_alerts():
        print(f"alert: {a.what()}: {a.message()}", file=sys.stderr, flush=True)
    for pi in h.get_peer_info():
        if not said_utp and int(pi.flags) & UTP_SOCKET:
            print(f"utp peer: {pi.ip[0]}:{pi.ip[1]}", flush=True)
            said_utp = True
    st = h.status()
    if st.is_seeding and not said_seeding:
        print(f"seeding {info.name()}" if mode == "seed" else f"complete: {info.name()}", flush=True)
        said_seeding = True
        if mode == "leech":
            break
