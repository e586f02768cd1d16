//! Both roles of the MSE driver over loopback TCP, and the stream after it: bytes
//! written through partial writes and vectored batches arrive once and in order.

use std::io::IoSlice;

use shoal_proto::mse::Methods;
use shoal_proto::wire::Handshake;
use shoal_proto::{InfoHash, PeerId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::peer::handshake::{self, PREFIX_LEN};
use crate::peer::Transport;

const HASH: InfoHash = InfoHash([0x42; 20]);

/// Connects A to B through MSE; A sends its BitTorrent handshake as IA.
async fn pair(provide: Methods, accept_m: Methods) -> (MseStream, MseStream, Handshake) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hs = Handshake::new(HASH, PeerId::with_random([1; 12]));
    let ia = hs.encode().to_vec();
    let dial = async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        connect(tcp, HASH, provide, ia).await.unwrap()
    };
    let answer = async {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut first = [0u8; PREFIX_LEN];
        tcp.read_exact(&mut first).await.unwrap();
        assert!(!handshake::is_plaintext(&first));
        let lookup = |h: &[u8; 20]| (*h == shoal_proto::mse::req2_hash(&HASH)).then_some(HASH);
        let (s, skey) = accept(tcp, &first, accept_m, lookup).await.unwrap();
        assert_eq!(skey, HASH);
        s
    };
    let (a, mut b) = tokio::join!(dial, answer);
    // B finds A's handshake (the IA) first on its read half.
    let theirs = handshake::read_handshake(&mut b).await.unwrap();
    (a, b, theirs)
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

/// Writes `data` in vectored batches of mixed slices while the other side reads slowly
/// (so the socket takes parts of buffers); returns what arrived.
async fn transfer(from: MseStream, to: MseStream, data: Vec<u8>) -> Vec<u8> {
    let (_r, mut w) = from.split();
    let (mut r, _w) = to.split();
    let total = data.len();
    let writer = tokio::spawn(async move {
        let mut at = 0;
        let mut k = 0;
        while at < total {
            let a = (at + 1 + k % 3000).min(total);
            let b = (a + 70_000).min(total);
            let slices = [IoSlice::new(&data[at..a]), IoSlice::new(&data[a..b])];
            let n = w.write_vectored(&slices).await.unwrap();
            assert!(n > 0);
            at += n;
            k += 1;
        }
        w.flush().await.unwrap();
        w
    });
    let mut got = vec![0u8; total];
    let mut at = 0;
    while at < total {
        let end = (at + 4096).min(total);
        let n = r.read(&mut got[at..end]).await.unwrap();
        assert!(n > 0, "early end of stream");
        at += n;
    }
    drop(writer.await.unwrap());
    got
}

#[tokio::test]
async fn rc4_stream_carries_every_byte_once_both_ways() {
    let (a, b, theirs) = pair(Methods::BOTH, Methods::BOTH).await;
    assert_eq!(theirs.info_hash, HASH);
    assert!(a.is_rc4() && b.is_rc4() && a.encrypted());
    let data = pattern(3 << 20, 1);
    assert!(transfer(a, b, data.clone()).await == data);
    let (a, b, _) = pair(Methods::RC4, Methods::RC4).await;
    let data = pattern(1 << 20, 3);
    assert!(transfer(b, a, data.clone()).await == data);
}

#[tokio::test]
async fn plaintext_method_passes_through() {
    let (a, b, _) = pair(Methods::BOTH, Methods::PLAINTEXT).await;
    assert!(!a.is_rc4() && !b.is_rc4() && !a.encrypted());
    let data = pattern(1 << 20, 2);
    assert!(transfer(b, a, data.clone()).await == data);
}

#[tokio::test]
async fn a_plaintext_peer_is_not_mse() {
    let hs = Handshake::new(HASH, PeerId::with_random([2; 12])).encode();
    let mut first = [0u8; PREFIX_LEN];
    first.copy_from_slice(&hs[..PREFIX_LEN]);
    assert!(handshake::is_plaintext(&first));
}

#[tokio::test]
async fn a_receiver_without_the_torrent_refuses() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dial = async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        connect(tcp, HASH, Methods::RC4, vec![]).await
    };
    let answer = async {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut first = [0u8; PREFIX_LEN];
        tcp.read_exact(&mut first).await.unwrap();
        let r = accept(tcp, &first, Methods::RC4, |_: &[u8; 20]| None).await;
        r.map(|_| ())
    };
    let (a, b) = tokio::join!(dial, answer);
    assert!(matches!(
        b,
        Err(PeerError::Encryption(MseError::UnknownTorrent))
    ));
    // The receiver hung up: the initiator sees the connection close.
    assert!(matches!(a, Err(PeerError::Io(_))), "{:?}", a.err());
}

#[test]
fn policy_names_round_trip() {
    for p in [
        EncryptionPolicy::Off,
        EncryptionPolicy::Allow,
        EncryptionPolicy::Prefer,
        EncryptionPolicy::Require,
    ] {
        assert_eq!(p.as_str().parse::<EncryptionPolicy>(), Ok(p));
    }
    assert!("forced".parse::<EncryptionPolicy>().is_err());
    assert_eq!(EncryptionPolicy::default(), EncryptionPolicy::Allow);
}

#[tokio::test]
async fn unsplit_stream_writes_through_the_cipher() {
    let (mut a, mut b, _) = pair(Methods::RC4, Methods::BOTH).await;
    a.write_all(b"hello").await.unwrap();
    a.flush().await.unwrap();
    let mut got = [0u8; 5];
    b.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"hello");
}
