//! Shared state without sockets: peers are registry entries with a command channel.

use std::net::SocketAddr;
use std::sync::Arc;

use shoal_proto::PeerId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::candidates::MAX_CANDIDATES;
use super::{PeerEntry, PeerKey, PeerSource, Shared, BAN_STRIKES};
use crate::create::{create_torrent, CreateOptions};
use crate::peer::{PeerCmd, PeerStats};
use crate::session::Limits;

fn shared() -> Arc<Shared> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.bin");
    std::fs::write(&file, vec![7u8; 100_000]).unwrap();
    shared_for(&file)
}

fn shared_for(path: &std::path::Path) -> Arc<Shared> {
    let opts = CreateOptions {
        piece_length: Some(16 * 1024),
        ..CreateOptions::default()
    };
    let meta = create_torrent(path, &opts, &|_, _| {}).unwrap();
    Shared::new(
        Arc::new(meta),
        PeerId(*b"-SH0000-testtesttest"),
        6881,
        Arc::new(Limits::new(0, 0)),
        CancellationToken::new(),
    )
}

/// Adds a registry entry as `register_peer` would; returns its command queue.
fn add_peer(sh: &Shared, key: PeerKey, addr: &str, id: u8) -> mpsc::UnboundedReceiver<PeerCmd> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut peer_id = [b'x'; 20];
    peer_id[19] = id;
    let entry = PeerEntry {
        addr: addr.parse().unwrap(),
        client: String::new(),
        incoming: true,
        source: PeerSource::Incoming,
        encrypted: false,
        transport: crate::peer::TransportKind::Tcp,
        listen_addr: None,
        peer_id: PeerId(peer_id),
        tx,
        stats: Arc::new(PeerStats::default()),
    };
    let mut st = sh.lock();
    st.peer_ids.insert(entry.peer_id);
    st.peers.insert(key, entry);
    rx
}

fn remove_peer(sh: &Shared, key: PeerKey) {
    let id = sh.lock().peers[&key].peer_id;
    sh.unregister_peer(key, id, &shoal_proto::wire::Bitfield::new(0));
}

#[test]
fn early_unchoke_goes_through_the_choker() {
    let sh = shared();
    let mut rx = add_peer(&sh, 1, "10.0.0.1:1000", 1);
    sh.peer_became_interested(1);
    assert!(matches!(rx.try_recv(), Ok(PeerCmd::Unchoke)));
    assert!(
        sh.lock().choker.is_unchoked(1),
        "the choker does not know about the early unchoke, so it never chokes the peer"
    );
    remove_peer(&sh, 1);
    assert!(
        !sh.lock().choker.is_unchoked(1),
        "peer_removed was not called"
    );
}

#[test]
fn early_unchokes_stop_when_slots_are_full() {
    let sh = shared();
    let slots = sh.lock().choker.config().unchoke_slots as u64;
    let mut rxs = Vec::new();
    for k in 1..=slots + 2 {
        rxs.push(add_peer(&sh, k, &format!("10.0.0.{k}:1000"), k as u8));
        sh.peer_became_interested(k);
    }
    let unchoked = rxs
        .iter_mut()
        .map(|rx| matches!(rx.try_recv(), Ok(PeerCmd::Unchoke)))
        .filter(|u| *u)
        .count();
    assert_eq!(unchoked as u64, slots);
}

#[tokio::test]
async fn candidate_list_is_capped_and_deduplicated() {
    let sh = shared();
    let addrs: Vec<SocketAddr> = (0..20_000u32)
        .map(|i| SocketAddr::from(((i + 1).to_be_bytes(), 6881)))
        .collect();
    sh.add_peers(&addrs, PeerSource::Tracker);
    sh.add_peers(&addrs, PeerSource::Tracker);
    assert_eq!(sh.lock().candidates.len(), MAX_CANDIDATES);
}

#[test]
fn strikes_survive_a_reconnect() {
    let sh = shared();
    let _rx = add_peer(&sh, 1, "10.0.0.1:1000", 1);
    {
        let mut st = sh.lock();
        Shared::strike(&mut st, 1, BAN_STRIKES - 1);
    }
    remove_peer(&sh, 1);
    // Same address and ID, new connection from another port.
    let mut rx = add_peer(&sh, 2, "10.0.0.1:2000", 1);
    {
        let mut st = sh.lock();
        Shared::strike(&mut st, 2, 1);
        assert_eq!(st.banned_ids.len(), 1, "strikes were reset by reconnecting");
    }
    assert!(matches!(rx.try_recv(), Ok(PeerCmd::Disconnect(_))));
    // A peer gone before its piece failed still gets the strike.
    let _rx = add_peer(&sh, 3, "10.0.0.3:1000", 3);
    remove_peer(&sh, 3);
    let mut st = sh.lock();
    Shared::strike(&mut st, 3, BAN_STRIKES);
    assert_eq!(st.banned_ids.len(), 2);
}

#[test]
fn file_priorities_and_selection_set_their_pieces_priority() {
    use crate::picker::Priority;
    // Files a (pieces 0-1), b (pieces 1-3: shares piece 1 with a), c (pieces 3-4).
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("t");
    std::fs::create_dir(&root).unwrap();
    for (name, len) in [("a", 20_000), ("b", 40_000), ("c", 20_000)] {
        std::fs::write(root.join(name), vec![1u8; len]).unwrap();
    }
    let sh = shared_for(&root);
    let prio = |sh: &Shared| -> Vec<Priority> {
        let st = sh.lock();
        (0..5).map(|p| st.picker.priority(p)).collect()
    };
    use Priority::{High, Low, Normal};
    assert_eq!(prio(&sh), [Normal; 5]);
    sh.set_file_priority(1, High);
    assert_eq!(prio(&sh), [Normal, High, High, High, Normal]);
    sh.set_file_priority(2, Low);
    sh.set_file_priority(0, Low);
    // A shared piece takes the highest priority of its files.
    assert_eq!(prio(&sh), [Low, High, High, High, Low]);
    // A skipped file no longer raises the pieces it shares.
    sh.set_file_wanted(1, false);
    assert_eq!(prio(&sh), [Low, Low, Normal, Low, Low]);
    assert!(!sh.lock().picker.wants(2));
    sh.set_file_wanted(1, true);
    sh.set_file_priority(1, Normal);
    assert_eq!(prio(&sh), [Low, Normal, Normal, Normal, Low]);
    // Out-of-range indices are ignored.
    sh.set_file_priority(9, High);
}

#[test]
fn seeder_keeps_no_regular_slot_while_its_peers_hold_every_piece() {
    use shoal_proto::wire::Bitfield;
    let sh = shared();
    sh.update_completion(true);
    let n = sh.meta.info.num_pieces();
    let half = |first: bool| {
        let mut b = Bitfield::new(n);
        for i in (0..n).filter(|i| (*i < n / 2) == first) {
            b.set(i);
        }
        b
    };
    let none = Bitfield::new(n);
    let mut rx1 = add_peer(&sh, 1, "10.0.0.1:1000", 1);
    let mut rx2 = add_peer(&sh, 2, "10.0.0.2:1000", 2);
    sh.peer_bitfield_replaced(&none, &half(true));
    assert_eq!(sh.lock().choker.regular_slots(true), 1, "half the pieces");
    sh.peer_became_interested(1);
    assert!(matches!(rx1.try_recv(), Ok(PeerCmd::Unchoke)));

    sh.peer_bitfield_replaced(&none, &half(false));
    assert_eq!(
        sh.lock().choker.regular_slots(true),
        0,
        "a copy between them"
    );
    sh.peer_became_interested(2);
    assert!(rx2.try_recv().is_err(), "no early unchoke while covered");

    // Peer 1 left with its half: pieces nobody has, the slot comes back.
    let id = sh.lock().peers[&1].peer_id;
    sh.unregister_peer(1, id, &half(true));
    assert_eq!(sh.lock().choker.regular_slots(true), 1);
    sh.peer_became_interested(2);
    assert!(matches!(rx2.try_recv(), Ok(PeerCmd::Unchoke)));

    // A peer that leaves holding every piece still counts as a copy.
    let _rx3 = add_peer(&sh, 3, "10.0.0.3:1000", 3);
    let full = Bitfield::full(n);
    sh.peer_bitfield_replaced(&none, &full);
    let id = sh.lock().peers[&3].peer_id;
    sh.unregister_peer(3, id, &full);
    assert_eq!(sh.lock().choker.regular_slots(true), 0);
}
