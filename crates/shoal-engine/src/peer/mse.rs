//! Message Stream Encryption on a byte stream (TCP or uTP, any [`super::Transport`]): the policy ([`EncryptionPolicy`]), the
//! async drivers of proto's sans-IO handshake for both roles ([`connect`], [`accept`]),
//! and the stream that results ([`MseStream`], a [`super::Transport`]).
//!
//! The BitTorrent handshake travels inside: an outgoing connection sends ours as the
//! MSE initial payload (IA); an incoming one finds the peer's IA, and whatever came
//! after it, at the front of the stream's read half.

mod stream;

use std::fmt;
use std::str::FromStr;

use rand::{Rng, RngCore};
use shoal_proto::mse::{
    Established, Initiator, Methods, MseError, Progress, Receiver, Secrets, MAX_PAD_LEN,
};
use shoal_proto::InfoHash;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::handshake::HANDSHAKE_TIMEOUT;
use super::{PeerError, Transport};
pub use stream::{MseRead, MseStream, MseWrite};

/// Whether peer connections use MSE (protocol encryption).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EncryptionPolicy {
    /// Plaintext only: MSE connections are refused and never dialled.
    Off,
    /// Both accepted; dial plaintext, and retry encrypted when a peer closes the
    /// connection during the handshake (it may require encryption).
    #[default]
    Allow,
    /// Both accepted; dial encrypted first (offering RC4 and plaintext, RC4 chosen
    /// when offered) and fall back to plaintext.
    Prefer,
    /// RC4-encrypted connections only, both ways.
    Require,
}

impl EncryptionPolicy {
    /// The policy's name as flags and config take it.
    pub fn as_str(self) -> &'static str {
        match self {
            EncryptionPolicy::Off => "off",
            EncryptionPolicy::Allow => "allow",
            EncryptionPolicy::Prefer => "prefer",
            EncryptionPolicy::Require => "require",
        }
    }

    /// Incoming plaintext BitTorrent handshakes are taken.
    pub(crate) fn accepts_plaintext(self) -> bool {
        self != EncryptionPolicy::Require
    }

    /// The methods an incoming MSE handshake may select; `None` refuses MSE.
    pub(crate) fn incoming_methods(self) -> Option<Methods> {
        match self {
            EncryptionPolicy::Off => None,
            EncryptionPolicy::Require => Some(Methods::RC4),
            _ => Some(Methods::BOTH),
        }
    }

    /// Dial attempts in order: `None` is plaintext, `Some` MSE offering those methods.
    pub(crate) fn dial_plan(self) -> &'static [Option<Methods>] {
        match self {
            EncryptionPolicy::Off => &[None],
            EncryptionPolicy::Allow => &[None, Some(Methods::BOTH)],
            EncryptionPolicy::Prefer => &[Some(Methods::BOTH), None],
            EncryptionPolicy::Require => &[Some(Methods::RC4)],
        }
    }
}

impl fmt::Display for EncryptionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EncryptionPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(EncryptionPolicy::Off),
            "allow" => Ok(EncryptionPolicy::Allow),
            "prefer" => Ok(EncryptionPolicy::Prefer),
            "require" => Ok(EncryptionPolicy::Require),
            _ => Err(format!(
                "unknown encryption policy {s:?}; use off, allow, prefer or require"
            )),
        }
    }
}

/// Fresh randomness for one handshake: a 160-bit key and pads of 0..=512 bytes.
fn secrets() -> Secrets {
    let mut rng = rand::thread_rng();
    let mut pad = || {
        let mut p = vec![0u8; rng.gen_range(0..=MAX_PAD_LEN)];
        rng.fill_bytes(&mut p);
        p
    };
    Secrets {
        pad_key: pad(),
        pad_crypto: pad(),
        private_key: rand::random(),
    }
}

/// Either role of the handshake, for the one driver loop.
trait Machine {
    fn take_output(&mut self) -> Vec<u8>;
    fn handle_input(&mut self, bytes: &[u8]) -> Result<Progress, MseError>;
}

impl Machine for Initiator {
    fn take_output(&mut self) -> Vec<u8> {
        Initiator::take_output(self)
    }
    fn handle_input(&mut self, bytes: &[u8]) -> Result<Progress, MseError> {
        Initiator::handle_input(self, bytes)
    }
}

impl<F: FnMut(&[u8; 20]) -> Option<InfoHash>> Machine for Receiver<F> {
    fn take_output(&mut self) -> Vec<u8> {
        Receiver::take_output(self)
    }
    fn handle_input(&mut self, bytes: &[u8]) -> Result<Progress, MseError> {
        Receiver::handle_input(self, bytes)
    }
}

/// Sends the machine's output and feeds it what arrives until it is done (each read
/// at most 4 KiB, so what the machine buffers past the handshake stays small).
async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    tcp: &mut S,
    m: &mut impl Machine,
    first: &[u8],
) -> Result<(), PeerError> {
    let mut done = !first.is_empty() && m.handle_input(first)? == Progress::Done;
    let mut buf = [0u8; 4096];
    loop {
        let out = m.take_output();
        if !out.is_empty() {
            tcp.write_all(&out).await?;
        }
        if done {
            return Ok(());
        }
        let n = tcp.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        done = m.handle_input(&buf[..n])? == Progress::Done;
    }
}

/// Runs the initiator's handshake for `skey`, offering `provide`, with `ia` (our
/// BitTorrent handshake) inside; bounded by the handshake timeout.
pub async fn connect<S: Transport + AsyncRead + AsyncWrite + Unpin>(
    mut tcp: S,
    skey: InfoHash,
    provide: Methods,
    ia: Vec<u8>,
) -> Result<MseStream<S>, PeerError> {
    let mut m = Initiator::new(secrets(), skey, provide, ia)?;
    tokio::time::timeout(HANDSHAKE_TIMEOUT, drive(&mut tcp, &mut m, &[]))
        .await
        .map_err(|_| PeerError::Timeout("encryption handshake"))??;
    let est = m
        .finish()
        .ok_or(PeerError::Closed("encryption handshake unfinished"))?;
    tracing::debug!(method = ?est.method, "outgoing encryption handshake done");
    Ok(MseStream::new(tcp, est))
}

/// Runs the receiver's handshake on a connection whose `first` bytes were already
/// read, selecting among `accept`; `lookup` maps `HASH('req2', SKEY)` to a torrent we
/// have (see [`shoal_proto::mse::req2_hash`]).
pub async fn accept<S: Transport + AsyncRead + AsyncWrite + Unpin>(
    mut tcp: S,
    first: &[u8],
    accept: Methods,
    lookup: impl FnMut(&[u8; 20]) -> Option<InfoHash>,
) -> Result<(MseStream<S>, InfoHash), PeerError> {
    let mut m = Receiver::new(secrets(), accept, lookup);
    tokio::time::timeout(HANDSHAKE_TIMEOUT, drive(&mut tcp, &mut m, first))
        .await
        .map_err(|_| PeerError::Timeout("encryption handshake"))??;
    let est: Established = m
        .finish()
        .ok_or(PeerError::Closed("encryption handshake unfinished"))?;
    let skey = est.skey;
    tracing::debug!(method = ?est.method, "incoming encryption handshake done");
    Ok((MseStream::new(tcp, est), skey))
}

#[cfg(test)]
mod tests;
