use super::*;
use proptest::prelude::*;

const SKEY: InfoHash = InfoHash([0x5a; 20]);

fn secrets(seed: u8, pad_key: usize, pad_crypto: usize) -> Secrets {
    let mut private_key = [0u8; PRIVATE_LEN];
    for (i, b) in private_key.iter_mut().enumerate() {
        *b = seed.wrapping_mul(31).wrapping_add(i as u8 * 7 + 1);
    }
    Secrets {
        private_key,
        pad_key: vec![seed ^ 0x33; pad_key],
        pad_crypto: vec![seed ^ 0x44; pad_crypto],
    }
}

fn lookup(h: &[u8; 20]) -> Option<InfoHash> {
    (*h == req2_hash(&SKEY)).then_some(SKEY)
}

type Lookup = fn(&[u8; 20]) -> Option<InfoHash>;

/// Both sides of a finished handshake and the bytes each sent.
struct Run {
    a: Established,
    b: Established,
    a_sent: Vec<u8>,
    b_sent: Vec<u8>,
}

/// Runs A against B, delivering bytes `chunk` at a time; B appends `b_payload`
/// (encrypted under its method) to its last handshake message as a real receiver's
/// first payload would.
fn run(
    sa: Secrets,
    sb: Secrets,
    provide: Methods,
    accept: Methods,
    ia: &[u8],
    chunk: usize,
    b_payload: &[u8],
) -> Result<Run, MseError> {
    let mut a = Initiator::new(sa, SKEY, provide, ia.to_vec())?;
    let mut b = Some(Receiver::new(sb, accept, lookup as Lookup));
    let mut b_est = None;
    let (mut a_sent, mut b_sent) = (Vec::new(), Vec::new());
    let mut a_done = false;
    for _ in 0..100 {
        let out = a.take_output();
        a_sent.extend_from_slice(&out);
        let mut reply = Vec::new();
        if let Some(mut rx) = b.take() {
            let mut done = false;
            for c in out.chunks(chunk) {
                done = rx.handle_input(c)? == Progress::Done;
            }
            reply = rx.take_output();
            if done {
                let mut est = rx.finish().expect("b finished");
                let mut payload = b_payload.to_vec();
                if est.method == Method::Rc4 {
                    est.encrypt.apply(&mut payload);
                }
                reply.extend_from_slice(&payload);
                b_est = Some(est);
            } else {
                b = Some(rx);
            }
        }
        b_sent.extend_from_slice(&reply);
        for c in reply.chunks(chunk) {
            a_done = a.handle_input(c)? == Progress::Done;
        }
        if a_done && b_est.is_some() {
            break;
        }
    }
    assert!(a_done, "handshake did not finish");
    Ok(Run {
        a: a.finish().expect("a finished"),
        b: b_est.expect("b finished"),
        a_sent,
        b_sent,
    })
}

/// Pads of each length class: none, one byte, a typical length, the maximum, and too
/// long (cut to 512).
const PADS: [usize; 5] = [0, 1, 200, 512, 700];

#[test]
fn round_trips_every_pad_class_and_method() {
    let ia = b"\x13BitTorrent protocol and the rest of a handshake";
    let combos = [
        (Methods::BOTH, Methods::BOTH, Method::Rc4),
        (Methods::BOTH, Methods::PLAINTEXT, Method::Plaintext),
        (Methods::RC4, Methods::BOTH, Method::Rc4),
        (Methods::PLAINTEXT, Methods::BOTH, Method::Plaintext),
    ];
    let mut n = 0u8;
    for (provide, accept, expect) in combos {
        for (i, &pk) in PADS.iter().enumerate() {
            let pc = PADS[(i + 2) % PADS.len()];
            for chunk in [1, 13, 4096] {
                n = n.wrapping_add(1);
                let payload = b"payload from B";
                let r = run(
                    secrets(n, pk, pc),
                    secrets(n ^ 0x80, PADS[(i + 1) % 5], PADS[(i + 3) % 5]),
                    provide,
                    accept,
                    ia,
                    chunk,
                    payload,
                )
                .unwrap();
                assert_eq!((r.a.method, r.b.method), (expect, expect));
                assert_eq!(r.b.skey, SKEY);
                assert_eq!(r.b.rest, ia, "B gets IA, decrypted");
                assert_eq!(r.a.rest, payload, "A gets B's first payload, decrypted");
                check_payload(r.a, r.b);
            }
        }
    }
}

/// Payload both ways after the handshake: RC4 continues the handshake's keystreams.
fn check_payload(mut a: Established, mut b: Established) {
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    send(&mut a, &mut b, &data);
    send(&mut b, &mut a, &data);
}

fn send(from: &mut Established, to: &mut Established, data: &[u8]) {
    let mut wire = data.to_vec();
    if from.method == Method::Rc4 {
        from.encrypt.apply(&mut wire);
        assert_ne!(wire, data);
        to.decrypt.apply(&mut wire);
    }
    assert_eq!(wire, data);
}

#[test]
fn empty_ia_and_plaintext_payload_pass_through() {
    let r = run(
        secrets(1, 0, 0),
        secrets(2, 0, 0),
        Methods::PLAINTEXT,
        Methods::PLAINTEXT,
        b"",
        4096,
        b"clear",
    )
    .unwrap();
    assert!(r.b.rest.is_empty());
    assert_eq!(r.a.rest, b"clear");
    // The payload is not encrypted: it is the last bytes B sent.
    assert!(r.b_sent.ends_with(b"clear"));
}

#[test]
fn the_handshake_hides_the_bittorrent_banner() {
    let ia = b"\x13BitTorrent protocol";
    let r = run(
        secrets(3, 0, 0),
        secrets(4, 0, 0),
        Methods::BOTH,
        Methods::BOTH,
        ia,
        4096,
        b"",
    )
    .unwrap();
    assert!(!r.a_sent.windows(ia.len()).any(|w| w == ia));
}

#[test]
fn unknown_torrent_and_method_mismatch_are_refused() {
    let mut a = Initiator::new(secrets(5, 3, 3), InfoHash([1; 20]), Methods::BOTH, vec![]).unwrap();
    let mut b = Receiver::new(secrets(6, 3, 3), Methods::BOTH, lookup as Lookup);
    b.handle_input(&a.take_output()).unwrap();
    a.handle_input(&b.take_output()).unwrap();
    assert_eq!(
        b.handle_input(&a.take_output()),
        Err(MseError::UnknownTorrent)
    );

    let e = run(
        secrets(7, 0, 0),
        secrets(8, 0, 0),
        Methods::PLAINTEXT,
        Methods::RC4,
        b"",
        4096,
        b"",
    );
    assert!(matches!(
        e,
        Err(MseError::NoCommonMethod {
            offered: 1,
            accepted: 2
        })
    ));
}

#[test]
fn an_unoffered_select_is_refused() {
    // A offers RC4 only; a man in the middle flips A's offer to "both" (flipping a
    // ciphertext bit flips the plaintext bit) and B, plaintext only, selects plaintext.
    let mut a = Initiator::new(secrets(9, 0, 0), SKEY, Methods::RC4, vec![]).unwrap();
    let mut b = Receiver::new(secrets(10, 0, 0), Methods::PLAINTEXT, lookup as Lookup);
    b.handle_input(&a.take_output()).unwrap();
    a.handle_input(&b.take_output()).unwrap();
    let mut msg3 = a.take_output();
    // req1 (20), req2 xor req3 (20), VC (8), then the last byte of crypto_provide.
    msg3[20 + 20 + 8 + 3] ^= 0x01;
    assert_eq!(b.handle_input(&msg3), Ok(Progress::Done));
    assert_eq!(
        a.handle_input(&b.take_output()),
        Err(MseError::BadSelect {
            selected: 1,
            offered: 2
        })
    );
}

/// Every strict prefix of a valid transcript leaves either side waiting (no error, no
/// panic), and the whole of it finishes.
#[test]
fn every_prefix_waits() {
    let (sa, sb) = (secrets(11, 37, 5), secrets(12, 61, 9));
    let r = run(
        sa.clone(),
        sb.clone(),
        Methods::BOTH,
        Methods::BOTH,
        b"ia",
        4096,
        b"",
    )
    .unwrap();
    for n in 0..r.a_sent.len() {
        let mut b = Receiver::new(sb.clone(), Methods::BOTH, lookup as Lookup);
        assert_eq!(
            b.handle_input(&r.a_sent[..n]),
            Ok(Progress::Pending),
            "prefix {n}"
        );
        assert!(b.finish().is_none());
    }
    let a_msg1 = KEY_LEN + 37;
    for n in 0..r.b_sent.len() {
        let mut a = Initiator::new(sa.clone(), SKEY, Methods::BOTH, b"ia".to_vec()).unwrap();
        assert_eq!(
            a.handle_input(&r.b_sent[..n]),
            Ok(Progress::Pending),
            "prefix {n}"
        );
        assert_eq!(a.take_output().len() > a_msg1, n >= KEY_LEN);
    }
}

/// Where the spec's limits end: the receiver needs the hash to start within 512 bytes
/// of PadA, the initiator the VC within 512 bytes of PadB.
const RECEIVER_LIMIT: usize = KEY_LEN + MAX_PAD_LEN + 20;
const INITIATOR_LIMIT: usize = KEY_LEN + MAX_PAD_LEN + 8;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random bytes are refused by the receiver once the limit is reached, never later,
    /// whatever the chunking.
    #[test]
    fn receiver_refuses_garbage_within_the_limit(
        garbage in prop::collection::vec(any::<u8>(), RECEIVER_LIMIT..RECEIVER_LIMIT + 100),
        chunk in 1usize..700,
    ) {
        let mut b = Receiver::new(secrets(13, 10, 10), Methods::BOTH, lookup as Lookup);
        let mut fed = 0;
        let mut refused = None;
        for c in garbage.chunks(chunk) {
            fed += c.len();
            match b.handle_input(c) {
                Ok(Progress::Pending) => prop_assert!(fed < RECEIVER_LIMIT),
                Ok(Progress::Done) => prop_assert!(false, "garbage accepted"),
                Err(e) => { refused = Some(e); break; }
            }
        }
        prop_assert_eq!(refused, Some(MseError::NoReq1(RECEIVER_LIMIT)));
    }

    /// Random answers are refused by the initiator once the limit is reached.
    #[test]
    fn initiator_refuses_garbage_within_the_limit(
        garbage in prop::collection::vec(any::<u8>(), INITIATOR_LIMIT..INITIATOR_LIMIT + 100),
        chunk in 1usize..700,
    ) {
        let mut a = Initiator::new(secrets(14, 10, 10), SKEY, Methods::BOTH, vec![]).unwrap();
        let mut fed = 0;
        let mut refused = None;
        for c in garbage.chunks(chunk) {
            fed += c.len();
            match a.handle_input(c) {
                Ok(Progress::Pending) => prop_assert!(fed < INITIATOR_LIMIT),
                Ok(Progress::Done) => prop_assert!(false, "garbage accepted"),
                Err(e) => { refused = Some(e); break; }
            }
        }
        prop_assert_eq!(refused, Some(MseError::NoVc(INITIATOR_LIMIT)));
    }

    /// A valid key and hash followed by garbage: refused or waiting, never a panic.
    #[test]
    fn garbage_after_sync_never_panics(
        tail in prop::collection::vec(any::<u8>(), 0..2000),
        cut in 0usize..200,
    ) {
        let mut a = Initiator::new(secrets(15, 0, 0), SKEY, Methods::BOTH, vec![]).unwrap();
        let mut b = Receiver::new(secrets(16, 0, 0), Methods::BOTH, |_: &[u8; 20]| Some(SKEY));
        let msg1 = a.take_output();
        b.handle_input(&msg1).unwrap();
        a.handle_input(&b.take_output()).unwrap();
        let msg3 = a.take_output();
        let keep = 40 + cut.min(msg3.len() - 40);
        let _ = b.handle_input(&msg3[..keep]);
        let _ = b.handle_input(&tail);
    }
}
