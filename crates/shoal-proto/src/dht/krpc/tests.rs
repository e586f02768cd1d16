use super::*;
use proptest::prelude::*;

fn q(method: Method) -> Message {
    Message {
        tid: b"aa".to_vec(),
        body: Body::Query(Query {
            id: NodeId(*b"abcdefghij0123456789"),
            method,
        }),
        ip: None,
    }
}

/// The examples of BEP 5, byte for byte.
#[test]
fn bep5_examples() {
    let ping = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
    assert_eq!(q(Method::Ping).encode(), ping);
    assert_eq!(Message::decode(ping).unwrap(), q(Method::Ping));
    let find = b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe";
    let m = q(Method::FindNode {
        target: *b"mnopqrstuvwxyz123456",
        want: Want::default(),
    });
    assert_eq!(m.encode(), find);
    let ann = b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe";
    let m = q(Method::AnnouncePeer {
        info_hash: *b"mnopqrstuvwxyz123456",
        port: 6881,
        token: b"aoeusnth".to_vec(),
        implied_port: true,
    });
    assert_eq!(m.encode(), ann);
    assert_eq!(Message::decode(ann).unwrap(), m);
    let err = b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee";
    let m = Message::decode(err).unwrap();
    assert_eq!(m.body, Body::Error(201, "A Generic Error Ocurred".into()));
    assert_eq!(m.encode(), err);
    let values = b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re";
    let m = Message::decode(values).unwrap();
    let Body::Response(r) = &m.body else { panic!() };
    assert_eq!(r.values.len(), 2);
    assert_eq!(r.token.as_deref(), Some(&b"aoeusnth"[..]));
    assert_eq!(m.encode(), values);
}

#[test]
fn nodes_round_trip_and_bounds() {
    let nodes: Vec<_> = (0..40u8)
        .map(|i| {
            (
                NodeId([i; 20]),
                SocketAddrV4::new(Ipv4Addr::new(1, 2, 3, i), 6881),
            )
        })
        .collect();
    let m = Message {
        tid: vec![1, 2],
        body: Body::Response(Response {
            id: NodeId([9; 20]),
            nodes: nodes.clone(),
            ..Response::default()
        }),
        ip: Some(SocketAddr::from((Ipv4Addr::new(5, 6, 7, 8), 9))),
    };
    let back = Message::decode(&m.encode()).unwrap();
    let Body::Response(r) = back.body else {
        panic!()
    };
    assert_eq!(r.nodes, nodes[..MAX_NODES]);
    assert_eq!(back.ip, m.ip);
}

/// BEP 32: `want` in queries, `nodes6` and 18-byte `values` in answers.
#[test]
fn bep32_want_nodes6_and_values6() {
    let both = Want { n4: true, n6: true };
    let find = b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz1234564:wantl2:n42:n6ee1:q9:find_node1:t2:aa1:y1:qe";
    let m = q(Method::FindNode {
        target: *b"mnopqrstuvwxyz123456",
        want: both,
    });
    assert_eq!(m.encode(), find);
    assert_eq!(Message::decode(find).unwrap(), m);
    // Unknown strings and non-strings are ignored; a `want` that is no list is absent.
    let odd = b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:wantl2:n5i3e2:n6ee1:q9:get_peers1:t2:aa1:y1:qe";
    let Body::Query(qr) = Message::decode(odd).unwrap().body else {
        panic!()
    };
    let n6 = Want {
        n4: false,
        n6: true,
    };
    assert_eq!(
        qr.method,
        Method::GetPeers {
            info_hash: *b"mnopqrstuvwxyz123456",
            want: n6
        }
    );
    let flat = b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:want2:n4e1:q9:get_peers1:t2:aa1:y1:qe";
    let Body::Query(qr) = Message::decode(flat).unwrap().body else {
        panic!()
    };
    assert_eq!(
        qr.method,
        Method::GetPeers {
            info_hash: *b"mnopqrstuvwxyz123456",
            want: Want::default()
        }
    );

    let v6: SocketAddrV6 = "[2001:db8::7]:6881".parse().unwrap();
    let peer6: SocketAddr = "[2001:db8::9]:51413".parse().unwrap();
    let peer4: SocketAddr = "1.2.3.4:80".parse().unwrap();
    let r = Response {
        id: NodeId([9; 20]),
        nodes: vec![(NodeId([1; 20]), "5.6.7.8:9".parse().unwrap())],
        nodes6: vec![(NodeId([2; 20]), v6)],
        values: vec![peer6, peer4],
        token: Some(b"tok".to_vec()),
    };
    let m = Message {
        tid: b"aa".to_vec(),
        body: Body::Response(r.clone()),
        ip: Some("[2001:db8::1]:4000".parse().unwrap()),
    };
    let bytes = m.encode();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("d2:ip18:"), "{text}");
    assert!(text.contains("5:nodes26:"), "{text}");
    assert!(text.contains("6:nodes638:"), "{text}");
    assert!(text.contains("6:valuesl18:"), "{text}");
    assert_eq!(Message::decode(&bytes).unwrap(), m);
    // A nodes6 string that is no multiple of 38 is an error, as for nodes.
    let bad = b"d1:rd2:id20:abcdefghij01234567896:nodes65:abcdee1:t2:aa1:y1:re";
    assert_eq!(Message::decode(bad), Err(KrpcError::Invalid("nodes6")));
    // Values of other lengths are skipped, hybrid lists parsed entry by entry.
    let mixed = b"d1:rd2:id20:abcdefghij01234567896:valuesl6:axje.u3:abc18:0123456789abcdef..ee1:t2:aa1:y1:re";
    let Body::Response(r) = Message::decode(mixed).unwrap().body else {
        panic!()
    };
    assert_eq!(r.values.len(), 2);
    assert!(r.values[0].is_ipv4() && r.values[1].is_ipv6());
}

#[test]
fn nodes6_are_bounded() {
    let nodes6: Vec<_> = (0..40u16)
        .map(|i| {
            let ip = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i);
            (NodeId([i as u8; 20]), SocketAddrV6::new(ip, 6881, 0, 0))
        })
        .collect();
    let m = Message {
        tid: vec![1],
        body: Body::Response(Response {
            id: NodeId([9; 20]),
            nodes6: nodes6.clone(),
            ..Response::default()
        }),
        ip: None,
    };
    let Body::Response(r) = Message::decode(&m.encode()).unwrap().body else {
        panic!()
    };
    assert_eq!(r.nodes6, nodes6[..MAX_NODES]);
    assert!(r.nodes.is_empty());
}

#[test]
fn malformed_are_errors() {
    for bad in [
        &b"le"[..],
        b"d1:t2:aa1:y1:qe",
        b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",
        b"d1:rd2:id20:abcdefghij01234567895:nodes3:abce1:t2:aa1:y1:re",
        b"d1:t2:aa1:y1:xe",
        b"d1:ad2:id20:abcdefghij01234567894:porti70000e5:token1:x9:info_hash20:mnopqrstuvwxyz123456e1:q13:announce_peer1:t2:aa1:y1:qe",
    ] {
        assert!(Message::decode(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn every_prefix_of_a_valid_message_is_safe() {
    let m = q(Method::GetPeers {
        info_hash: [7; 20],
        want: Want { n4: true, n6: true },
    })
    .encode();
    for n in 0..m.len() {
        assert!(Message::decode(&m[..n]).is_err());
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Message::decode(&b);
    }

    #[test]
    fn queries_round_trip(id in any::<[u8; 20]>(), t in any::<[u8; 20]>(), port in any::<u16>(),
                          tok in proptest::collection::vec(any::<u8>(), 0..20), implied in any::<bool>()) {
        let want = Want { n4: implied, n6: port % 2 == 0 };
        for method in [Method::Ping, Method::FindNode { target: t, want }, Method::GetPeers { info_hash: t, want },
                       Method::AnnouncePeer { info_hash: t, port, token: tok.clone(), implied_port: implied }] {
            let m = Message { tid: tok.clone(), body: Body::Query(Query { id: NodeId(id), method }), ip: None };
            prop_assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        }
    }
}
