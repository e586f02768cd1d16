//! Role B: the side that accepted and learns the torrent from the handshake.

use super::*;

/// Bytes of the initiator's message 3 before PadC: VC, crypto_provide, len(PadC).
const PROVIDE_LEN: usize = 8 + 4 + 2;

enum State {
    /// Waiting for A's 96-byte key.
    Key,
    /// Looking for `HASH('req1', S)` after PadA.
    SyncReq1 { req1: [u8; 20], req3: [u8; 20] },
    /// Waiting for `HASH('req2', SKEY) xor HASH('req3', S)`.
    Skey { req3: [u8; 20] },
    /// Waiting for the encrypted VC, crypto_provide and len(PadC).
    Provide,
    /// Waiting for PadC and len(IA).
    PadC { len: usize, method: Method },
    /// Waiting for IA.
    Ia { len: usize, method: Method },
    /// Finished; `ia` is decrypted.
    Done { method: Method, ia: Vec<u8> },
}

/// The receiver (B) of an MSE handshake. `lookup` maps `HASH('req2', SKEY)` to the
/// torrent it names (see [`req2_hash`]), or `None` when we do not have it.
pub struct Receiver<F> {
    state: State,
    io: Io,
    private_key: [u8; PRIVATE_LEN],
    pad_b: Vec<u8>,
    pad_d: Vec<u8>,
    accept: Methods,
    lookup: F,
    secret: Option<[u8; KEY_LEN]>,
    skey: Option<InfoHash>,
    /// (encrypt, decrypt), once the torrent is known.
    keys: Option<(Rc4, Rc4)>,
}

impl<F: FnMut(&[u8; 20]) -> Option<InfoHash>> Receiver<F> {
    /// Waits for an initiator's key. `accept` is the methods we take: RC4 is selected
    /// when both sides allow it, plaintext otherwise.
    pub fn new(secrets: Secrets, accept: Methods, lookup: F) -> Receiver<F> {
        Receiver {
            state: State::Key,
            io: Io::default(),
            private_key: secrets.private_key,
            pad_b: pad(&secrets.pad_key).to_vec(),
            pad_d: pad(&secrets.pad_crypto).to_vec(),
            accept,
            lookup,
            secret: None,
            skey: None,
            keys: None,
        }
    }

    /// Bytes to send now.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.io.out)
    }

    /// Takes bytes from the initiator.
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<Progress, MseError> {
        self.io.buf.extend_from_slice(bytes);
        loop {
            let next = match &self.state {
                State::Done { .. } => return Ok(Progress::Done),
                State::Key => self.on_key(),
                State::SyncReq1 { req1, req3 } => self.on_sync(*req1, *req3)?,
                State::Skey { req3 } => self.on_skey(*req3)?,
                State::Provide => self.on_provide()?,
                State::PadC { len, method } => self.on_pad(*len, *method),
                State::Ia { len, method } => self.on_ia(*len, *method),
            };
            match next {
                Some(s) => self.state = s,
                None => return Ok(Progress::Pending),
            }
        }
    }

    /// After [`Progress::Done`], the stream's parameters.
    pub fn finish(self) -> Option<Established> {
        let State::Done { method, ia } = self.state else {
            return None;
        };
        let (encrypt, decrypt) = self.keys?;
        let (decrypt, rest) = rest(method, decrypt, ia, self.io.buf);
        Some(Established {
            method,
            skey: self.skey?,
            encrypt,
            decrypt,
            rest,
        })
    }

    fn on_key(&mut self) -> Option<State> {
        let ya: [u8; KEY_LEN] = self.io.take(KEY_LEN)?.try_into().ok()?;
        let s = dh::shared_secret(&self.private_key, &ya);
        self.io
            .out
            .extend_from_slice(&dh::public_key(&self.private_key));
        self.io.out.extend_from_slice(&self.pad_b);
        self.secret = Some(s);
        Some(State::SyncReq1 {
            req1: hash(&[b"req1", &s]),
            req3: hash(&[b"req3", &s]),
        })
    }

    fn on_sync(&mut self, req1: [u8; 20], req3: [u8; 20]) -> Result<Option<State>, MseError> {
        match find(&self.io.buf, &req1, MAX_PAD_LEN) {
            Some(at) => {
                self.io.buf.drain(..at + req1.len());
                Ok(Some(State::Skey { req3 }))
            }
            None if self.io.buf.len() >= MAX_PAD_LEN + req1.len() => {
                Err(MseError::NoReq1(KEY_LEN + MAX_PAD_LEN + req1.len()))
            }
            None => Ok(None),
        }
    }

    fn on_skey(&mut self, req3: [u8; 20]) -> Result<Option<State>, MseError> {
        let (Some(x), Some(s)) = (self.io.take(20), self.secret) else {
            return Ok(None);
        };
        let skey = (self.lookup)(&xor20(&req3, &x)).ok_or(MseError::UnknownTorrent)?;
        let encrypt = Rc4::for_mse(b"keyB", &s, &skey.0);
        let decrypt = Rc4::for_mse(b"keyA", &s, &skey.0);
        self.skey = Some(skey);
        self.keys = Some((encrypt, decrypt));
        Ok(Some(State::Provide))
    }

    fn on_provide(&mut self) -> Result<Option<State>, MseError> {
        let (Some(mut b), Some((_, decrypt))) = (self.io.take(PROVIDE_LEN), self.keys.as_mut())
        else {
            return Ok(None);
        };
        decrypt.apply(&mut b);
        if b[..8] != VC {
            return Err(MseError::BadVc);
        }
        let offered = Methods(u32::from_be_bytes([b[8], b[9], b[10], b[11]]));
        let method = [Method::Rc4, Method::Plaintext]
            .into_iter()
            .find(|m| offered.contains(*m) && self.accept.contains(*m))
            .ok_or(MseError::NoCommonMethod {
                offered: offered.0,
                accepted: self.accept.0,
            })?;
        let len = u16_at(&b, 12);
        if len as usize > MAX_PAD_LEN {
            return Err(MseError::PadTooLong(len));
        }
        Ok(Some(State::PadC {
            len: len as usize,
            method,
        }))
    }

    fn on_pad(&mut self, len: usize, method: Method) -> Option<State> {
        let mut b = self.io.take(len + 2)?;
        let (_, decrypt) = self.keys.as_mut()?;
        decrypt.apply(&mut b);
        Some(State::Ia {
            len: u16_at(&b, len) as usize,
            method,
        })
    }

    fn on_ia(&mut self, len: usize, method: Method) -> Option<State> {
        let mut ia = self.io.take(len)?;
        let (encrypt, decrypt) = self.keys.as_mut()?;
        decrypt.apply(&mut ia);
        let out = &mut self.io.out;
        let start = out.len();
        out.extend_from_slice(&VC);
        out.extend_from_slice(&method.bit().to_be_bytes());
        out.extend_from_slice(&(self.pad_d.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.pad_d);
        encrypt.apply(&mut out[start..]);
        Some(State::Done { method, ia })
    }
}
