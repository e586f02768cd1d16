//! The DHT node whole: two nodes face to face, and hundreds on a simulated network.

mod sim;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rand::Rng;

use super::*;
use sim::Net;

const HOP: Duration = Duration::from_millis(20);

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Feeds `bytes` from `from` to `node` and returns its answer (transaction `xy`),
/// dropping anything else it sends (pings of new nodes).
fn ask(node: &mut Dht, now: Instant, from: SocketAddr, bytes: &[u8]) -> Message {
    node.handle_input(now, from, bytes);
    let mut answer = None;
    while let Some((to, out)) = node.poll_transmit() {
        let m = Message::decode(&out).expect("valid output");
        if m.tid == b"xy" {
            assert_eq!(to, from);
            answer = Some(m);
        }
    }
    answer.expect("an answer")
}

fn get_peers(info_hash: [u8; 20]) -> Method {
    Method::GetPeers {
        info_hash,
        want: Want::default(),
    }
}

fn query(id: NodeId, method: Method) -> Vec<u8> {
    let body = Body::Query(Query { id, method });
    Message {
        tid: b"xy".to_vec(),
        body,
        ip: None,
    }
    .encode()
}

#[test]
fn tokens_gate_announces_and_implied_port_uses_the_source() {
    let now = Instant::now();
    let mut n = Dht::new(DhtConfig::default(), None, [3; 32], now);
    let me = NodeId([7; 20]);
    let ih = [5u8; 20];
    let m = ask(&mut n, now, local(4000), &query(me, get_peers(ih)));
    assert_eq!(m.tid, b"xy");
    assert_eq!(m.ip, Some(local(4000)));
    let Body::Response(r) = m.body else {
        panic!("{m:?}")
    };
    let token = r.token.expect("a token");
    assert!(r.values.is_empty());
    let announce = |token: Vec<u8>, implied_port| Method::AnnouncePeer {
        info_hash: ih,
        port: 7000,
        token,
        implied_port,
    };
    // A made-up token, and our token from another IP, are refused.
    let bad = ask(
        &mut n,
        now,
        local(4000),
        &query(me, announce(b"nope".to_vec(), false)),
    );
    assert_eq!(
        bad.body,
        Body::Error(krpc::code::PROTOCOL, "bad token".into())
    );
    let other_ip = SocketAddr::from(([127, 0, 0, 2], 4000));
    let bad = ask(
        &mut n,
        now,
        other_ip,
        &query(me, announce(token.clone(), false)),
    );
    assert!(matches!(bad.body, Body::Error(203, _)));
    // The right token stores the peer, on the source port when implied.
    let ok = ask(
        &mut n,
        now,
        local(4000),
        &query(me, announce(token.clone(), true)),
    );
    assert!(matches!(ok.body, Body::Response(_)));
    let m = ask(&mut n, now, local(4001), &query(me, get_peers(ih)));
    let Body::Response(r) = m.body else { panic!() };
    assert_eq!(r.values, vec![local(4000)]);
    // The peer itself is not told about itself.
    let get = query(me, get_peers(ih));
    let Body::Response(r) = ask(&mut n, now, local(4000), &get).body else {
        panic!()
    };
    assert!(r.values.is_empty());
    // Our own lookups report the peers stored here, too.
    let lid = n.get_peers(now, InfoHash(ih));
    let found = std::iter::from_fn(|| n.poll_event()).find_map(|e| match e {
        DhtEvent::Peers { lookup, peers } if lookup == lid => Some(peers),
        _ => None,
    });
    assert_eq!(found, Some(vec![local(4000)]));
    // The token outlives one rotation, not two.
    let later = now + token::ROTATE + Duration::from_secs(61);
    n.handle_timeout(later);
    let ok = ask(
        &mut n,
        later,
        local(4000),
        &query(me, announce(token.clone(), false)),
    );
    assert!(matches!(ok.body, Body::Response(_)));
    let much_later = later + token::ROTATE + Duration::from_secs(61);
    n.handle_timeout(much_later);
    let bad = ask(
        &mut n,
        much_later,
        local(4000),
        &query(me, announce(token, false)),
    );
    assert!(matches!(bad.body, Body::Error(203, _)));
}

#[test]
fn unknown_methods_get_204_and_bep42_keeps_liars_out() {
    let now = Instant::now();
    let mut n = Dht::new(DhtConfig::default(), None, [3; 32], now);
    let public = SocketAddr::from(([124, 31, 75, 21], 6881));
    let m = ask(
        &mut n,
        now,
        public,
        &query(NodeId([1; 20]), Method::Other("vote".into())),
    );
    assert!(matches!(m.body, Body::Error(204, _)));
    // Answered, but an id that does not match the public address stays out of the table.
    let m = ask(&mut n, now, public, &query(NodeId([1; 20]), Method::Ping));
    assert!(matches!(m.body, Body::Response(_)));
    assert!(n.nodes().is_empty());
    let valid = NodeId::bep42(Ipv4Addr::new(124, 31, 75, 21), 1, [0; 17]);
    ask(&mut n, now, public, &query(valid, Method::Ping));
    assert_eq!(n.nodes(), vec![(valid, public)]);
    // With enforcement off, anyone gets in.
    let config = DhtConfig {
        enforce_node_id: false,
        ..DhtConfig::default()
    };
    let mut lax = Dht::new(config, None, [4; 32], now);
    ask(&mut lax, now, public, &query(NodeId([1; 20]), Method::Ping));
    assert_eq!(lax.nodes().len(), 1);
}

#[test]
fn responses_count_only_from_the_address_queried() {
    let now = Instant::now();
    let mut a = Dht::new(DhtConfig::default(), None, [1; 32], now);
    let mut b = Dht::new(DhtConfig::default(), None, [2; 32], now);
    a.bootstrap(now, &[local(2)]);
    let (_, q) = a.poll_transmit().unwrap();
    b.handle_input(now, local(1), &q);
    let (_, answer) = b.poll_transmit().unwrap();
    a.handle_input(now, local(3), &answer);
    assert!(a.nodes().is_empty(), "spoofed source ignored");
    a.handle_input(now, local(2), &answer);
    assert_eq!(a.nodes().len(), 1);
    let pending = a.stats(now).pending;
    while a.poll_transmit().is_some() {}
    a.handle_input(now, local(2), &answer);
    assert_eq!(
        a.stats(now).pending,
        pending,
        "a replayed answer matches nothing"
    );
    assert!(a.poll_transmit().is_none());
}

#[test]
fn restored_nodes_are_used_for_lookups() {
    let now = Instant::now();
    let mut a = Dht::new(DhtConfig::default(), None, [1; 32], now);
    a.add_node(now, NodeId([9; 20]), local(9));
    assert_eq!(a.nodes(), vec![(NodeId([9; 20]), local(9))]);
    a.get_peers(now, InfoHash([0; 20]));
    assert_eq!(a.poll_transmit().map(|t| t.0), Some(local(9)));
}

#[test]
fn bootstrap_of_300_nodes_from_one() {
    let mut net = Net::new(320, 1, HOP);
    net.bootstrap_all(Duration::from_millis(50));
    let now = net.now;
    let sizes: Vec<usize> = net.nodes.iter().map(|n| n.stats(now).good).collect();
    let min = sizes.iter().min().copied().unwrap_or(0);
    let mean = sizes.iter().sum::<usize>() / sizes.len();
    println!(
        "bootstrap 320 nodes: table sizes min {min}, mean {mean}; {} datagrams",
        net.sent
    );
    assert!(
        min >= K,
        "every node knows at least K good nodes (min {min})"
    );
}

/// The `K` node indices closest to `target`.
fn true_closest(net: &Net, target: &[u8; 20]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..net.nodes.len()).collect();
    idx.sort_by_key(|&i| net.nodes[i].id().distance(target));
    idx.truncate(K);
    idx
}

#[test]
fn get_peers_finds_a_peer_announced_elsewhere_and_lookups_converge() {
    let mut net = Net::new(300, 2, HOP);
    net.bootstrap_all(Duration::from_millis(20));
    for round in 0..5u8 {
        let ih = InfoHash(net.rng.gen());
        let (a, b) = (net.rng.gen_range(1..300), net.rng.gen_range(1..300));
        let now = net.now;
        let la = net.nodes[a].announce(now, ih, Some(7000 + u16::from(round)));
        net.flush(a);
        assert!(net.run_until(Duration::from_secs(30), |n| n.done_at(a, la).is_some()));
        net.run_for(Duration::from_secs(1));
        // Converged: the announce reached most of the true K closest nodes.
        let now = net.now;
        let stored = true_closest(&net, &ih.0)
            .into_iter()
            .filter(|&i| !net.nodes[i].store.get(&ih.0, now, 1).is_empty())
            .count();
        assert!(
            stored >= K - 1,
            "announce reached {stored} of the {K} closest"
        );
        let lb = net.nodes[b].get_peers(now, ih);
        net.flush(b);
        assert!(net.run_until(Duration::from_secs(30), |n| n.done_at(b, lb).is_some()));
        let want = SocketAddr::new(net.addrs[a].ip(), 7000 + u16::from(round));
        assert_eq!(net.peers_of(b, lb), vec![want]);
    }
}

/// BEP 32: the same on an IPv6 DHT (compact nodes in `nodes6`, 18-byte values, BEP 42
/// ids from the /64).
#[test]
fn ipv6_dht_bootstraps_and_get_peers_finds_an_announced_peer() {
    let mut net = Net::new_in(Family::V6, 200, 5, HOP);
    net.bootstrap_all(Duration::from_millis(20));
    let now = net.now;
    let min = net.nodes.iter().map(|n| n.stats(now).good).min();
    assert!(min >= Some(K), "every node knows K good nodes ({min:?})");
    assert!(net
        .nodes
        .iter()
        .all(|n| n.nodes().iter().all(|(_, a)| a.is_ipv6())));
    for round in 0..3u16 {
        let ih = InfoHash(net.rng.gen());
        let (a, b) = (net.rng.gen_range(1..200), net.rng.gen_range(1..200));
        let now = net.now;
        let la = net.nodes[a].announce(now, ih, Some(7000 + round));
        net.flush(a);
        assert!(net.run_until(Duration::from_secs(30), |n| n.done_at(a, la).is_some()));
        net.run_for(Duration::from_secs(1));
        let now = net.now;
        let lb = net.nodes[b].get_peers(now, ih);
        net.flush(b);
        assert!(net.run_until(Duration::from_secs(30), |n| n.done_at(b, lb).is_some()));
        let want = SocketAddr::new(net.addrs[a].ip(), 7000 + round);
        assert!(want.is_ipv6());
        assert_eq!(net.peers_of(b, lb), vec![want]);
    }
}

/// A dual-stack pair: answers hold the families `want` asks for, taken from the DHT of
/// each family; a bootstrap asks for both and hands the other family's nodes out.
#[test]
fn dual_stack_answers_follow_want_and_hand_over_the_other_family() {
    let now = Instant::now();
    let dual = |family| DhtConfig {
        family,
        other_family: true,
        ..DhtConfig::default()
    };
    let v4_node: SocketAddr = "127.0.0.9:9".parse().unwrap();
    let v6_node: SocketAddr = "[::1]:9".parse().unwrap();
    let mut b4 = Dht::new(dual(Family::V4), None, [2; 32], now);
    let mut b6 = Dht::new(dual(Family::V6), None, [3; 32], now);
    b4.add_node(now, NodeId([4; 20]), v4_node);
    b6.add_node(now, NodeId([6; 20]), v6_node);
    b6.add_node(now, NodeId([7; 20]), v4_node);
    assert_eq!(
        b6.nodes().len(),
        1,
        "an IPv4 node stays out of the IPv6 table"
    );
    while b4.poll_transmit().is_some() || b6.poll_transmit().is_some() {}
    let me = NodeId([1; 20]);
    let from6: SocketAddr = "[::1]:4000".parse().unwrap();
    let ask6 = |b6: &mut Dht, b4: &Dht, want| {
        let find = query(
            me,
            Method::FindNode {
                target: [0; 20],
                want,
            },
        );
        b6.handle_input_with(now, from6, &find, Some(b4));
        let (to, out) = b6.poll_transmit().expect("an answer");
        assert_eq!(to, from6);
        let Body::Response(r) = Message::decode(&out).unwrap().body else {
            panic!()
        };
        while b6.poll_transmit().is_some() {}
        r
    };
    // No `want` over IPv6: nodes6 only.
    let r = ask6(&mut b6, &b4, Want::default());
    assert!(r.nodes.is_empty());
    assert!(r.nodes6.iter().any(|n| n.0 == NodeId([6; 20])));
    let r = ask6(&mut b6, &b4, Want { n4: true, n6: true });
    assert_eq!(
        r.nodes,
        vec![(NodeId([4; 20]), "127.0.0.9:9".parse().unwrap())]
    );
    assert!(!r.nodes6.is_empty());
    let r = ask6(
        &mut b6,
        &b4,
        Want {
            n4: true,
            n6: false,
        },
    );
    assert_eq!((r.nodes.len(), r.nodes6.len()), (1, 0));
    // Over IPv4 the default is nodes.
    let find = query(
        me,
        Method::FindNode {
            target: [0; 20],
            want: Want::default(),
        },
    );
    b4.handle_input_with(now, local(4000), &find, Some(&b6));
    let Body::Response(r) = Message::decode(&b4.poll_transmit().unwrap().1)
        .unwrap()
        .body
    else {
        panic!()
    };
    assert!(!r.nodes.is_empty() && r.nodes6.is_empty());
    // A dual-stack node bootstrapping over IPv6 asks for both and passes IPv4 nodes on.
    let mut a6 = Dht::new(dual(Family::V6), None, [5; 32], now);
    let b6_addr: SocketAddr = "[::1]:6881".parse().unwrap();
    a6.bootstrap(now, &[b6_addr, local(6881)]);
    let (to, q) = a6.poll_transmit().expect("a query");
    assert_eq!(to, b6_addr, "only addresses of its family");
    assert!(a6.poll_transmit().is_none());
    let Body::Query(Query {
        method: Method::FindNode { want, .. },
        ..
    }) = Message::decode(&q).unwrap().body
    else {
        panic!()
    };
    assert_eq!(want, Want { n4: true, n6: true });
    b6.handle_input_with(now, "[::1]:5000".parse().unwrap(), &q, Some(&b4));
    let (_, answer) = b6.poll_transmit().unwrap();
    a6.handle_input(now, b6_addr, &answer);
    let handed = std::iter::from_fn(|| a6.poll_event()).find_map(|e| match e {
        DhtEvent::OtherFamilyNodes { nodes } => Some(nodes),
        _ => None,
    });
    let handed = handed.expect("IPv4 nodes handed over");
    assert!(handed.contains(&(NodeId([4; 20]), v4_node)));
    assert!(handed.iter().all(|(_, a)| a.is_ipv4()));
    assert!(a6.nodes().iter().all(|(_, a)| a.is_ipv6()));
}

#[test]
fn unresponsive_nodes_time_out_and_lookups_still_end() {
    let mut net = Net::new(200, 3, HOP);
    net.bootstrap_all(Duration::from_millis(20));
    let ih = InfoHash(net.rng.gen());
    let now = net.now;
    let la = net.nodes[1].announce(now, ih, Some(7000));
    net.flush(1);
    assert!(net.run_until(Duration::from_secs(30), |n| n.done_at(1, la).is_some()));
    // A third of the network goes silent, and a tenth of datagrams are lost.
    for i in 10..200 {
        if i % 3 == 0 {
            net.down.insert(i);
        }
    }
    net.loss = 0.1;
    let now = net.now;
    let lb = net.nodes[2].get_peers(now, ih);
    net.flush(2);
    let timeout = DhtConfig::default().query_timeout;
    assert!(net.run_until(timeout * 10, |n| n.done_at(2, lb).is_some()));
    assert!(net.peers_of(2, lb).iter().any(|p| p.port() == 7000));
    // The silent nodes it asked failed once per unanswered query.
    net.run_for(timeout * 2);
    let failed: usize = net.nodes[2].table.counts(net.now).1;
    assert!(net.nodes[2].stats(net.now).pending == 0 || failed > 0);
    // After two failures a node is bad, and leaves the candidates.
    let down_known = net.nodes[2]
        .nodes()
        .iter()
        .filter(|(_, a)| net.down.iter().any(|&d| net.addrs[d] == *a))
        .count();
    let all_known = net.nodes[2].nodes().len();
    println!("node 2 knows {all_known} nodes, {down_known} of them down");
}

#[test]
fn lookup_time_in_a_500_node_dht_with_20ms_hops() {
    let mut net = Net::new(500, 4, HOP);
    net.bootstrap_all(Duration::from_millis(10));
    let mut ms = Vec::new();
    let mut found = 0;
    for _ in 0..50 {
        let ih = InfoHash(net.rng.gen());
        let a = net.rng.gen_range(1..500);
        let b = net.rng.gen_range(1..500);
        let now = net.now;
        let la = net.nodes[a].announce(now, ih, Some(7000));
        net.flush(a);
        net.run_until(Duration::from_secs(30), |n| n.done_at(a, la).is_some());
        net.run_for(Duration::from_millis(100));
        let start = net.now;
        let lb = net.nodes[b].get_peers(start, ih);
        net.flush(b);
        assert!(net.run_until(Duration::from_secs(30), |n| n.done_at(b, lb).is_some()));
        let end = net.done_at(b, lb).unwrap_or(start);
        ms.push((end - start).as_millis() as u64);
        found += usize::from(!net.peers_of(b, lb).is_empty());
    }
    ms.sort_unstable();
    let (median, max) = (ms[ms.len() / 2], ms[ms.len() - 1]);
    let rtt = 2 * HOP.as_millis() as u64;
    println!(
        "500-node DHT, {} ms per hop: get_peers median {median} ms ({} round trips), max {max} ms ({} round trips); peer found {found}/50",
        HOP.as_millis(),
        median / rtt,
        max / rtt
    );
    assert_eq!(found, 50);
}

proptest! {
    #[test]
    fn random_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let now = Instant::now();
        let mut n = Dht::new(DhtConfig::default(), None, [5; 32], now);
        n.bootstrap(now, &[local(2)]);
        n.handle_input(now, local(2), &bytes);
        n.handle_input(now, SocketAddr::from(([0u16; 8], 1)), &bytes);
        n.handle_timeout(now + Duration::from_secs(3600));
    }

    #[test]
    fn mutated_answers_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let now = Instant::now();
        let mut a = Dht::new(DhtConfig::default(), None, [1; 32], now);
        let mut b = Dht::new(DhtConfig::default(), None, [2; 32], now);
        b.add_node(now, NodeId([3; 20]), local(3));
        a.get_peers(now, InfoHash([0; 20]));
        a.bootstrap(now, &[local(2)]);
        while let Some((_, q)) = a.poll_transmit() {
            b.handle_input(now, local(1), &q);
        }
        while let Some((_, mut r)) = b.poll_transmit() {
            for (at, x) in &flips {
                let len = r.len();
                r[at % len] ^= x;
            }
            a.handle_input(now, local(2), &r);
        }
        a.handle_timeout(now + Duration::from_secs(10));
    }
}
