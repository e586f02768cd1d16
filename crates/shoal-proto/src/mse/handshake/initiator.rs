//! Role A: the side that dialled and knows the torrent.

use super::*;

enum State {
    /// Waiting for B's 96-byte key.
    Key,
    /// Looking for `ENCRYPT(VC)` after PadB; `vc` is what it looks like.
    SyncVc { vc: [u8; 8] },
    /// Waiting for `crypto_select` and `len(PadD)`.
    Select,
    /// Waiting for PadD.
    PadD { len: usize, method: Method },
    /// Finished.
    Done { method: Method },
}

/// The initiator (A) of an MSE handshake.
pub struct Initiator {
    state: State,
    io: Io,
    private_key: [u8; PRIVATE_LEN],
    skey: InfoHash,
    provide: Methods,
    pad_c: Vec<u8>,
    ia: Vec<u8>,
    /// (encrypt, decrypt), once the secret is known.
    keys: Option<(Rc4, Rc4)>,
}

impl Initiator {
    /// Starts a handshake for the torrent `skey`, offering `provide`, with `ia` (say,
    /// the BitTorrent handshake) to travel inside message 3. Message 1 is ready in
    /// `take_output` at once.
    pub fn new(
        secrets: Secrets,
        skey: InfoHash,
        provide: Methods,
        ia: Vec<u8>,
    ) -> Result<Initiator, MseError> {
        if ia.len() > u16::MAX as usize {
            return Err(MseError::IaTooLong(ia.len()));
        }
        let mut io = Io::default();
        io.out
            .extend_from_slice(&dh::public_key(&secrets.private_key));
        io.out.extend_from_slice(pad(&secrets.pad_key));
        Ok(Initiator {
            state: State::Key,
            io,
            private_key: secrets.private_key,
            skey,
            provide,
            pad_c: pad(&secrets.pad_crypto).to_vec(),
            ia,
            keys: None,
        })
    }

    /// Bytes to send now.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.io.out)
    }

    /// Takes bytes from the receiver.
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<Progress, MseError> {
        self.io.buf.extend_from_slice(bytes);
        loop {
            let next = match &self.state {
                State::Done { .. } => return Ok(Progress::Done),
                State::Key => self.on_key(),
                State::SyncVc { vc } => self.on_sync(*vc)?,
                State::Select => self.on_select()?,
                State::PadD { len, method } => self.on_pad(*len, *method),
            };
            match next {
                Some(s) => self.state = s,
                None => return Ok(Progress::Pending),
            }
        }
    }

    /// After [`Progress::Done`], the stream's parameters.
    pub fn finish(self) -> Option<Established> {
        let State::Done { method } = self.state else {
            return None;
        };
        let (encrypt, decrypt) = self.keys?;
        let (decrypt, rest) = rest(method, decrypt, Vec::new(), self.io.buf);
        Some(Established {
            method,
            skey: self.skey,
            encrypt,
            decrypt,
            rest,
        })
    }

    fn on_key(&mut self) -> Option<State> {
        let yb: [u8; KEY_LEN] = self.io.take(KEY_LEN)?.try_into().ok()?;
        let s = dh::shared_secret(&self.private_key, &yb);
        let mut encrypt = Rc4::for_mse(b"keyA", &s, &self.skey.0);
        let mut decrypt = Rc4::for_mse(b"keyB", &s, &self.skey.0);
        let mut vc = VC;
        decrypt.apply(&mut vc);

        let out = &mut self.io.out;
        out.extend_from_slice(&hash(&[b"req1", &s]));
        out.extend_from_slice(&xor20(&req2_hash(&self.skey), &hash(&[b"req3", &s])));
        let start = out.len();
        out.extend_from_slice(&VC);
        out.extend_from_slice(&self.provide.0.to_be_bytes());
        out.extend_from_slice(&(self.pad_c.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.pad_c);
        out.extend_from_slice(&(self.ia.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.ia);
        encrypt.apply(&mut out[start..]);
        self.ia = Vec::new();
        self.keys = Some((encrypt, decrypt));
        Some(State::SyncVc { vc })
    }

    fn on_sync(&mut self, vc: [u8; 8]) -> Result<Option<State>, MseError> {
        match find(&self.io.buf, &vc, MAX_PAD_LEN) {
            Some(at) => {
                self.io.buf.drain(..at + vc.len());
                Ok(Some(State::Select))
            }
            None if self.io.buf.len() >= MAX_PAD_LEN + vc.len() => {
                Err(MseError::NoVc(KEY_LEN + MAX_PAD_LEN + vc.len()))
            }
            None => Ok(None),
        }
    }

    fn on_select(&mut self) -> Result<Option<State>, MseError> {
        let Some(mut b) = self.io.take(6) else {
            return Ok(None);
        };
        let Some((_, decrypt)) = &mut self.keys else {
            return Ok(None);
        };
        decrypt.apply(&mut b);
        let selected = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let method = match selected {
            1 => Some(Method::Plaintext),
            2 => Some(Method::Rc4),
            _ => None,
        };
        let Some(method) = method.filter(|m| self.provide.contains(*m)) else {
            return Err(MseError::BadSelect {
                selected,
                offered: self.provide.0,
            });
        };
        let len = u16_at(&b, 4);
        if len as usize > MAX_PAD_LEN {
            return Err(MseError::PadTooLong(len));
        }
        Ok(Some(State::PadD {
            len: len as usize,
            method,
        }))
    }

    fn on_pad(&mut self, len: usize, method: Method) -> Option<State> {
        let mut padding = self.io.take(len)?;
        let (_, decrypt) = self.keys.as_mut()?;
        decrypt.apply(&mut padding);
        Some(State::Done { method })
    }
}
