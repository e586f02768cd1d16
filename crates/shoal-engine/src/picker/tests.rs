use std::collections::{HashMap, HashSet};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::active::BlockState;
use super::*;

const KIB: u64 = 1024;

fn rng(seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed)
}

fn all(_: u32) -> bool {
    true
}

/// Checks the picker's redundant counters against its primary state.
fn check_invariants(p: &PiecePicker) {
    let mut unrequested = 0u64;
    let mut holds: HashMap<PeerKey, u32> = HashMap::new();
    for (s, ap) in p.active.iter().enumerate() {
        assert_eq!(p.slot[ap.piece as usize] as usize, s);
        assert!(!p.have[ap.piece as usize]);
        assert!(!p.rarity.contains(ap.piece));
        let mut missing = 0;
        let mut received = 0;
        for (i, b) in ap.blocks.iter().enumerate() {
            match b {
                BlockState::Missing => {
                    missing += 1;
                    assert!(i as u32 >= ap.first_missing, "first_missing hint too high");
                }
                BlockState::Received => received += 1,
                BlockState::Requested(h) => {
                    assert!(!h.is_empty() && h.len() <= MAX_REQUESTERS);
                    for k in h.iter() {
                        *holds.entry(k).or_default() += 1;
                    }
                }
            }
        }
        assert_eq!(
            (missing, received),
            (ap.missing, ap.received),
            "piece {}",
            ap.piece
        );
        assert!(
            !ap.is_untouched(),
            "untouched piece {} left active",
            ap.piece
        );
        if p.wanted[ap.piece as usize] {
            unrequested += u64::from(missing);
        }
        if let Some(o) = ap.owner {
            assert!(p.peers[&o].owned.contains(&ap.piece));
        }
    }
    assert_eq!(unrequested, p.unrequested);
    let zero = p.avail.iter().filter(|&&a| a == 0).count();
    assert_eq!(zero, p.unavailable as usize, "pieces nobody has");
    for (k, e) in &p.peers {
        assert_eq!(
            e.outstanding,
            holds.get(k).copied().unwrap_or(0),
            "peer {k}"
        );
        for &piece in &e.owned {
            assert_eq!(p.active[p.slot[piece as usize] as usize].owner, Some(*k));
        }
    }
    let idle_wanted = (0..p.num_pieces)
        .filter(|&i| p.wants(i) && p.slot[i as usize] == NONE)
        .count();
    assert_eq!(p.rarity.len(), idle_wanted);
}

fn pick(p: &mut PiecePicker, peer: PeerKey, has: &dyn Fn(u32) -> bool, max: usize) -> Vec<Block> {
    let mut out = Vec::new();
    let n = p.pick(peer, &has, max, &mut rng(peer), &mut out);
    assert_eq!(n, out.len());
    out
}

#[test]
fn geometry_and_short_last_piece() {
    let p = PiecePicker::new(256 * KIB, 1 << 30);
    assert_eq!(p.num_pieces(), 4096);
    assert_eq!(p.block_count(0), 16);
    assert_eq!(p.block_count(4095), 16);
    assert_eq!(p.block_ref(4095, 15), (15 * BLOCK_SIZE, BLOCK_SIZE));

    let p = PiecePicker::new(64 * KIB, 3 * 64 * KIB + 20_000);
    assert_eq!(p.num_pieces(), 4);
    assert_eq!(p.piece_size(3), 20_000);
    assert_eq!(p.block_count(3), 2);
    assert_eq!(p.block_ref(3, 0), (0, BLOCK_SIZE));
    assert_eq!(p.block_ref(3, 1), (BLOCK_SIZE, 20_000 - BLOCK_SIZE));
    assert_eq!(p.block_ref(3, 2), (0, 0));
    assert_eq!(p.block_ref(4, 0), (0, 0));
    assert_eq!(p.missing_bytes(), 3 * 64 * KIB + 20_000);
    assert!(p.is_valid_block(Block {
        piece: 3,
        begin: BLOCK_SIZE,
        length: 3616
    }));
    assert!(!p.is_valid_block(Block {
        piece: 3,
        begin: BLOCK_SIZE,
        length: BLOCK_SIZE
    }));
    assert!(!p.is_valid_block(Block {
        piece: 0,
        begin: 1,
        length: BLOCK_SIZE
    }));

    // Piece length not a multiple of the block size.
    let p = PiecePicker::new(20_000, 40_000);
    assert_eq!(p.block_ref(1, 1), (BLOCK_SIZE, 20_000 - BLOCK_SIZE));

    // A tiny torrent: one short block.
    let mut p = PiecePicker::new(256 * KIB, 100);
    let out = pick(&mut p, 1, &all, 10);
    assert_eq!(
        out,
        vec![Block {
            piece: 0,
            begin: 0,
            length: 100
        }]
    );
}

#[test]
fn invalid_geometry() {
    assert_eq!(
        PiecePicker::try_new(0, 10).err(),
        Some(PickerError::ZeroPieceLength)
    );
    assert!(matches!(
        PiecePicker::try_new(1 << 33, 1 << 34),
        Err(PickerError::PieceTooLong(_))
    ));
    assert!(matches!(
        PiecePicker::try_new(1, 1 << 40),
        Err(PickerError::TooManyPieces(_))
    ));
    let p = PiecePicker::new(0, 10);
    assert_eq!(p.num_pieces(), 0);
    let empty = PiecePicker::new(16 * KIB, 0);
    assert!(empty.is_complete() && empty.is_complete_wanted());
}

#[test]
fn rarest_first() {
    let mut p = PiecePicker::new(16 * KIB, 10 * 16 * KIB);
    // Three peers have everything but piece 7; one of them lacks piece 2 too.
    p.peer_pieces_added((0..10).filter(|&i| i != 7));
    p.peer_pieces_added((0..10).filter(|&i| i != 7));
    p.peer_pieces_added((0..10).filter(|&i| i != 7 && i != 2));
    p.peer_have(7);
    assert_eq!(p.availability(7), 1);
    assert_eq!(p.availability(2), 2);
    assert_eq!(p.availability(0), 3);
    let order: Vec<u32> = (0..10).map(|_| pick(&mut p, 9, &all, 1)[0].piece).collect();
    assert_eq!(&order[..2], &[7, 2]);
    let mut rest = order[2..].to_vec();
    rest.sort_unstable();
    assert_eq!(rest, vec![0, 1, 3, 4, 5, 6, 8, 9]);
    check_invariants(&p);
}

#[test]
fn rarest_first_only_among_pieces_the_peer_has() {
    let mut p = PiecePicker::new(16 * KIB, 10 * 16 * KIB);
    p.peer_pieces_added([1, 2, 3]);
    p.peer_pieces_added([2, 3]);
    p.peer_pieces_added([3]);
    let has = |i: u32| i == 2 || i == 3;
    assert_eq!(pick(&mut p, 1, &has, 1)[0].piece, 2);
    let bf = {
        let mut b = Bitfield::new(10);
        b.set(3);
        b
    };
    let mut out = Vec::new();
    p.pick(2, &bf, 1, &mut rng(0), &mut out);
    assert_eq!(out[0].piece, 3);
}

#[test]
fn availability_updates_reorder() {
    let mut p = PiecePicker::new(16 * KIB, 4 * 16 * KIB);
    let mut bf = Bitfield::new(4);
    bf.set(0);
    bf.set(1);
    p.peer_bitfield_added(&bf);
    p.peer_bitfield_added(&bf);
    p.peer_have(2);
    p.peer_have(3);
    p.peer_have(3);
    p.peer_bitfield_removed(&bf);
    // Now: 0,1 -> 1; 2 -> 1; 3 -> 2. Removing more than added saturates.
    p.peer_pieces_removed([3, 3, 3]);
    assert_eq!(p.availability(3), 0);
    assert_eq!(pick(&mut p, 1, &all, 1)[0].piece, 3);
    check_invariants(&p);
}

#[test]
fn random_tie_breaking_is_seeded() {
    let order = |seed: u64| -> Vec<u32> {
        let mut p = PiecePicker::new(16 * KIB, 64 * 16 * KIB);
        let mut r = rng(seed);
        let mut out = Vec::new();
        for _ in 0..20 {
            p.pick(1, &all, 1, &mut r, &mut out);
        }
        out.iter().map(|b| b.piece).collect()
    };
    assert_eq!(order(1), order(1));
    assert_ne!(order(1), order(2));
    assert_ne!(order(2), order(3));
    let o = order(4);
    assert_eq!(
        o.iter().collect::<HashSet<_>>().len(),
        20,
        "distinct pieces"
    );
    assert_ne!(o, (o[0]..o[0] + 20).collect::<Vec<_>>(), "not sequential");
}

#[test]
fn own_pieces_then_orphans_then_new() {
    let mut p = PiecePicker::new(64 * KIB, 10 * 64 * KIB); // 4 blocks per piece
    let a = pick(&mut p, 1, &all, 2);
    assert_eq!(a.len(), 2);
    let x = a[0].piece;
    assert_eq!(
        a[1],
        Block {
            piece: x,
            begin: BLOCK_SIZE,
            length: BLOCK_SIZE
        }
    );
    // The same peer continues its own piece.
    let a2 = pick(&mut p, 1, &all, 3);
    assert_eq!(a2[0].piece, x);
    assert_eq!(a2[1].piece, x);
    assert_ne!(a2[2].piece, x, "then a new piece");
    // Another peer does not mix into peer 1's pieces while new ones exist.
    let b = pick(&mut p, 2, &all, 4);
    assert!(b
        .iter()
        .all(|blk| blk.piece != x && blk.piece != a2[2].piece));
    // Peer 1 delivers one block and leaves: its started piece goes to the next peer.
    assert!(p.block_received(1, a[0]).first);
    p.peer_gone(1);
    check_invariants(&p);
    let c = pick(&mut p, 3, &all, 3);
    assert!(c.iter().all(|blk| blk.piece == x), "orphan first: {c:?}");
    assert_eq!(p.outstanding(3), 3);
    // The untouched piece peer 1 had only requested went back to idle.
    assert_eq!(p.active_pieces(), 2);
    check_invariants(&p);
}

#[test]
fn joins_other_peers_piece_only_when_nothing_new() {
    let mut p = PiecePicker::new(64 * KIB, 2 * 64 * KIB);
    let only0 = |i: u32| i == 0;
    let a = pick(&mut p, 1, &only0, 1);
    assert_eq!(a[0].piece, 0);
    // Peer 2 has only piece 0: helps with the rest of it.
    let b = pick(&mut p, 2, &only0, 10);
    assert_eq!(b.len(), 3);
    assert!(b.iter().all(|blk| blk.piece == 0 && blk.begin != 0));
    assert!(!p.in_endgame(), "piece 1 is still unrequested");
    assert!(
        pick(&mut p, 2, &only0, 10).is_empty(),
        "no duplicates outside endgame"
    );
    check_invariants(&p);
}

#[test]
fn endgame_duplicates_and_cancels() {
    let mut p = PiecePicker::new(32 * KIB, 64 * KIB); // 2 pieces x 2 blocks
    let a = pick(&mut p, 1, &all, 10);
    assert_eq!(a.len(), 4);
    assert!(p.in_endgame());
    let b = pick(&mut p, 2, &all, 10);
    assert_eq!(b.len(), 4);
    assert!(
        pick(&mut p, 2, &all, 10).is_empty(),
        "never the same block twice to a peer"
    );
    assert!(pick(&mut p, 1, &all, 10).is_empty());
    let c = pick(&mut p, 3, &all, 10);
    assert_eq!(c.len(), 4);
    assert!(
        pick(&mut p, 4, &all, 10).is_empty(),
        "at most {MAX_REQUESTERS} holders"
    );
    let blk = a[0];
    assert_eq!(p.requesters(blk).as_slice(), &[1, 2, 3]);

    let r = p.block_received(2, blk);
    assert!(r.first && r.solicited && !r.piece_complete);
    assert_eq!(r.other_requesters.as_slice(), &[1, 3]);
    assert_eq!(
        (p.outstanding(1), p.outstanding(2), p.outstanding(3)),
        (3, 3, 3)
    );
    let late = p.block_received(1, blk);
    assert!(!late.first && !late.solicited && late.other_requesters.is_empty());
    let sibling = Block {
        piece: blk.piece,
        begin: BLOCK_SIZE - blk.begin,
        length: BLOCK_SIZE,
    };
    let r = p.block_received(3, sibling);
    assert!(r.first && r.piece_complete);
    assert_eq!(r.other_requesters.as_slice(), &[1, 2]);
    // Peer 4 gets duplicates once a holder drops out.
    p.peer_choked(1);
    let d = pick(&mut p, 4, &all, 10);
    assert_eq!(d.len(), 2);
    check_invariants(&p);
}

#[test]
fn endgame_prefers_blocks_with_fewest_holders() {
    let mut p = PiecePicker::new(32 * KIB, 64 * KIB);
    let a = pick(&mut p, 1, &all, 4);
    let b = pick(&mut p, 2, &all, 2);
    let c = pick(&mut p, 3, &all, 2);
    let b: HashSet<_> = b.into_iter().collect();
    let c: HashSet<_> = c.into_iter().collect();
    assert!(
        b.is_disjoint(&c),
        "second duplicates go to single-holder blocks"
    );
    assert_eq!(b.len() + c.len(), a.len());
}

#[test]
fn unwanted_pieces_are_never_picked() {
    let mut p = PiecePicker::new(16 * KIB, 10 * 16 * KIB);
    for i in 0..10 {
        p.set_wanted(i, i % 3 == 0);
    }
    assert_eq!(p.wanted_missing_bytes(), 4 * 16 * KIB);
    assert_eq!(p.missing_bytes(), 10 * 16 * KIB);
    let got = pick(&mut p, 1, &all, 100);
    let mut pieces: Vec<u32> = got.iter().map(|b| b.piece).collect();
    pieces.sort_unstable();
    assert_eq!(pieces, vec![0, 3, 6, 9]);
    // Deselecting a started piece stops it from being picked, even in endgame.
    p.request_dropped(1, got[0]);
    p.set_wanted(got[0].piece, false);
    check_invariants(&p);
    assert!(pick(&mut p, 2, &all, 100)
        .iter()
        .all(|b| b.piece != got[0].piece));
    for b in &got[1..] {
        assert!(p.block_received(1, *b).piece_complete);
        p.piece_verified(b.piece);
    }
    assert!(p.is_complete_wanted());
    assert!(!p.is_complete());
    assert!(!p.in_endgame());
    assert!(pick(&mut p, 3, &all, 100).is_empty());
    // Unsolicited data for an unwanted piece is refused.
    assert!(
        !p.block_received(
            3,
            Block {
                piece: 1,
                begin: 0,
                length: BLOCK_SIZE
            }
        )
        .first
    );
    p.set_wanted(1, true);
    assert!(!p.is_complete_wanted());
    assert_eq!(
        pick(&mut p, 3, &all, 100),
        vec![Block {
            piece: 1,
            begin: 0,
            length: BLOCK_SIZE
        }]
    );
    check_invariants(&p);
}

#[test]
fn piece_failed_refetches_and_names_contributors() {
    let mut p = PiecePicker::new(64 * KIB, 64 * KIB);
    let a = pick(&mut p, 1, &all, 2);
    let b = pick(&mut p, 2, &all, 2);
    for blk in &a {
        p.block_received(1, *blk);
    }
    let mut complete = false;
    for blk in &b {
        complete = p.block_received(2, *blk).piece_complete;
    }
    assert!(complete);
    assert!(
        pick(&mut p, 3, &all, 10).is_empty(),
        "complete piece awaits its hash"
    );
    let mut blamed = p.piece_failed(0);
    blamed.sort_unstable();
    assert_eq!(blamed, vec![1, 2]);
    assert!(!p.have(0));
    check_invariants(&p);
    let again = pick(&mut p, 3, &all, 10);
    assert_eq!(again.len(), 4);
    for blk in &again {
        p.block_received(3, *blk);
    }
    assert_eq!(p.piece_failed(0), vec![3]);
    assert!(p.piece_failed(0).is_empty(), "idle piece: nobody to blame");
}

#[test]
fn have_all_counts_seeds_separately() {
    let mut p = PiecePicker::new(16 * KIB, 4 * 16 * KIB);
    p.peer_have_all();
    p.peer_have_all();
    p.peer_have(1);
    assert_eq!(p.availability(0), 2);
    assert_eq!(p.availability(1), 3);
    // Seeds do not change the order: piece 1 is the most common.
    let order: Vec<u32> = (0..4).map(|_| pick(&mut p, 5, &all, 1)[0].piece).collect();
    assert_eq!(order[3], 1);
    p.peer_have_all_removed();
    p.peer_have_all_removed();
    p.peer_have_all_removed();
    assert_eq!(p.availability(0), 0);
    assert_eq!(p.availability(1), 1);
}

#[test]
fn drops_and_choke_return_blocks() {
    let mut p = PiecePicker::new(64 * KIB, 2 * 64 * KIB);
    let a = pick(&mut p, 1, &all, 8);
    assert_eq!(p.outstanding(1), 8);
    p.request_dropped(1, a[1]);
    p.request_dropped(1, a[1]); // twice: ignored
    p.request_dropped(2, a[2]); // not its request: ignored
    assert_eq!(p.outstanding(1), 7);
    assert!(!p.in_endgame());
    check_invariants(&p);
    // The dropped block goes back to its owner first.
    assert_eq!(pick(&mut p, 1, &all, 8), vec![a[1]]);
    p.peer_choked(1);
    assert_eq!(p.outstanding(1), 0);
    assert_eq!(p.active_pieces(), 0, "untouched pieces are idle again");
    check_invariants(&p);
    let b = pick(&mut p, 2, &all, 8);
    assert_eq!(b.len(), 8);
    p.block_received(2, b[0]);
    p.peer_gone(2);
    assert_eq!(p.active_pieces(), 1);
    check_invariants(&p);
}

#[test]
fn received_edge_cases() {
    let mut p = PiecePicker::new(32 * KIB, 64 * KIB);
    let bad = [
        Block {
            piece: 9,
            begin: 0,
            length: BLOCK_SIZE,
        },
        Block {
            piece: 0,
            begin: 5,
            length: BLOCK_SIZE,
        },
        Block {
            piece: 0,
            begin: 0,
            length: 5,
        },
        Block {
            piece: 0,
            begin: 2 * BLOCK_SIZE,
            length: BLOCK_SIZE,
        },
    ];
    for b in bad {
        assert_eq!(p.block_received(1, b), Received::default());
        p.request_dropped(1, b);
    }
    // Unsolicited but useful: accepted.
    let b = Block {
        piece: 1,
        begin: 0,
        length: BLOCK_SIZE,
    };
    let r = p.block_received(7, b);
    assert!(r.first && !r.solicited);
    assert!(!p.block_received(7, b).first, "duplicate");
    // The rest of piece 1 is an orphan any peer continues.
    assert_eq!(
        pick(&mut p, 8, &all, 1),
        vec![Block {
            piece: 1,
            begin: BLOCK_SIZE,
            length: BLOCK_SIZE
        }]
    );
    p.set_have(1);
    assert!(
        !p.block_received(
            8,
            Block {
                piece: 1,
                begin: BLOCK_SIZE,
                length: BLOCK_SIZE
            }
        )
        .first
    );
    assert_eq!(p.outstanding(8), 0);
    check_invariants(&p);
}

#[test]
fn resume_state() {
    let mut p = PiecePicker::new(16 * KIB, 3 * 16 * KIB + 1);
    p.set_have(0);
    p.set_have(3);
    p.set_have(3);
    p.set_have(99);
    assert_eq!(p.have_count(), 2);
    assert_eq!(p.missing_bytes(), 2 * 16 * KIB);
    let mut got: Vec<u32> = pick(&mut p, 1, &all, 10).iter().map(|b| b.piece).collect();
    got.sort_unstable();
    assert_eq!(got, vec![1, 2]);
    p.set_have(1);
    p.piece_verified(2);
    assert!(p.is_complete());
    assert_eq!(p.missing_bytes(), 0);
    assert_eq!(p.outstanding(1), 0);
    check_invariants(&p);
}

/// A virtual swarm: peers with random piece sets (one seed via have-all) fetch a
/// torrent through the picker, with deliveries in random order, dropped requests,
/// chokes, disconnects and a corrupting peer. Checks that no peer is ever asked for
/// a block it already has outstanding, that the counters stay consistent, and that
/// every block ends up received and verified.
fn simulate(seed: u64, faults: bool) -> (u32, u32) {
    let (mut cancels, mut failures) = (0, 0);
    let mut r = rng(seed);
    let piece_len = 64 * KIB + 3 * KIB; // 5 blocks, the last short
    let total = 37 * piece_len + 10_000;
    let mut p = PiecePicker::new(piece_len, total);
    let n = p.num_pieces();
    const PEERS: u64 = 6;
    const BAD: u64 = 5;
    let mut has: Vec<Vec<bool>> = (0..PEERS)
        .map(|k| (0..n).map(|_| k == 0 || r.gen_bool(0.4)).collect())
        .collect();
    p.peer_have_all(); // peer 0
    for (k, set) in has.iter().enumerate().skip(1) {
        p.peer_pieces_added((0..n).filter(|&i| set[i as usize]));
        let _ = k;
    }
    let mut inflight: Vec<Vec<Block>> = vec![Vec::new(); PEERS as usize];
    let mut ever_asked: Vec<HashSet<Block>> = vec![HashSet::new(); PEERS as usize];
    // Which peer delivered each block of the current attempt, to emulate hashing.
    let mut data: HashMap<Block, u64> = HashMap::new();
    let mut out = Vec::new();
    let mut steps = 0;
    while !p.is_complete() {
        steps += 1;
        assert!(steps < 200_000, "no progress");
        let k = r.gen_range(0..PEERS);
        let ku = k as usize;
        match r.gen_range(0..10) {
            0..=3 => {
                out.clear();
                let set = &has[ku];
                p.pick(k, set.as_slice(), r.gen_range(1..8), &mut r, &mut out);
                for b in &out {
                    assert!(set[b.piece as usize], "picked a piece the peer lacks");
                    assert!(!inflight[ku].contains(b), "{b:?} asked twice of peer {k}");
                    if !faults {
                        assert!(ever_asked[ku].insert(*b), "{b:?} asked again of {k}");
                    }
                    inflight[ku].push(*b);
                }
            }
            4..=8 if !inflight[ku].is_empty() => {
                let i = r.gen_range(0..inflight[ku].len());
                let b = inflight[ku].swap_remove(i);
                let rec = p.block_received(k, b);
                assert!(rec.solicited);
                assert!(
                    rec.first,
                    "outstanding requests are cancelled once received"
                );
                data.insert(b, k);
                cancels += rec.other_requesters.len() as u32;
                for other in &rec.other_requesters {
                    inflight[*other as usize].retain(|x| *x != b);
                }
                if rec.piece_complete {
                    let corrupt = (0..p.block_count(b.piece))
                        .any(|i| data.get(&p.block(b.piece, i).unwrap()) == Some(&BAD));
                    if faults && corrupt && r.gen_bool(0.5) {
                        let blamed = p.piece_failed(b.piece);
                        assert!(blamed.contains(&BAD));
                        failures += 1;
                    } else {
                        p.piece_verified(b.piece);
                    }
                }
            }
            9 if faults && !inflight[ku].is_empty() => match r.gen_range(0..3) {
                0 => {
                    let b = inflight[ku].swap_remove(0);
                    p.request_dropped(k, b);
                }
                1 => {
                    p.peer_choked(k);
                    inflight[ku].clear();
                }
                _ if k != 0 => {
                    p.peer_gone(k);
                    p.peer_pieces_removed((0..n).filter(|&i| has[ku][i as usize]));
                    inflight[ku].clear();
                    // Reconnects at once with a (possibly) different piece set.
                    has[ku] = (0..n).map(|_| r.gen_bool(0.5)).collect();
                    p.peer_pieces_added((0..n).filter(|&i| has[ku][i as usize]));
                }
                _ => {}
            },
            _ => {}
        }
        if steps % 97 == 0 {
            check_invariants(&p);
        }
    }
    check_invariants(&p);
    assert!(p.in_endgame() || p.is_complete());
    assert_eq!(p.missing_bytes(), 0);
    for i in 0..n {
        for j in 0..p.block_count(i) {
            assert!(
                data.contains_key(&p.block(i, j).unwrap()),
                "block {i}/{j} never received"
            );
        }
    }
    (cancels, failures)
}

#[test]
fn simulated_swarm_completes() {
    let (cancels, _) = (0..20)
        .map(|s| simulate(s, false))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert!(cancels > 0, "endgame duplicates were exercised");
}

#[test]
fn simulated_swarm_with_faults_completes() {
    let (cancels, failures) = (100..130)
        .map(|s| simulate(s, true))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert!(
        cancels > 0 && failures > 0,
        "{cancels} cancels, {failures} hash failures"
    );
}

#[test]
fn pieces_unavailable_counts_pieces_no_peer_has() {
    let mut p = PiecePicker::new(16 * KIB, 4 * 16 * KIB);
    assert_eq!(p.pieces_unavailable(), 4);
    let mut a = Bitfield::new(4);
    a.set(0);
    a.set(1);
    let mut b = Bitfield::new(4);
    b.set(1);
    b.set(2);
    p.peer_bitfield_added(&a);
    p.peer_bitfield_added(&b);
    assert_eq!(p.pieces_unavailable(), 1, "piece 3 is nowhere");
    p.peer_have(3);
    assert_eq!(p.pieces_unavailable(), 0, "a copy between them");
    check_invariants(&p);
    p.peer_bitfield_removed(&a);
    assert_eq!(
        p.pieces_unavailable(),
        1,
        "piece 0 left with its only holder"
    );
    // Our own pieces do not count: the question is what the peers hold.
    p.set_have(0);
    assert_eq!(p.pieces_unavailable(), 1);
    p.peer_have_all();
    assert_eq!(p.pieces_unavailable(), 0);
    p.peer_have_all_removed();
    assert_eq!(p.pieces_unavailable(), 1);
    check_invariants(&p);
}

mod deadline;
