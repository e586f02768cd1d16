#!/usr/bin/python3
"""Seed or download one torrent with libtorrent (python3-libtorrent), for bench/run.

    lt_driver.py seed|leech TORRENT SAVE_DIR [--port P] [--bind IP] [--keep-seeding] [--plugins]
                 [--utp | --utp-only] [--peer HOST:PORT]
    lt_driver.py magnet MAGNET SAVE_DIR --peer HOST:PORT [--keep-seeding]

Session: no default plugins (no PEX, ut_metadata, smart_ban), DHT, LSD, UPnP and NAT-PMP
off, uTP off (TCP only; `--utp`: libtorrent's default, TCP and uTP both ways, scenario
`stream`), allow_multiple_connections_per_ip on (else libtorrent bans 127.0.0.1 after seeing
its own address in a tracker reply), listening on 127.0.0.1 only (or on --bind IP: the
tests of tests/net_faults.rs run it inside network namespaces on their own addresses).
`--plugins` (a seeder that serves metadata, BEP 9) and `magnet` create the session with
libtorrent's default plugins (ut_metadata, ut_pex, smart_ban): metadata exchange needs them.
Prints `peer port: N` once listening, `seeding NAME` when a seeder has checked its data,
`complete: NAME` when a leecher has every piece verified (then exits unless
--keep-seeding), and `uploaded: N` (payload bytes) on SIGTERM/SIGINT before exiting.
`magnet` adds the bare magnet link (lt.parse_magnet_uri), dials --peer (again whenever it
has no peer) and also prints `metadata received: NAME` when it has the info dictionary
(metadata_received_alert, or status().has_metadata) and `first piece verified` when the
first piece has been verified (piece_finished_alert, or status().num_pieces > 0); piece
alerts are asked for only until then.
`--utp` turns uTP on beside TCP (libtorrent's defaults; bench scenario stream), `--utp-only`
turns TCP off (tests/utp_faults.rs); either prints `utp peer: ADDR` once a connected peer is on
a uTP socket. `--peer`
in mode seed or leech dials that peer, again every 0.5 s while it has none.
"""

import argparse
import signal
import sys
import time

import libtorrent as lt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["seed", "leech", "magnet"])
    ap.add_argument("torrent", help="the .torrent file, or the magnet link in mode magnet")
    ap.add_argument("save")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--bind", default="127.0.0.1", help="IPv4 address to listen on")
    ap.add_argument("--keep-seeding", action="store_true")
    ap.add_argument("--plugins", action="store_true",
                    help="default plugins (ut_metadata, ut_pex, smart_ban); always on for magnet")
    ap.add_argument("--peer", help="HOST:PORT to dial (required in mode magnet)")
    ap.add_argument("--utp", action="store_true",
                    help="uTP on as well as TCP (libtorrent's default transports)")
    ap.add_argument("--utp-only", action="store_true", help="uTP only: TCP off")
    a = ap.parse_args()
    if a.mode == "magnet" and not a.peer:
        ap.error("magnet needs --peer HOST:PORT")

    settings = {
        "listen_interfaces": f"{a.bind}:{a.port}",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        # TCP only, like the other clients: uTP over loopback is CPU-bound at a few 10 MB/s.
        "enable_outgoing_utp": a.utp or a.utp_only,
        "enable_incoming_utp": a.utp or a.utp_only,
        "alert_mask": lt.alert.category_t.status_notification | lt.alert.category_t.error_notification,
    }
    if a.utp_only:
        settings.update({
            "enable_outgoing_utp": True,
            "enable_incoming_utp": True,
            "enable_outgoing_tcp": False,
            "enable_incoming_tcp": False,
        })
    base_mask = settings["alert_mask"]
    if a.mode == "magnet":
        # Until the first piece: piece_finished_alert wakes the loop at once (not 50 ms later).
        settings["alert_mask"] = base_mask | lt.alert.category_t.piece_progress_notification
    # Default plugins only where metadata must be served or fetched (the plain seed/leech
    # figures of the other scenarios keep the session without them).
    ses = lt.session(settings) if (a.plugins or a.mode == "magnet") else lt.session(settings, flags=0)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    peer = None
    if a.peer:
        host, pport = a.peer.rsplit(":", 1)
        peer = (host, int(pport))
    if a.mode == "magnet":
        atp = lt.parse_magnet_uri(a.torrent)
        atp.save_path = a.save
        h = ses.add_torrent(atp)
        info = None
        name = None
    else:
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
    if peer:
        h.connect_peer(peer)
        last_dial = time.monotonic()
    # Not exported by the 2.0 bindings: peer_info::utp_socket is flag bit 17.
    utp_socket = int(getattr(lt.peer_info, "utp_socket", 1 << 17))
    said_utp = not (a.utp or a.utp_only)

    said_seeding = False
    done = False
    said_meta = said_piece = False
    while not stop:
        ses.wait_for_alert(50)
        got_meta = got_piece = False
        for al in ses.pop_alerts():
            if isinstance(al, lt.torrent_error_alert) or isinstance(al, lt.file_error_alert):
                print(f"error: {al.message()}", file=sys.stderr, flush=True)
            elif isinstance(al, lt.metadata_received_alert):
                got_meta = True
            elif isinstance(al, lt.piece_finished_alert):
                got_piece = True
        st = h.status()
        if not said_utp:
            for pi in h.get_peer_info():
                if int(pi.flags) & utp_socket:
                    print(f"utp peer: {pi.ip[0]}:{pi.ip[1]}", flush=True)
                    said_utp = True
                    break
        if peer and a.mode != "magnet" and st.num_peers == 0 and not done \
                and time.monotonic() - last_dial >= 0.5:
            h.connect_peer(peer)  # re-dial while it has no peer
            last_dial = time.monotonic()
        if a.mode == "magnet":
            if not said_meta and (got_meta or st.has_metadata):
                info = h.torrent_file()
                name = info.name() if info is not None else st.name
                print(f"metadata received: {name}", flush=True)
                said_meta = True
            if said_meta and not said_piece and (got_piece or st.num_pieces > 0):
                print("first piece verified", flush=True)
                said_piece = True
                ses.apply_settings({"alert_mask": base_mask})
            if st.num_peers == 0 and not done and time.monotonic() - last_dial >= 0.5:
                h.connect_peer(peer)  # re-dial while it has no peer
                last_dial = time.monotonic()
            if not said_meta:
                continue
        if a.mode == "seed":
            if not said_seeding and st.is_seeding:
                print(f"seeding {name}", flush=True)
                said_seeding = True
        elif not done and st.is_seeding and (info is None or st.num_pieces == info.num_pieces()):
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
