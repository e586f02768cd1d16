//! The MSE handshake for both roles as state machines. Feed whatever bytes arrived to
//! `handle_input`, send what `take_output` returns, and once `handle_input` answers
//! [`Progress::Done`], `finish` yields the [`Established`] stream parameters.
//!
//! Synchronisation follows the spec's limits: the receiver looks for `HASH('req1', S)`
//! starting at most 512 bytes (PadA) after A's 96-byte key, the initiator for the
//! encrypted VC at most 512 bytes (PadB) after B's key; once that many bytes have
//! arrived without a match, the peer is refused. Every length read from the wire is
//! capped (pads at 512, IA at 65535 by its 2-byte length) before bytes are awaited,
//! so a peer cannot make either side buffer more than about 66 KB plus one read.

use sha1::{Digest, Sha1};
use thiserror::Error;

use super::dh::{self, KEY_LEN, PRIVATE_LEN};
use super::rc4::Rc4;
use crate::InfoHash;

/// Longest pad the spec allows (PadA, PadB, PadC, PadD).
pub const MAX_PAD_LEN: usize = 512;
/// The verification constant: eight zero bytes, sent encrypted.
const VC: [u8; 8] = [0; 8];

/// A set of `crypto_provide` / `crypto_select` bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Methods(pub u32);

impl Methods {
    /// Plaintext after the handshake (bit 1).
    pub const PLAINTEXT: Methods = Methods(1);
    /// RC4 after the handshake (bit 2).
    pub const RC4: Methods = Methods(2);
    /// Either.
    pub const BOTH: Methods = Methods(3);

    fn contains(self, m: Method) -> bool {
        self.0 & m.bit() != 0
    }
}

/// The payload method both sides agreed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// The payload goes in the clear (only the handshake was obfuscated).
    Plaintext,
    /// The payload is RC4-encrypted with the handshake's keystreams.
    Rc4,
}

impl Method {
    fn bit(self) -> u32 {
        match self {
            Method::Plaintext => 1,
            Method::Rc4 => 2,
        }
    }
}

/// Why a handshake failed; the connection should be dropped.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MseError {
    /// The receiver found no `HASH('req1', S)` where the spec allows it.
    #[error("not an MSE handshake: no synchronisation hash within {0} bytes of the key")]
    NoReq1(usize),
    /// The initiator found no encrypted VC where the spec allows it.
    #[error("not an MSE answer: no verification constant within {0} bytes of the key")]
    NoVc(usize),
    /// The receiver has no torrent matching the initiator's `req2 xor req3`.
    #[error("MSE handshake for a torrent we do not have")]
    UnknownTorrent,
    /// The decrypted VC was not zero (wrong key or garbage).
    #[error("MSE verification constant mismatch")]
    BadVc,
    /// A pad length above 512.
    #[error("MSE pad of {0} bytes, above the 512 allowed")]
    PadTooLong(u16),
    /// The initiator offered no method we accept.
    #[error("MSE peer offers methods {offered:#x}; we accept {accepted:#x}")]
    NoCommonMethod {
        /// The peer's `crypto_provide`.
        offered: u32,
        /// Ours.
        accepted: u32,
    },
    /// The receiver selected something other than one method we offered.
    #[error("MSE peer selected {selected:#x}, not one of the offered {offered:#x}")]
    BadSelect {
        /// The peer's `crypto_select`.
        selected: u32,
        /// What we offered.
        offered: u32,
    },
    /// The initial payload does not fit its 2-byte length.
    #[error("MSE initial payload of {0} bytes is above 65535")]
    IaTooLong(usize),
}

/// Whether the handshake has finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// More input is needed (send any output first).
    Pending,
    /// Done: send the output, then call `finish`.
    Done,
}

/// The caller's randomness for one handshake.
#[derive(Clone, Debug)]
pub struct Secrets {
    /// The DH private key: 160 random bits.
    pub private_key: [u8; PRIVATE_LEN],
    /// PadA (initiator) or PadB (receiver): random bytes, at most 512 are used.
    pub pad_key: Vec<u8>,
    /// PadC (initiator) or PadD (receiver): random bytes, at most 512 are used.
    pub pad_crypto: Vec<u8>,
}

/// An encrypted (or obfuscated) stream, ready for the payload.
#[derive(Debug)]
pub struct Established {
    /// The method the payload uses.
    pub method: Method,
    /// The torrent the handshake named (SKEY).
    pub skey: InfoHash,
    /// Our outgoing keystream (used only under [`Method::Rc4`]).
    pub encrypt: Rc4,
    /// The incoming keystream, past everything in `rest` (used only under RC4).
    pub decrypt: Rc4,
    /// Payload that arrived with the handshake, already decrypted: for the receiver the
    /// initiator's IA followed by anything after it.
    pub rest: Vec<u8>,
}

fn hash(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// `HASH('req2', SKEY)`: what a receiver matches `req2 xor req3` against.
pub fn req2_hash(skey: &InfoHash) -> [u8; 20] {
    hash(&[b"req2", &skey.0])
}

fn xor20(a: &[u8; 20], b: &[u8]) -> [u8; 20] {
    let mut out = *a;
    for (o, x) in out.iter_mut().zip(b) {
        *o ^= x;
    }
    out
}

fn pad(p: &[u8]) -> &[u8] {
    &p[..p.len().min(MAX_PAD_LEN)]
}

/// Finds `needle` in `hay` starting at most at `max_start`.
fn find(hay: &[u8], needle: &[u8], max_start: usize) -> Option<usize> {
    hay.windows(needle.len())
        .take(max_start + 1)
        .position(|w| w == needle)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Input that has arrived but is not yet parsed, and output not yet taken.
#[derive(Default)]
struct Io {
    buf: Vec<u8>,
    out: Vec<u8>,
}

impl Io {
    /// Takes `n` bytes off the front, if that many have arrived.
    fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        (self.buf.len() >= n).then(|| self.buf.drain(..n).collect())
    }
}

fn rest(method: Method, mut decrypt: Rc4, mut head: Vec<u8>, mut buf: Vec<u8>) -> (Rc4, Vec<u8>) {
    if method == Method::Rc4 {
        decrypt.apply(&mut buf);
    }
    head.append(&mut buf);
    (decrypt, head)
}

mod initiator;
mod receiver;

pub use initiator::Initiator;
pub use receiver::Receiver;

#[cfg(test)]
mod tests;
