//! The exchange on simulated time: every `now` is an offset from one origin, every
//! transaction id is chosen by the test, and "the network" is the test handing
//! datagrams over (or not, for a lost one).

use std::net::SocketAddr;

use super::*;
use crate::ids::{InfoHash, PeerId};
use crate::tracker::AnnounceEvent;
use crate::udp_tracker::parse_request;

fn request() -> AnnounceRequest {
    let mut req = AnnounceRequest::new(InfoHash([1; 20]), PeerId([2; 20]), 6881);
    req.event = AnnounceEvent::Started;
    req.numwant = Some(80);
    req.key = Some("00c0ffee".into());
    req.left = 500;
    req
}

/// The simulated clock: `at(s)` is `s` seconds after the origin.
struct Clock(Instant);

impl Clock {
    fn new() -> Self {
        Clock(Instant::now())
    }

    fn at(&self, secs: u64) -> Instant {
        self.0 + Duration::from_secs(secs)
    }

    fn secs(&self, t: Instant) -> u64 {
        (t - self.0).as_secs()
    }
}

/// The request the machine wants sent, parsed.
fn sent(x: &mut AnnounceExchange) -> Request {
    parse_request(x.poll_transmit().expect("a datagram to send")).unwrap()
}

fn reply(r: Response, v6: bool) -> Vec<u8> {
    let mut b = Vec::new();
    r.write_for(v6, &mut b);
    b
}

fn connected(tid: u32, id: u64) -> Vec<u8> {
    reply(
        Response::Connect {
            transaction_id: tid,
            connection_id: id,
        },
        false,
    )
}

fn announced(tid: u32, peers: Vec<SocketAddr>, v6: bool) -> Vec<u8> {
    reply(
        Response::Announce {
            transaction_id: tid,
            interval: 900,
            leechers: 3,
            seeders: 4,
            peers,
        },
        v6,
    )
}

fn refused(tid: u32, message: &str) -> Vec<u8> {
    reply(
        Response::Error {
            transaction_id: tid,
            message: message.into(),
        },
        false,
    )
}

/// A fresh exchange without a cached id, connect sent with transaction id 100.
fn start(clock: &Clock) -> AnnounceExchange {
    AnnounceExchange::new(
        &request(),
        false,
        None,
        UdpTimeouts::default(),
        clock.at(0),
        100,
    )
}

/// A fresh exchange with cached id 7 expiring at `expires` seconds, announce sent with
/// transaction id 100.
fn start_cached(clock: &Clock, expires: u64) -> AnnounceExchange {
    let cached = Connection {
        id: 7,
        expires: clock.at(expires),
    };
    AnnounceExchange::new(
        &request(),
        false,
        Some(cached),
        UdpTimeouts::default(),
        clock.at(0),
        100,
    )
}

#[test]
fn connect_then_announce_fills_every_field() {
    let clock = Clock::new();
    let mut x = start(&clock);
    assert_eq!(
        sent(&mut x),
        Request::Connect {
            transaction_id: 100
        }
    );
    assert_eq!(x.poll_transmit(), None, "each datagram is yielded once");
    assert_eq!(x.connection(), None);
    x.handle_datagram(&connected(100, 99), clock.at(1), 200);
    assert_eq!(
        x.connection(),
        Some(Connection {
            id: 99,
            expires: clock.at(61)
        })
    );
    let Request::Announce(a) = sent(&mut x) else {
        panic!("expected an announce");
    };
    assert_eq!((a.transaction_id, a.connection_id), (200, 99));
    assert_eq!(
        (a.event, a.num_want, a.key),
        (AnnounceEvent::Started, Some(80), 0x00c0_ffee)
    );
    assert_eq!((a.port, a.left, a.ip), (6881, 500, Ipv4Addr::UNSPECIFIED));
    assert_eq!(
        (a.info_hash, a.peer_id),
        (InfoHash([1; 20]), PeerId([2; 20]))
    );
    assert!(x.poll_result().is_none());

    let peer: SocketAddr = "10.1.2.3:6000".parse().unwrap();
    x.handle_datagram(&announced(200, vec![peer], false), clock.at(2), 300);
    let r = x.poll_result().unwrap().unwrap();
    assert_eq!((r.interval, r.complete, r.incomplete), (900, 4, 3));
    assert_eq!(r.peers, vec![peer]);
    assert_eq!(x.poll_result(), None, "the result is yielded once");
    assert_eq!(x.poll_timeout(), None, "nothing left to wait for");
    assert_eq!(x.poll_transmit(), None);
    assert_eq!(x.connection().map(|c| c.id), Some(99), "kept for next time");
}

#[test]
fn ipv6_tracker_replies_carry_18_byte_peers() {
    let clock = Clock::new();
    let cached = Connection {
        id: 5,
        expires: clock.at(9),
    };
    let mut x = AnnounceExchange::new(
        &request(),
        true,
        Some(cached),
        UdpTimeouts::default(),
        clock.at(0),
        100,
    );
    let Request::Announce(a) = sent(&mut x) else {
        panic!("a live cached id skips the connect");
    };
    assert_eq!(a.connection_id, 5);
    let peer: SocketAddr = "[2001:db8::7]:6001".parse().unwrap();
    x.handle_datagram(&announced(100, vec![peer], true), clock.at(0), 200);
    assert_eq!(x.poll_result().unwrap().unwrap().peers, vec![peer]);
}

#[test]
fn retransmit_schedule_is_bep15_and_bounded_by_the_total() {
    let clock = Clock::new();
    let mut x = start(&clock);
    let first = x.poll_transmit().unwrap().to_vec();
    let mut sends = vec![0];
    let end = loop {
        let wake = x.poll_timeout().unwrap();
        // Waking early changes nothing.
        x.handle_timeout(wake - Duration::from_millis(1), 1);
        assert_eq!(x.poll_transmit(), None);
        x.handle_timeout(wake, 1);
        if let Some(result) = x.poll_result() {
            assert_eq!(result, Err(UdpClientError::Timeout));
            break wake;
        }
        assert_eq!(
            x.poll_transmit(),
            Some(&first[..]),
            "the same request again"
        );
        sends.push(clock.secs(wake));
    };
    // BEP 15: 15 * 2^n; bounded to 60 s in total.
    assert_eq!(sends, [0, 15, 45]);
    assert_eq!(clock.secs(end), 60);
    assert_eq!(x.poll_timeout(), None);

    // With room to run, the doubling goes on: 15, 30, 60, 120, 240 s apart.
    let long = UdpTimeouts {
        total: Duration::from_secs(600),
        ..UdpTimeouts::default()
    };
    let mut x = AnnounceExchange::new(&request(), false, None, long, clock.at(0), 100);
    let (mut sends, mut now) = (vec![], clock.at(0));
    loop {
        if x.poll_transmit().is_some() {
            sends.push(clock.secs(now));
        }
        let Some(wake) = x.poll_timeout() else { break };
        now = wake;
        x.handle_timeout(now, 1);
    }
    assert_eq!(sends, [0, 15, 45, 105, 225, 465]);
    assert_eq!(clock.secs(now), 600);
    assert_eq!(x.poll_result(), Some(Err(UdpClientError::Timeout)));
}

#[test]
fn a_lost_connect_is_sent_again_and_the_announce_follows() {
    let clock = Clock::new();
    let mut x = start(&clock);
    let connect = x.poll_transmit().unwrap().to_vec(); // lost on the way
    assert_eq!(x.poll_timeout(), Some(clock.at(15)));
    x.handle_timeout(clock.at(15), 111);
    assert_eq!(x.poll_transmit(), Some(&connect[..]), "same transaction id");
    x.handle_datagram(&connected(100, 42), clock.at(16), 200);
    let Request::Announce(a) = sent(&mut x) else {
        panic!("expected an announce");
    };
    assert_eq!((a.connection_id, a.transaction_id), (42, 200));
    // The announce starts its own back-off; the total bound still counts from 0.
    assert_eq!(x.poll_timeout(), Some(clock.at(31)));
    x.handle_datagram(&announced(200, vec![], false), clock.at(17), 300);
    assert!(matches!(x.poll_result(), Some(Ok(_))));
}

#[test]
fn a_lost_announce_is_sent_again() {
    let clock = Clock::new();
    let mut x = start(&clock);
    sent(&mut x);
    x.handle_datagram(&connected(100, 42), clock.at(0), 200);
    let announce = x.poll_transmit().unwrap().to_vec(); // lost on the way
    x.handle_timeout(clock.at(15), 333);
    assert_eq!(x.poll_transmit(), Some(&announce[..]));
    assert_eq!(x.poll_timeout(), Some(clock.at(45)));
    // A reply to the first copy and one to the second look alike: either will do.
    x.handle_datagram(&announced(200, vec![], false), clock.at(16), 400);
    assert!(matches!(x.poll_result(), Some(Ok(_))));
    assert_eq!(x.connection().map(|c| c.id), Some(42));
}

#[test]
fn an_expired_connection_id_is_fetched_anew_on_retransmission() {
    let clock = Clock::new();
    let mut x = start_cached(&clock, 20);
    assert!(matches!(sent(&mut x), Request::Announce(a) if a.connection_id == 7));
    x.handle_timeout(clock.at(15), 150); // id still valid: the same announce
    assert!(matches!(sent(&mut x), Request::Announce(a) if a.transaction_id == 100));
    assert!(x.connection().is_some());
    x.handle_timeout(clock.at(45), 450); // id expired at 20
    assert_eq!(
        sent(&mut x),
        Request::Connect {
            transaction_id: 450
        }
    );
    assert_eq!(x.connection(), None, "an expired id is not worth keeping");
    // The back-off goes on rather than restarting; the total bound still holds.
    assert_eq!(x.poll_timeout(), Some(clock.at(60)));
    x.handle_datagram(&connected(450, 8), clock.at(46), 460);
    assert!(
        matches!(sent(&mut x), Request::Announce(a) if (a.connection_id, a.transaction_id) == (8, 460))
    );
    assert_eq!(x.connection().map(|c| c.expires), Some(clock.at(106)));

    // An id already expired when the exchange starts is not even tried.
    let mut x = start_cached(&clock, 0);
    assert_eq!(
        sent(&mut x),
        Request::Connect {
            transaction_id: 100
        }
    );
    assert_eq!(x.connection(), None);
}

#[test]
fn replies_with_another_transaction_id_and_garbage_are_ignored() {
    let clock = Clock::new();
    let mut x = start(&clock);
    sent(&mut x);
    for junk in [
        connected(101, 1),
        refused(99, "not for you"),
        vec![1, 2, 3],
        vec![],
    ] {
        x.handle_datagram(&junk, clock.at(1), 5);
        assert_eq!(x.poll_transmit(), None, "{junk:?}");
        assert_eq!(x.poll_result(), None, "{junk:?}");
    }
    // An unknown action with our id does not parse: the exchange ends.
    x.handle_datagram(&[0, 0, 0, 9, 0, 0, 0, 100], clock.at(1), 5);
    assert!(matches!(
        x.poll_result(),
        Some(Err(UdpClientError::Malformed(_)))
    ));
}

#[test]
fn a_late_reply_to_the_connect_is_ignored_once_announcing() {
    let clock = Clock::new();
    let mut x = start(&clock);
    sent(&mut x);
    x.handle_timeout(clock.at(15), 1);
    sent(&mut x);
    x.handle_datagram(&connected(100, 42), clock.at(16), 200);
    sent(&mut x);
    // The reply to the retransmitted connect arrives after the first one.
    x.handle_datagram(&connected(100, 43), clock.at(16), 300);
    assert_eq!(x.poll_transmit(), None);
    assert_eq!(x.poll_result(), None);
    assert_eq!(x.connection().map(|c| c.id), Some(42));
    // Our id with the wrong action is the tracker's mistake, not noise.
    x.handle_datagram(&connected(200, 44), clock.at(16), 400);
    assert_eq!(
        x.poll_result(),
        Some(Err(UdpClientError::WrongAction("connect")))
    );
    // Over: later datagrams and timeouts change nothing.
    x.handle_datagram(&announced(200, vec![], false), clock.at(17), 500);
    x.handle_timeout(clock.at(100), 600);
    assert_eq!((x.poll_result(), x.poll_transmit()), (None, None));
}

#[test]
fn an_error_reply_surfaces_the_message_and_keeps_a_fresh_id() {
    let clock = Clock::new();
    let mut x = start(&clock);
    sent(&mut x);
    x.handle_datagram(&connected(100, 1), clock.at(0), 200);
    sent(&mut x);
    x.handle_datagram(&refused(200, "unregistered torrent"), clock.at(0), 300);
    let err = x.poll_result().unwrap().unwrap_err();
    assert_eq!(err, UdpClientError::Failure("unregistered torrent".into()));
    assert_eq!(
        err.to_string(),
        "tracker refused the request: unregistered torrent"
    );
    assert_eq!(x.connection().map(|c| c.id), Some(1));
    assert_eq!(x.poll_transmit(), None);
}

#[test]
fn a_refused_cached_id_is_replaced_once() {
    let clock = Clock::new();
    let mut x = start_cached(&clock, 50);
    sent(&mut x);
    x.handle_datagram(&refused(100, "bad connection id"), clock.at(1), 200);
    assert_eq!(x.connection(), None, "a refused id is forgotten");
    assert_eq!(
        sent(&mut x),
        Request::Connect {
            transaction_id: 200
        }
    );
    assert_eq!(x.poll_result(), None);
    x.handle_datagram(&connected(200, 8), clock.at(1), 300);
    assert!(matches!(sent(&mut x), Request::Announce(a) if a.connection_id == 8));
    // The fresh id is refused too: that is the tracker's answer.
    x.handle_datagram(&refused(300, "bad connection id"), clock.at(1), 400);
    assert!(matches!(
        x.poll_result(),
        Some(Err(UdpClientError::Failure(_)))
    ));
}

#[test]
fn a_truncated_reply_with_our_id_fails_and_one_without_is_ignored() {
    let clock = Clock::new();
    let peer: SocketAddr = "10.1.2.3:6000".parse().unwrap();
    let full = announced(100, vec![peer], false);
    for n in 0..full.len() {
        let mut x = start_cached(&clock, 50);
        sent(&mut x);
        x.handle_datagram(&full[..n], clock.at(0), 200);
        let result = x.poll_result();
        match n {
            // Too short to carry a transaction id: could be anyone's.
            0..=7 => assert_eq!(result, None, "{n}"),
            // Cut right after the fixed part: a valid reply listing no peers.
            20 => assert!(matches!(&result, Some(Ok(r)) if r.peers.is_empty())),
            // Fixed part cut, or a peer cut short.
            _ => assert!(
                matches!(&result, Some(Err(UdpClientError::Malformed(_)))),
                "{n}: {result:?}"
            ),
        }
    }
    let connect = connected(100, 42);
    for n in 8..connect.len() {
        let mut x = start(&clock);
        sent(&mut x);
        x.handle_datagram(&connect[..n], clock.at(0), 200);
        let err = x.poll_result().unwrap().unwrap_err();
        assert!(err
            .to_string()
            .starts_with("tracker sent a malformed reply"));
    }
}

#[test]
fn a_scrape_reply_to_an_announce_is_the_wrong_action() {
    let clock = Clock::new();
    let mut x = start(&clock);
    sent(&mut x);
    let scrape = reply(
        Response::Scrape {
            transaction_id: 100,
            stats: vec![],
        },
        false,
    );
    x.handle_datagram(&scrape, clock.at(0), 200);
    let err = x.poll_result().unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        "tracker answered with the wrong action: scrape"
    );
}

#[test]
fn keys() {
    assert_eq!(key_number(Some("00c0ffee")), 0x00c0_ffee);
    assert_eq!(key_number(None), 0);
    let hashed = key_number(Some("not hex at all"));
    assert_eq!(hashed, key_number(Some("not hex at all")));
    assert_ne!(hashed, key_number(Some("not hex at all!")));
}

#[test]
fn absurd_timeouts_do_not_overflow() {
    let clock = Clock::new();
    let forever = UdpTimeouts {
        first: Duration::MAX,
        total: Duration::MAX,
        connection_ttl: Duration::MAX,
    };
    let mut x = AnnounceExchange::new(&request(), false, None, forever, clock.at(0), 1);
    sent(&mut x);
    let wake = x.poll_timeout().unwrap();
    assert!(wake > clock.at(3600));
    x.handle_datagram(&connected(1, 2), clock.at(0), 3);
    assert!(x.connection().unwrap().is_live(clock.at(3600)));
}

/// Feeds `datagrams` to an exchange in each of its states (connecting, announcing with
/// a fresh id, announcing with a cached one, over IPv6), with timeouts in between; it
/// must never panic, and once over it must stay over.
fn feed_everywhere(datagrams: &[Vec<u8>]) {
    let clock = Clock::new();
    for (cached, v6) in [(false, false), (true, false), (true, true), (false, true)] {
        let c = cached.then(|| Connection {
            id: 7,
            expires: clock.at(30),
        });
        let mut x =
            AnnounceExchange::new(&request(), v6, c, UdpTimeouts::default(), clock.at(0), 100);
        let mut now = clock.at(0);
        let mut over = false;
        for (i, d) in datagrams.iter().enumerate() {
            x.handle_datagram(d, now, 100);
            if i % 3 == 2 {
                now += Duration::from_secs(20);
                x.handle_timeout(now, 100);
            }
            let _ = x.poll_transmit();
            if over {
                assert_eq!(x.poll_result(), None);
                assert_eq!(x.poll_timeout(), None);
            }
            over |= x.poll_result().is_some();
        }
    }
}

proptest::proptest! {
    #[test]
    fn random_datagrams_never_panic(
        datagrams in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), 0..12)
    ) {
        feed_everywhere(&datagrams);
    }

    #[test]
    fn mutated_replies_with_our_ids_never_panic(edits in crate::smoke::edits(), which in 0usize..4) {
        // Transaction id 100 throughout, so mutated replies reach every branch.
        let peer: SocketAddr = "[2001:db8::7]:6001".parse().unwrap();
        let replies = [
            connected(100, 42),
            announced(100, vec![peer, "10.0.0.1:1".parse().unwrap()], which % 2 == 0),
            refused(100, "bad connection id"),
            reply(Response::Scrape { transaction_id: 100, stats: vec![] }, false),
        ];
        let mutated = crate::smoke::mutate(&replies[which], &edits);
        feed_everywhere(&[replies[0].clone(), mutated.clone(), mutated, replies[1].clone()]);
    }
}
