//! Tests of one swarm's peer lists, selection and expiry.
use super::*;
use std::collections::HashSet;
use std::net::IpAddr;

fn peer(n: u8, seeder: bool, event: AnnounceEvent) -> PeerAnnounce {
    PeerAnnounce {
        peer_id: PeerId([n; 20]),
        addr: SocketAddr::from(([10, 0, 0, n], 1000 + u16::from(n))),
        seeder,
        event,
    }
}

fn announce(s: &mut Swarm, a: PeerAnnounce, numwant: usize) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    s.announce(&a, 0, numwant, &mut rand::thread_rng(), &mut out);
    out
}

#[test]
fn peers_see_each_other_but_not_themselves() {
    let mut s = Swarm::new(usize::MAX);
    assert!(announce(&mut s, peer(1, false, AnnounceEvent::Started), 50).is_empty());
    let seen = announce(&mut s, peer(2, false, AnnounceEvent::Started), 50);
    assert_eq!(seen, vec![peer(1, false, AnnounceEvent::None).addr]);
    let seen = announce(&mut s, peer(1, false, AnnounceEvent::None), 50);
    assert_eq!(seen, vec![peer(2, false, AnnounceEvent::None).addr]);
    assert_eq!(
        s.stats(),
        ScrapeStats {
            complete: 0,
            downloaded: 0,
            incomplete: 2
        }
    );
}

#[test]
fn completion_moves_to_seeders_once_and_stop_removes() {
    let mut s = Swarm::new(usize::MAX);
    announce(&mut s, peer(1, false, AnnounceEvent::Started), 50);
    announce(&mut s, peer(2, false, AnnounceEvent::Started), 50);
    announce(&mut s, peer(1, true, AnnounceEvent::Completed), 50);
    announce(&mut s, peer(1, true, AnnounceEvent::Completed), 50);
    assert_eq!(
        s.stats(),
        ScrapeStats {
            complete: 1,
            downloaded: 1,
            incomplete: 1
        }
    );
    announce(&mut s, peer(2, false, AnnounceEvent::Stopped), 50);
    assert_eq!(
        s.stats(),
        ScrapeStats {
            complete: 1,
            downloaded: 1,
            incomplete: 0
        }
    );
    announce(&mut s, peer(1, true, AnnounceEvent::Stopped), 50);
    assert_eq!(s.len(), 0);
}

#[test]
fn seeders_get_only_leechers() {
    let mut s = Swarm::new(usize::MAX);
    for n in 1..=5 {
        announce(&mut s, peer(n, true, AnnounceEvent::Started), 50);
    }
    announce(&mut s, peer(9, false, AnnounceEvent::Started), 50);
    let seen = announce(&mut s, peer(1, true, AnnounceEvent::None), 50);
    assert_eq!(seen, vec![peer(9, false, AnnounceEvent::None).addr]);
    assert_eq!(
        announce(&mut s, peer(9, false, AnnounceEvent::None), 50).len(),
        5
    );
}

#[test]
fn random_selection_is_distinct_capped_and_excludes_self() {
    let mut s = Swarm::new(usize::MAX);
    for n in 1..=100 {
        announce(&mut s, peer(n, n % 3 == 0, AnnounceEvent::Started), 0);
    }
    for _ in 0..50 {
        let me = peer(42, false, AnnounceEvent::None);
        let seen = announce(&mut s, me, 30);
        assert_eq!(seen.len(), 30);
        assert!(!seen.contains(&me.addr));
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 30);
    }
    let all = announce(&mut s, peer(42, false, AnnounceEvent::None), 500);
    assert_eq!(all.len(), 99);
}

#[test]
fn removal_keeps_index_consistent() {
    let mut s = Swarm::new(usize::MAX);
    for n in 1..=10 {
        announce(&mut s, peer(n, false, AnnounceEvent::Started), 0);
    }
    for n in [1, 5, 10, 2] {
        announce(&mut s, peer(n, false, AnnounceEvent::Stopped), 0);
    }
    s.check();
    assert_eq!(s.len(), 6);
}

#[test]
fn expiry_drops_silent_peers() {
    let mut s = Swarm::new(usize::MAX);
    let t0: Tick = 100;
    let mut out = Vec::new();
    let mut rng = rand::thread_rng();
    s.announce(
        &peer(1, false, AnnounceEvent::None),
        t0,
        0,
        &mut rng,
        &mut out,
    );
    s.announce(
        &peer(2, true, AnnounceEvent::None),
        t0,
        0,
        &mut rng,
        &mut out,
    );
    let later = t0 + 160;
    s.announce(
        &peer(3, false, AnnounceEvent::None),
        later,
        0,
        &mut rng,
        &mut out,
    );
    assert_eq!(s.expire(t0 + 80), 2);
    assert_eq!(s.len(), 1);
    let seen = announce(&mut s, peer(4, false, AnnounceEvent::None), 10);
    assert_eq!(seen, vec![peer(3, false, AnnounceEvent::None).addr]);
}

#[test]
fn a_peer_id_from_another_ip_is_another_peer() {
    let mut s = Swarm::new(usize::MAX);
    let victim = peer(1, false, AnnounceEvent::Started);
    announce(&mut s, victim, 0);
    announce(&mut s, peer(2, false, AnnounceEvent::Started), 0);
    // A forger reusing the victim's peer id can neither stop nor move it.
    let mut forged = peer(1, false, AnnounceEvent::Stopped);
    forged.addr = SocketAddr::from(([10, 9, 9, 9], 6666));
    announce(&mut s, forged, 0);
    assert_eq!(s.len(), 2);
    forged.event = AnnounceEvent::None;
    announce(&mut s, forged, 0);
    assert_eq!(s.len(), 3);
    let seen = announce(&mut s, peer(2, false, AnnounceEvent::None), 50);
    assert!(seen.contains(&victim.addr) && seen.contains(&forged.addr));
    // The forger leaving removes only its own entry.
    forged.event = AnnounceEvent::Stopped;
    announce(&mut s, forged, 0);
    let seen = announce(&mut s, peer(2, false, AnnounceEvent::None), 50);
    assert_eq!(seen, vec![victim.addr]);
    // The real peer on a new port is the same peer, moved.
    let mut moved = peer(1, false, AnnounceEvent::None);
    moved.addr.set_port(9999);
    announce(&mut s, moved, 0);
    assert_eq!(s.len(), 2);
    let seen = announce(&mut s, peer(2, false, AnnounceEvent::None), 50);
    assert_eq!(seen, vec![moved.addr]);
}

#[test]
fn a_full_swarm_answers_new_peers_without_storing_them() {
    let mut s = Swarm::new(3);
    for n in 1..=3 {
        announce(&mut s, peer(n, n == 1, AnnounceEvent::Started), 0);
    }
    let seen = announce(&mut s, peer(4, false, AnnounceEvent::Started), 50);
    assert_eq!(seen.len(), 3, "still answered");
    assert_eq!(s.len(), 3, "but not stored");
    assert_eq!(s.stats().incomplete, 2);
    // Members still update, complete and leave.
    announce(&mut s, peer(2, true, AnnounceEvent::Completed), 0);
    assert_eq!(s.stats().complete, 2);
    announce(&mut s, peer(3, false, AnnounceEvent::Stopped), 0);
    announce(&mut s, peer(4, false, AnnounceEvent::Started), 0);
    assert_eq!(s.len(), 3);
    let seen = announce(&mut s, peer(1, true, AnnounceEvent::None), 50);
    assert_eq!(seen, vec![peer(4, false, AnnounceEvent::None).addr]);
}

#[test]
fn ipv4_and_ipv6_peers_share_a_swarm() {
    let mut s = Swarm::new(usize::MAX);
    let v6 = |n: u8, seeder: bool, event| PeerAnnounce {
        peer_id: PeerId([n; 20]),
        addr: SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(n)], 2000)),
        seeder,
        event,
    };
    announce(&mut s, peer(1, true, AnnounceEvent::Started), 0);
    announce(&mut s, v6(2, true, AnnounceEvent::Started), 0);
    announce(&mut s, peer(3, false, AnnounceEvent::Started), 0);
    announce(&mut s, v6(4, false, AnnounceEvent::Started), 0);
    // The same peer id on another family is another peer.
    announce(&mut s, v6(1, false, AnnounceEvent::Started), 0);
    s.check();
    assert_eq!((s.stats().complete, s.stats().incomplete), (2, 3));
    let seen: HashSet<_> = announce(&mut s, v6(4, false, AnnounceEvent::None), 50)
        .into_iter()
        .collect();
    let want: HashSet<_> = [
        peer(1, true, AnnounceEvent::None).addr,
        v6(2, true, AnnounceEvent::None).addr,
        peer(3, false, AnnounceEvent::None).addr,
        v6(1, false, AnnounceEvent::None).addr,
    ]
    .into_iter()
    .collect();
    assert_eq!(seen, want);
    // A seeder sees only leechers, of both families.
    let seen: HashSet<_> = announce(&mut s, v6(2, true, AnnounceEvent::None), 50)
        .into_iter()
        .collect();
    assert_eq!(seen.len(), 3);
    assert!(!seen.contains(&peer(1, true, AnnounceEvent::None).addr));
    // An IPv6 leecher completes, then leaves.
    announce(&mut s, v6(4, true, AnnounceEvent::Completed), 0);
    assert_eq!((s.stats().complete, s.stats().downloaded), (3, 1));
    announce(&mut s, v6(4, true, AnnounceEvent::Stopped), 0);
    s.check();
    assert_eq!((s.stats().complete, s.stats().incomplete), (2, 2));
}

/// Random announces against a plain model: counts, index and replies stay right.
#[test]
fn random_announces_match_a_model() {
    use rand::{Rng, SeedableRng};
    use std::collections::HashMap;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut s = Swarm::new(40);
    // (id, ip) -> (port, seeder, last tick)
    let mut model: HashMap<(u8, IpAddr), (u16, bool, Tick)> = HashMap::new();
    let mut downloaded = 0u32;
    for step in 0..20_000u32 {
        let now: Tick = step / 10;
        let id = rng.gen_range(0..30u8);
        let ip: IpAddr = if rng.gen_bool(0.3) {
            IpAddr::from([0xfe80, 0, 0, 0, 0, 0, 0, u16::from(rng.gen_range(0..3u8))])
        } else {
            IpAddr::from([10, 0, 0, rng.gen_range(0..3u8)])
        };
        // Ports differ between ids, so an address names one peer.
        let port = u16::from(id) * 10 + rng.gen_range(1..5u16);
        let seeder = rng.gen_bool(0.4);
        let event = match rng.gen_range(0..10) {
            0 | 1 => AnnounceEvent::Stopped,
            2 => AnnounceEvent::Completed,
            3 => AnnounceEvent::Started,
            _ => AnnounceEvent::None,
        };
        if step % 997 == 0 {
            let cutoff = now.saturating_sub(20);
            let before = model.len();
            model.retain(|_, v| v.2 >= cutoff);
            assert_eq!(s.expire(cutoff), before - model.len());
        }
        let a = PeerAnnounce {
            peer_id: PeerId([id; 20]),
            addr: SocketAddr::new(ip, port),
            seeder,
            event,
        };
        let numwant = rng.gen_range(0..12usize);
        let mut out = Vec::new();
        s.announce(&a, now, numwant, &mut rng, &mut out);
        let key = (id, ip);
        let stored = if event == AnnounceEvent::Stopped {
            model.remove(&key);
            false
        } else {
            let prev = model.get(&key).map(|v| v.1);
            if prev.is_some() || model.len() < 40 {
                model.insert(key, (port, seeder, now));
            }
            if event == AnnounceEvent::Completed && prev != Some(true) {
                downloaded += 1;
            }
            model.contains_key(&key)
        };
        s.check();
        let seeds = model.values().filter(|v| v.1).count();
        assert_eq!(s.len(), model.len());
        assert_eq!(
            s.stats(),
            ScrapeStats {
                complete: seeds as u32,
                downloaded,
                incomplete: (model.len() - seeds) as u32,
            }
        );
        if event != AnnounceEvent::Stopped {
            let candidates: HashSet<SocketAddr> = model
                .iter()
                .filter(|(k, v)| **k != key && !(seeder && v.1))
                .map(|((_, ip), v)| SocketAddr::new(*ip, v.0))
                .collect();
            let got: HashSet<SocketAddr> = out.iter().copied().collect();
            assert_eq!(got.len(), out.len(), "distinct");
            assert_eq!(
                out.len(),
                numwant.min(candidates.len()),
                "step {step} stored {stored}"
            );
            assert!(got.is_subset(&candidates));
        }
    }
}

#[test]
fn sampling_is_distinct_and_covers_every_index_evenly() {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut hits = [0u32; 20];
    for _ in 0..20_000 {
        let mut got = Vec::new();
        sample_distinct(&mut rng, 20, 5, |i| got.push(i));
        let set: HashSet<_> = got.iter().copied().collect();
        assert_eq!((got.len(), set.len()), (5, 5));
        got.iter().for_each(|&i| hits[i] += 1);
    }
    // Each index is picked with probability 1/4: 5000 expected, sd ~61.
    assert!(hits.iter().all(|&h| (4700..5300).contains(&h)), "{hits:?}");
    for (n, k) in [(100_000, 3), (10_000, 9_999), (2, 1), (7, 0)] {
        let mut got = HashSet::new();
        sample_distinct(&mut rng, n, k, |i| assert!(i < n && got.insert(i)));
        assert_eq!(got.len(), k);
    }
}
