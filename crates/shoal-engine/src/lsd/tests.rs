//! The announce schedule on given instants, and what a received packet does, against
//! a recording stand-in for the session. (The socket itself is exercised between two
//! network namespaces by the binary's `tests/lsd.rs`; the session's side of
//! [`LsdTorrents`] by `session/tests.rs`.)

use std::sync::Mutex;

use super::*;

fn h(n: u8) -> InfoHash {
    InfoHash([n; 20])
}

#[test]
fn new_torrents_at_once_then_every_round() {
    let t0 = Instant::now();
    let mut s = Schedule::new(t0);
    assert_eq!(s.due(t0, &[h(1), h(2)]), [h(1), h(2)]);
    // Woken again (a third torrent added): only the new one.
    let t1 = t0 + Duration::from_secs(10);
    assert_eq!(s.due(t1, &[h(1), h(2), h(3)]), [h(3)]);
    assert!(s
        .due(t1 + Duration::from_secs(1), &[h(1), h(2), h(3)])
        .is_empty());
    assert_eq!(s.next_round(), t0 + ROUND);
    // The round: everyone announced more than a minute ago.
    let r = t0 + ROUND;
    assert_eq!(s.due(r, &[h(1), h(2), h(3)]), [h(1), h(2), h(3)]);
    assert_eq!(s.next_round(), r + ROUND);
    assert!(s
        .due(r + Duration::from_secs(59), &[h(1), h(2), h(3)])
        .is_empty());
}

#[test]
fn a_round_skips_torrents_announced_within_the_minute() {
    let t0 = Instant::now();
    let mut s = Schedule::new(t0);
    let late = t0 + ROUND - Duration::from_secs(30);
    assert_eq!(s.due(late, &[h(1)]), [h(1)]);
    assert!(s.due(t0 + ROUND, &[h(1)]).is_empty());
    assert_eq!(s.due(t0 + 2 * ROUND, &[h(1)]), [h(1)]);
}

#[test]
fn removed_torrents_are_forgotten() {
    let t0 = Instant::now();
    let mut s = Schedule::new(t0);
    assert_eq!(s.due(t0, &[h(1)]), [h(1)]);
    assert!(s.due(t0, &[]).is_empty());
    // Added again: announced at once, like any new torrent.
    assert_eq!(s.due(t0 + Duration::from_secs(1), &[h(1)]), [h(1)]);
}

/// Records the peers given; knows torrents 1 and 2 only.
#[derive(Default)]
struct Recorder(Mutex<Vec<(InfoHash, SocketAddr)>>);

impl LsdTorrents for Recorder {
    fn public_info_hashes(&self) -> Vec<InfoHash> {
        vec![h(1), h(2)]
    }
    fn add_lsd_peer(&self, hash: &InfoHash, addr: SocketAddr) -> bool {
        let known = *hash == h(1) || *hash == h(2);
        if known {
            self.0.lock().unwrap().push((*hash, addr));
        }
        known
    }
}

#[test]
fn announcers_reach_the_torrents_they_name_at_their_source_ip() {
    let rec = Recorder::default();
    let ours = Cookie::new("mine").unwrap();
    let theirs = Cookie::new("theirs").unwrap();
    let from: SocketAddr = "10.1.2.3:6771".parse().unwrap();
    let packets = lsd::encode_announces(51413, &[h(1), h(9), h(2)], &theirs);
    assert_eq!(handle_packet(&rec, &ours, from, &packets[0]), 2);
    let peer: SocketAddr = "10.1.2.3:51413".parse().unwrap();
    assert_eq!(*rec.0.lock().unwrap(), [(h(1), peer), (h(2), peer)]);
}

#[test]
fn our_own_and_malformed_announces_are_dropped() {
    let rec = Recorder::default();
    let ours = Cookie::new("mine").unwrap();
    let from: SocketAddr = "10.1.2.3:6771".parse().unwrap();
    let own = lsd::encode_announces(6881, &[h(1)], &ours);
    assert_eq!(handle_packet(&rec, &ours, from, &own[0]), 0);
    let bad = b"BT-SEARCH * HTTP/1.1\r\nPort: 0\r\nInfohash: 0101\r\n\r\n";
    assert_eq!(handle_packet(&rec, &ours, from, bad), 0);
    assert_eq!(handle_packet(&rec, &ours, from, &[0xff; 3000]), 0);
    assert!(rec.0.lock().unwrap().is_empty());
}
