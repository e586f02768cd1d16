//! Stream windows (deadline order, duplicates after a timeout) and download order.

use std::time::{Duration, Instant};

use super::super::*;
use super::{all, check_invariants, pick, KIB};

/// Ten one-block pieces; every piece but 7 is at three peers, piece 7 at one.
fn ten_pieces() -> PiecePicker {
    let mut p = PiecePicker::new(16 * KIB, 10 * 16 * KIB);
    for _ in 0..3 {
        p.peer_pieces_added((0..10).filter(|&i| i != 7));
    }
    p.peer_have(7);
    p
}

fn pieces(blocks: &[Block]) -> Vec<u32> {
    blocks.iter().map(|b| b.piece).collect()
}

#[test]
fn deadline_pieces_beat_rarest_first() {
    let mut p = ten_pieces();
    p.set_stream_window(1, 4, 5);
    assert!(p.has_stream_windows());
    let first = pick(&mut p, 9, &all, 3);
    assert_eq!(pieces(&first), vec![4, 5, 7], "window, then the rarest");
    check_invariants(&p);
    p.clear_stream(1);
    assert!(!p.has_stream_windows());
}

#[test]
fn a_window_is_served_earliest_piece_first_and_skips_had_pieces() {
    let mut p = ten_pieces();
    p.set_have(2);
    p.set_stream_window(1, 2, 8);
    let order = pieces(&pick(&mut p, 9, &all, 6));
    assert_eq!(order, vec![3, 4, 5, 6, 7, 8]);
    // Only pieces the peer has.
    let mut p = ten_pieces();
    p.set_stream_window(1, 0, 9);
    let odd = |i: u32| i % 2 == 1;
    assert_eq!(pieces(&pick(&mut p, 9, &odd, 3)), vec![1, 3, 5]);
    check_invariants(&p);
}

#[test]
fn several_windows_interleave_by_deadline() {
    let mut p = ten_pieces();
    p.set_stream_window(1, 0, 2);
    p.set_stream_window(2, 5, 7);
    let order = pieces(&pick(&mut p, 9, &all, 6));
    assert_eq!(order, vec![0, 5, 1, 6, 2, 7]);
    // Moving a window replaces it.
    p.set_stream_window(1, 8, 9);
    assert_eq!(pieces(&pick(&mut p, 9, &all, 2)), vec![8, 9]);
    check_invariants(&p);
}

#[test]
fn a_deadline_piece_held_by_a_slow_peer_is_also_asked_of_another_after_a_timeout() {
    // Pieces of four blocks; piece 2 stays unrequested, so this is not endgame.
    let mut p = PiecePicker::new(64 * KIB, 3 * 64 * KIB);
    p.peer_pieces_added([0, 1, 2]);
    p.peer_pieces_added([0, 1, 2]);
    let only_0 = |i: u32| i == 0;
    let t0 = Instant::now();
    p.set_clock(t0);
    p.set_stream_window(1, 0, 0);
    let slow = pick(&mut p, 1, &all, 4);
    assert_eq!(slow.len(), 4);
    assert!(slow.iter().all(|b| b.piece == 0));
    // The second peer gets nothing of piece 0 yet: it starts piece 1.
    let other = pick(&mut p, 2, &|i| i != 2, 4);
    assert!(other.iter().all(|b| b.piece == 1), "{other:?}");
    p.set_clock(t0 + DUPLICATE_AFTER / 2);
    assert!(
        pick(&mut p, 3, &only_0, 4).is_empty(),
        "too early for duplicates"
    );
    p.set_clock(t0 + DUPLICATE_AFTER + Duration::from_millis(1));
    let dup = pick(&mut p, 3, &only_0, 8);
    assert_eq!(dup, slow, "every block of the deadline piece, once");
    check_invariants(&p);
    // A block arriving from the helper cancels the slow peer's request.
    let r = p.block_received(3, slow[0]);
    assert!(r.first && r.solicited);
    assert_eq!(r.other_requesters.as_slice(), &[1]);
    // No third requester for a deadline block.
    assert!(pick(&mut p, 4, &only_0, 8).is_empty());
    check_invariants(&p);
}

#[test]
fn without_a_clock_no_duplicates() {
    let mut p = PiecePicker::new(64 * KIB, 2 * 64 * KIB);
    p.set_stream_window(1, 0, 0);
    assert_eq!(pick(&mut p, 1, &all, 4).len(), 4);
    assert!(pick(&mut p, 2, &|i| i == 0, 4).is_empty());
}

#[test]
fn sequential_order_takes_the_lowest_missing_piece() {
    let mut p = ten_pieces();
    p.set_order(DownloadOrder::Sequential);
    assert_eq!(p.order(), DownloadOrder::Sequential);
    p.set_have(0);
    let order: Vec<u32> = (0..9).map(|_| pick(&mut p, 9, &all, 1)[0].piece).collect();
    assert_eq!(order, vec![1, 2, 3, 4, 5, 6, 7, 8, 9]);
    check_invariants(&p);
}

#[test]
fn sequential_order_respects_priority_and_the_peers_pieces() {
    let mut p = ten_pieces();
    p.set_order(DownloadOrder::Sequential);
    p.set_priority(6, Priority::High);
    p.set_priority(0, Priority::Low);
    let even = |i: u32| i % 2 == 0;
    let order: Vec<u32> = (0..5).map(|_| pick(&mut p, 9, &even, 1)[0].piece).collect();
    assert_eq!(order, vec![6, 2, 4, 8, 0]);
    // A piece that failed its hash goes back and is the lowest again.
    let mut p = ten_pieces();
    p.set_order(DownloadOrder::Sequential);
    let b = pick(&mut p, 9, &all, 1)[0];
    assert_eq!(b.piece, 0);
    assert!(p.block_received(9, b).piece_complete);
    p.piece_failed(0);
    assert_eq!(pick(&mut p, 9, &all, 1)[0].piece, 0);
    check_invariants(&p);
}

#[test]
fn first_and_last_pieces_come_first() {
    let mut p = ten_pieces();
    // Two files: pieces 0-3 and 4-9; piece 4 is already had.
    p.set_have(4);
    p.set_first_last(vec![0, 3, 4, 9, 42]);
    assert!(p.first_last());
    let order: Vec<u32> = (0..4).map(|_| pick(&mut p, 9, &all, 1)[0].piece).collect();
    assert_eq!(&order[..3], &[0, 3, 9]);
    assert_eq!(order[3], 7, "then rarest first");
    // With sequential order the rest goes in order.
    let mut p = ten_pieces();
    p.set_order(DownloadOrder::Sequential);
    p.set_first_last(vec![0, 9]);
    let order: Vec<u32> = (0..4).map(|_| pick(&mut p, 9, &all, 1)[0].piece).collect();
    assert_eq!(order, vec![0, 9, 1, 2]);
    p.set_first_last(Vec::new());
    assert!(!p.first_last());
    check_invariants(&p);
}

#[test]
fn unwanted_pieces_in_a_window_are_not_requested() {
    let mut p = ten_pieces();
    p.set_wanted(1, false);
    p.set_stream_window(1, 0, 2);
    assert_eq!(pieces(&pick(&mut p, 9, &all, 2)), vec![0, 2]);
    check_invariants(&p);
}
