//! Message Stream Encryption / Protocol Encryption (MSE/PE), the obfuscation layer
//! most BitTorrent clients speak before the BitTorrent handshake. It has no BEP; this
//! follows the Vuze/Azureus specification as libtorrent and others implement it:
//!
//! ```text
//! 1 A->B: Ya, PadA                       (Diffie-Hellman public key, 0..512 random bytes)
//! 2 B->A: Yb, PadB
//! 3 A->B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
//!         ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
//! 4 B->A: ENCRYPT(VC, crypto_select, len(PadD), PadD), ENCRYPT2(payload)
//! 5 A->B: ENCRYPT2(payload)
//! ```
//!
//! `S` is the DH secret ([`dh`]), `SKEY` the torrent's info-hash, `ENCRYPT` RC4
//! ([`rc4`]) keyed `HASH('keyA', S, SKEY)` from A and `HASH('keyB', S, SKEY)` from B,
//! and `ENCRYPT2` the selected method: RC4 continuing the same keystreams, or
//! plaintext. [`handshake`] holds both roles as sans-IO state machines: bytes in,
//! bytes out, and at the end an [`Established`] with the method, the two RC4 states
//! and the payload bytes that arrived with the handshake.
//!
//! The randomness (DH private key, pads) is passed in by the caller.

pub mod dh;
pub mod handshake;
pub mod rc4;

pub use handshake::{
    req2_hash, Established, Initiator, Method, Methods, MseError, Progress, Receiver, Secrets,
    MAX_PAD_LEN,
};
pub use rc4::Rc4;
