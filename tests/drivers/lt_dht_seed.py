#!/usr/bin/python3
"""A libtorrent seeder with its DHT on, for Shoal's DHT interop tests (loopback only).

    lt_dht_seed.py SAVE_DIR TORRENT

Prints `PORT n` once seeding, reads our DHT port from stdin and adds us as a DHT node
(libtorrent does not take nodes into its table from their queries alone), then asks
for a DHT announce every two seconds until stdin closes.
"""
import sys, time
import libtorrent as lt
save, torrent = sys.argv[1], sys.argv[2]
s = lt.session({
    'listen_interfaces': '127.0.0.1:0',
    'enable_dht': True, 'enable_lsd': False, 'enable_upnp': False, 'enable_natpmp': False,
    'dht_bootstrap_nodes': '',
    'dht_restrict_routing_ips': False, 'dht_restrict_search_ips': False,
    'dht_enforce_node_id': False, 'dht_ignore_dark_internet': False,
    'dht_prefer_verified_node_ids': False,
    # We speak no uTP yet: a uTP attempt to us would hang until its timeout, and
    # meanwhile libtorrent refuses our TCP connection as a duplicate of it.
    'enable_outgoing_utp': False, 'enable_incoming_utp': False,
    # Every peer is 127.0.0.1: tell them apart by port, or one self-connection
    # (libtorrent bans the address it meets itself at) would ban us too.
    'allow_multiple_connections_per_ip': True,
    'alert_mask': 0,
})
h = s.add_torrent({'ti': lt.torrent_info(torrent), 'save_path': save})
deadline = time.time() + 60
while not h.status().is_seeding and time.time() < deadline:
    time.sleep(0.1)
print('PORT', s.listen_port(), flush=True)
ours = int(sys.stdin.readline())
s.add_dht_node(('127.0.0.1', ours))
import select
while time.time() < deadline:
    h.force_dht_announce()
    r, _, _ = select.select([sys.stdin], [], [], 2.0)
    if r and not sys.stdin.readline():
        break
