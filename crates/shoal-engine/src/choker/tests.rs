use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::*;

fn peer(key: u64, interested: bool, down: u64, up: u64) -> PeerSnapshot {
    PeerSnapshot {
        key,
        interested,
        download_rate: down,
        upload_rate: up,
        is_seed: false,
    }
}

fn sorted(mut v: Vec<PeerKey>) -> Vec<PeerKey> {
    v.sort_unstable();
    v
}

#[test]
fn unchokes_fastest_uploaders_plus_one_optimistic() {
    let mut c = Choker::new(ChokerConfig::default());
    let mut rng = SmallRng::seed_from_u64(1);
    let t0 = Instant::now();
    let peers: Vec<_> = (1..=8).map(|k| peer(k, true, k * 1000, 0)).collect();
    let d = c.tick(t0, &peers, false, &mut rng);
    assert!(d.choke.is_empty());
    assert_eq!(d.unchoke.len(), 5);
    assert_eq!(sorted(d.unchoke[..4].to_vec()), vec![5, 6, 7, 8]);
    let opt = c.optimistic().expect("optimistic");
    assert!((1..=4).contains(&opt));
    assert_eq!(d.unchoke[4], opt);
    // Nothing changes before the recheck interval.
    assert!(c
        .tick(t0 + Duration::from_secs(5), &peers, false, &mut rng)
        .is_empty());
}

#[test]
fn rates_change_at_recheck() {
    let mut c = Choker::new(ChokerConfig {
        optimistic_interval: Duration::from_secs(3600),
        ..ChokerConfig::default()
    });
    let mut rng = SmallRng::seed_from_u64(2);
    let t0 = Instant::now();
    let mut peers: Vec<_> = (1..=6).map(|k| peer(k, true, k * 1000, 0)).collect();
    c.tick(t0, &peers, false, &mut rng);
    let opt = c.optimistic().unwrap();
    // Peer 1 becomes the fastest; the slowest regular one loses its slot.
    peers[0].download_rate = 1_000_000;
    let d = c.tick(t0 + Duration::from_secs(10), &peers, false, &mut rng);
    assert!(c.is_unchoked(1));
    for k in [4, 5, 6] {
        assert!(c.is_unchoked(k));
    }
    assert_eq!(c.unchoked().len(), 5);
    if opt != 1 {
        assert!(d.unchoke.contains(&1));
        assert!(c.is_unchoked(opt), "optimistic kept between rotations");
    }
    assert!(d.choke.iter().all(|&k| k == 2 || k == 3));
}

#[test]
fn uninterested_peers_are_not_unchoked_unless_faster() {
    let mut c = Choker::new(ChokerConfig::default());
    let mut rng = SmallRng::seed_from_u64(3);
    let t0 = Instant::now();
    let mut peers: Vec<_> = (1..=5).map(|k| peer(k, true, 1000 + k, 0)).collect();
    peers.push(peer(10, false, 10, 0));
    peers.push(peer(11, false, 5000, 0));
    c.tick(t0, &peers, false, &mut rng);
    assert!(!c.is_unchoked(10));
    assert!(c.is_unchoked(11), "BEP 3: better rate than the downloaders");
    assert_eq!(c.optimistic(), Some(1), "only interested peer left");
}

#[test]
fn seeding_ranks_by_upload_and_skips_seeds() {
    let mut c = Choker::new(ChokerConfig {
        unchoke_slots: 3,
        seeding_slots: 2,
        ..ChokerConfig::default()
    });
    let mut rng = SmallRng::seed_from_u64(4);
    let t0 = Instant::now();
    let mut peers = vec![
        peer(1, true, 9000, 10),
        peer(2, true, 0, 300),
        peer(3, true, 0, 200),
        peer(4, true, 0, 100),
    ];
    let mut seed = peer(5, true, 99_999, 99_999);
    seed.is_seed = true;
    peers.push(seed);
    c.tick(t0, &peers, true, &mut rng);
    assert!(c.is_unchoked(2) && c.is_unchoked(3));
    assert!(!c.is_unchoked(5));
    let opt = c.optimistic().unwrap();
    assert!(opt == 1 || opt == 4);
    assert_eq!(c.unchoked().len(), 3);
}

#[test]
fn optimistic_rotates_and_favours_new_peers() {
    let cfg = ChokerConfig {
        unchoke_slots: 1,
        ..ChokerConfig::default()
    };
    let t0 = Instant::now();
    let mut counts = [0u32; 4];
    for seed in 0..300 {
        let mut c = Choker::new(cfg.clone());
        let mut rng = SmallRng::seed_from_u64(seed);
        let peers: Vec<_> = (1..=3)
            .map(|k| peer(k, true, if k == 1 { 100 } else { 0 }, 0))
            .collect();
        // Peer 2 was unchoked before; peer 3 never was.
        c.mark_unchoked(2);
        c.tick(t0, &peers, false, &mut rng);
        counts[c.optimistic().unwrap() as usize] += 1;
    }
    assert_eq!(counts[1], 0, "regular peers are not optimistic");
    assert!(counts[3] > 2 * counts[2], "new peers favoured: {counts:?}");

    let mut c = Choker::new(cfg);
    let mut rng = SmallRng::seed_from_u64(9);
    let peers: Vec<_> = (1..=10)
        .map(|k| peer(k, true, if k == 1 { 100 } else { 0 }, 0))
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut t = t0;
    let mut prev = None;
    for round in 0..20 {
        let d = c.tick(t, &peers, false, &mut rng);
        let opt = c.optimistic();
        if round > 0 && prev != opt {
            assert_eq!(d.choke, prev.into_iter().collect::<Vec<_>>());
        }
        seen.insert(opt);
        prev = opt;
        t += Duration::from_secs(30);
    }
    assert!(seen.len() > 3, "rotation reaches many peers: {seen:?}");
}

#[test]
fn removed_peers_free_their_slot_at_once() {
    let mut c = Choker::new(ChokerConfig::default());
    let mut rng = SmallRng::seed_from_u64(5);
    let t0 = Instant::now();
    let peers: Vec<_> = (1..=7).map(|k| peer(k, true, k * 100, 0)).collect();
    c.tick(t0, &peers, false, &mut rng);
    assert!(c.is_unchoked(7));
    c.peer_removed(7);
    let rest: Vec<_> = peers.iter().copied().filter(|p| p.key != 7).collect();
    let d = c.tick(t0 + Duration::from_secs(1), &rest, false, &mut rng);
    assert!(d.choke.is_empty());
    assert!(c.is_unchoked(3), "next best takes the slot: {d:?}");
    // A peer that vanished from the list without peer_removed is forgotten too.
    let fewer: Vec<_> = rest.iter().copied().filter(|p| p.key != 6).collect();
    let d = c.tick(t0 + Duration::from_secs(2), &fewer, false, &mut rng);
    assert!(!d.choke.contains(&6));
    assert!(!c.is_unchoked(6));
}

#[test]
fn uninterested_peers_get_choked_and_decisions_are_deterministic() {
    let run = |seed| {
        let mut c = Choker::new(ChokerConfig::default());
        let mut rng = SmallRng::seed_from_u64(seed);
        let t0 = Instant::now();
        let mut peers: Vec<_> = (1..=8).map(|k| peer(k, true, 500, 0)).collect();
        let first = c.tick(t0, &peers, false, &mut rng);
        for p in &mut peers {
            p.interested = false;
        }
        c.invalidate();
        let second = c.tick(t0 + Duration::from_secs(1), &peers, false, &mut rng);
        assert_eq!(sorted(second.choke.clone()), sorted(first.unchoke.clone()));
        assert!(c.unchoked().is_empty());
        first.unchoke
    };
    assert_eq!(run(7), run(7));
    let distinct: std::collections::HashSet<_> = (0..10).map(|s| sorted(run(s))).collect();
    assert!(distinct.len() > 1, "equal rates: random tie-breaking");
}

#[test]
fn covered_seeder_keeps_only_the_optimistic_slot() {
    let mut c = Choker::new(ChokerConfig::default());
    let mut rng = SmallRng::seed_from_u64(11);
    let t0 = Instant::now();
    let peers: Vec<_> = (1..=8).map(|k| peer(k, true, 0, k * 1000)).collect();
    assert_eq!(c.regular_slots(true), 1);
    assert_eq!(c.regular_slots(false), 4);
    c.tick(t0, &peers, true, &mut rng);
    assert!(c.is_unchoked(8), "the fastest receiver");
    let opt = c.optimistic().expect("optimistic");
    assert_eq!(c.unchoked().len(), 2);

    // The peers now hold every piece between them: applied at the next tick, well
    // before the recheck interval.
    assert!(c.set_swarm_covered(true, true));
    assert!(!c.set_swarm_covered(true, true), "no change, no recompute");
    assert_eq!(c.regular_slots(true), 0);
    assert_eq!(c.regular_slots(false), 4, "a leecher's slots do not change");
    let d = c.tick(t0 + Duration::from_millis(100), &peers, true, &mut rng);
    assert_eq!(d.choke, vec![8]);
    assert!(d.unchoke.is_empty());
    assert_eq!(c.unchoked(), &[opt][..], "the optimistic unchoke stays");

    // A piece is held by no connected peer again: the regular slots come back.
    assert!(c.set_swarm_covered(false, true));
    let d = c.tick(t0 + Duration::from_millis(200), &peers, true, &mut rng);
    assert_eq!(d.unchoke, vec![8]);
    assert_eq!(c.unchoked().len(), 2);
}

#[test]
fn coverage_changes_while_downloading_do_not_recompute() {
    let mut c = Choker::new(ChokerConfig::default());
    let mut rng = SmallRng::seed_from_u64(12);
    let t0 = Instant::now();
    let peers: Vec<_> = (1..=8).map(|k| peer(k, true, k * 1000, 0)).collect();
    c.tick(t0, &peers, false, &mut rng);
    assert!(!c.set_swarm_covered(true, false));
    assert!(c
        .tick(t0 + Duration::from_secs(1), &peers, false, &mut rng)
        .is_empty());
    assert_eq!(c.unchoked().len(), 5);
}
