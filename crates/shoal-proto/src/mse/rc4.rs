//! RC4, the stream cipher MSE uses for its payload (and always for the handshake's
//! encrypted parts). RC4 is broken as cryptography; MSE uses it only to obfuscate, and
//! interoperating means implementing it exactly.

use sha1::{Digest, Sha1};

/// Keystream bytes MSE throws away after keying (the early RC4 output is biased).
pub const DISCARD: usize = 1024;

/// An RC4 keystream: the permutation and the two indices.
///
/// The permutation's bytes are kept in `u32`s: byte loads and stores that depend on each
/// other through memory are slower on x86 than whole words (OpenSSL's `RC4_INT` does
/// the same); measured about 15-20% faster here.
#[derive(Clone)]
pub struct Rc4 {
    s: [u32; 256],
    i: u8,
    j: u8,
}

impl std::fmt::Debug for Rc4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The state is a key in all but name; keep it out of logs.
        f.write_str("Rc4(..)")
    }
}

impl Rc4 {
    /// Keys the cipher (key schedule only; nothing is discarded). An empty key is
    /// treated as one zero byte rather than dividing by zero.
    pub fn new(key: &[u8]) -> Rc4 {
        let key: &[u8] = if key.is_empty() { &[0] } else { key };
        let mut s = [0u32; 256];
        for (i, b) in s.iter_mut().enumerate() {
            *b = i as u32;
        }
        let mut j = 0u8;
        for i in 0..256 {
            j = j.wrapping_add(s[i] as u8).wrapping_add(key[i % key.len()]);
            s.swap(i, j as usize);
        }
        Rc4 { s, i: 0, j: 0 }
    }

    /// The MSE key for one direction: `HASH(label, S, SKEY)` with 1024 bytes of
    /// keystream discarded. `label` is `b"keyA"` (what A sends) or `b"keyB"`.
    pub fn for_mse(label: &[u8], secret: &[u8], skey: &[u8; 20]) -> Rc4 {
        let key: [u8; 20] = Sha1::new()
            .chain_update(label)
            .chain_update(secret)
            .chain_update(skey)
            .finalize()
            .into();
        let mut rc4 = Rc4::new(&key);
        rc4.skip(DISCARD);
        rc4
    }

    /// Advances the keystream by `n` bytes.
    pub fn skip(&mut self, n: usize) {
        let mut sink = [0u8; 256];
        let mut left = n;
        while left > 0 {
            let k = left.min(sink.len());
            self.apply(&mut sink[..k]);
            left -= k;
        }
    }

    /// One keystream byte (in the low 8 bits): the swap and the output lookup.
    #[inline(always)]
    fn next(s: &mut [u32; 256], i: &mut u8, j: &mut u8) -> u64 {
        // Indexing by a `u8` (or a value masked to 8 bits) into 256 entries needs no
        // bounds check, and `i`, `j` stay in registers for the caller's loop.
        *i = i.wrapping_add(1);
        let si = s[*i as usize];
        *j = j.wrapping_add(si as u8);
        let sj = s[*j as usize];
        s[*i as usize] = sj;
        s[*j as usize] = si;
        u64::from(s[(si.wrapping_add(sj) & 0xff) as usize])
    }

    /// Eight keystream bytes as a little-endian word, so the data is read, XORed and
    /// written a word at a time (about 35% faster than byte by byte, in CPU time).
    #[inline(always)]
    fn next8(s: &mut [u32; 256], i: &mut u8, j: &mut u8) -> u64 {
        let mut k = 0u64;
        for n in 0..8 {
            k |= Self::next(s, i, j) << (8 * n);
        }
        k
    }

    /// XORs the next `buf.len()` keystream bytes into `buf` (encrypts or decrypts in
    /// place).
    pub fn apply(&mut self, buf: &mut [u8]) {
        let s = &mut self.s;
        let (mut i, mut j) = (self.i, self.j);
        let mut words = buf.chunks_exact_mut(8);
        for w in &mut words {
            let k = Self::next8(s, &mut i, &mut j);
            let v = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            w.copy_from_slice(&(v ^ k).to_le_bytes());
        }
        for b in words.into_remainder() {
            *b ^= Self::next(s, &mut i, &mut j) as u8;
        }
        self.i = i;
        self.j = j;
    }

    /// Encrypts `src` into `dst` (the same length; the shorter one bounds the work):
    /// one pass instead of a copy and then a pass in place.
    pub fn apply_into(&mut self, src: &[u8], dst: &mut [u8]) {
        let s = &mut self.s;
        let (mut i, mut j) = (self.i, self.j);
        let n = src.len().min(dst.len());
        let (src, dst) = (&src[..n], &mut dst[..n]);
        let mut out = dst.chunks_exact_mut(8);
        let mut inp = src.chunks_exact(8);
        for (d, w) in (&mut out).zip(&mut inp) {
            let k = Self::next8(s, &mut i, &mut j);
            let v = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            d.copy_from_slice(&(v ^ k).to_le_bytes());
        }
        for (d, &b) in out.into_remainder().iter_mut().zip(inp.remainder()) {
            *d = b ^ Self::next(s, &mut i, &mut j) as u8;
        }
        self.i = i;
        self.j = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn keystream_at(key: &[u8], offset: usize, len: usize) -> Vec<u8> {
        let mut rc4 = Rc4::new(key);
        rc4.skip(offset);
        let mut out = vec![0u8; len];
        rc4.apply(&mut out);
        out
    }

    /// RFC 6229, section 2: keystream at offsets 0, 1024 and 4096.
    #[test]
    fn rfc6229_vectors() {
        let cases = [
            (
                "0102030405",
                [
                    (0, "b2396305f03dc027ccc3524a0a1118a8"),
                    (1024, "30abbcc7c20b01609f23ee2d5f6bb7df"),
                    (4096, "ff25b58995996707e51fbdf08b34d875"),
                ],
            ),
            (
                "0102030405060708",
                [
                    (0, "97ab8a1bf0afb96132f2f67258da15a8"),
                    (1024, "c6d0e7b226259fa9023490b26167ad1d"),
                    (4096, "3fb46e2c8f0f068edce8cdcd7dfc5862"),
                ],
            ),
            (
                "0102030405060708090a0b0c0d0e0f10",
                [
                    (0, "9ac7cc9a609d1ef7b2932899cde41b97"),
                    (1024, "bdf0324e6083dcc6d3cedd3ca8c53c16"),
                    (4096, "a36a4c301ae8ac13610ccbc12256cacc"),
                ],
            ),
            (
                "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
                [
                    (0, "eaa6bd25880bf93d3f5d1e4ca2611d91"),
                    (1024, "7fec5bfd9f9b89ce6548309092d7e958"),
                    (4096, "f3e4c0a2e02d1d01f7f0a74618af2b48"),
                ],
            ),
        ];
        for (key, points) in cases {
            for (offset, expect) in points {
                assert_eq!(
                    keystream_at(&hex(key), offset, 16),
                    hex(expect),
                    "key {key} offset {offset}"
                );
            }
        }
    }

    /// Applying in pieces of any size gives the same stream as one pass, and applying
    /// twice with the same key restores the input.
    #[test]
    fn chunked_apply_matches_one_pass_and_inverts() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut whole = data.clone();
        Rc4::new(b"key").apply(&mut whole);
        let mut pieces = data.clone();
        let mut rc4 = Rc4::new(b"key");
        let mut at = 0;
        for n in [1, 0, 17, 256, 1000, 3].iter().cycle() {
            if at >= pieces.len() {
                break;
            }
            let end = (at + n).min(pieces.len());
            if n % 2 == 0 {
                rc4.apply(&mut pieces[at..end]);
            } else {
                let src = pieces[at..end].to_vec();
                rc4.apply_into(&src, &mut pieces[at..end]);
            }
            at = end;
        }
        assert_eq!(pieces, whole);
        Rc4::new(b"key").apply(&mut whole);
        assert_eq!(whole, data);
    }

    #[test]
    fn mse_keys_discard_1024_bytes() {
        let secret = [7u8; 96];
        let skey = [9u8; 20];
        let key: [u8; 20] = Sha1::new()
            .chain_update(b"keyA")
            .chain_update(secret)
            .chain_update(skey)
            .finalize()
            .into();
        let mut a = Rc4::for_mse(b"keyA", &secret, &skey);
        let mut got = [0u8; 16];
        a.apply(&mut got);
        assert_eq!(got.to_vec(), keystream_at(&key, 1024, 16));
    }
}
