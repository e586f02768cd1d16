//! Bencode (BEP 3): a borrowing decoder that remembers the exact byte span of every
//! dictionary and list, and a streaming encoder.
//!
//! Invariants: the decoder never allocates more than the input warrants (every
//! container element consumes at least one input byte), nesting is capped at
//! [`MAX_DEPTH`], and integers must be canonical (`i-0e`, leading zeros rejected).
//! The info-hash of a torrent is the SHA-1 of [`Value::raw`] of its `info` dict,
//! never of a re-encoding.

use std::collections::BTreeSet;

use thiserror::Error;

/// Deepest nesting of lists and dictionaries the decoder accepts.
pub const MAX_DEPTH: usize = 64;

/// Why bencoded input was rejected. `offset` is the byte position where decoding failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BencodeError {
    /// Input ended in the middle of a value.
    #[error("bencode: input ends early at byte {offset}; the data is truncated")]
    Truncated {
        /// Byte offset.
        offset: usize,
    },
    /// A byte that cannot start or continue a value here.
    #[error("bencode: unexpected byte 0x{byte:02x} at byte {offset}")]
    Unexpected {
        /// Byte offset.
        offset: usize,
        /// The offending byte.
        byte: u8,
    },
    /// An integer or string length that is malformed or out of range.
    #[error("bencode: bad number at byte {offset}")]
    BadNumber {
        /// Byte offset.
        offset: usize,
    },
    /// Lists and dictionaries nested deeper than [`MAX_DEPTH`].
    #[error("bencode: nested deeper than {MAX_DEPTH} levels at byte {offset}")]
    TooDeep {
        /// Byte offset.
        offset: usize,
    },
    /// A dictionary key that appears twice.
    #[error("bencode: duplicate dictionary key at byte {offset}")]
    UnsortedKeys {
        /// Byte offset.
        offset: usize,
    },
    /// Bytes left over after the top-level value.
    #[error("bencode: {extra} trailing bytes after the value")]
    Trailing {
        /// Number of extra bytes.
        extra: usize,
    },
}

/// A decoded bencode value borrowing from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// `i...e`
    Int(i64),
    /// `len:bytes`
    Bytes(&'a [u8]),
    /// `l...e`, with its raw encoded bytes.
    List(Vec<Value<'a>>, &'a [u8]),
    /// `d...e`, entries in input order, with its raw encoded bytes.
    Dict(Vec<(&'a [u8], Value<'a>)>, &'a [u8]),
}

impl<'a> Value<'a> {
    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    /// The byte string, if this is one.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
    /// The byte string as UTF-8, if this is a valid UTF-8 string.
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }
    /// The list items, if this is a list.
    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::List(l, _) => Some(l),
            _ => None,
        }
    }
    /// The dictionary entries, if this is a dictionary.
    pub fn as_dict(&self) -> Option<&[(&'a [u8], Value<'a>)]> {
        match self {
            Value::Dict(d, _) => Some(d),
            _ => None,
        }
    }
    /// Looks up `key` in a dictionary; `None` for other kinds or a missing key.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.as_dict()?
            .iter()
            .find(|(k, _)| *k == key.as_bytes())
            .map(|(_, v)| v)
    }
    /// The exact encoded bytes of a list or dictionary (empty for scalars).
    pub fn raw(&self) -> &'a [u8] {
        match self {
            Value::List(_, r) | Value::Dict(_, r) => r,
            _ => &[],
        }
    }
}

/// Decodes exactly one value spanning all of `buf`.
pub fn decode(buf: &[u8]) -> Result<Value<'_>, BencodeError> {
    let (v, used) = decode_prefix(buf)?;
    if used != buf.len() {
        return Err(BencodeError::Trailing {
            extra: buf.len() - used,
        });
    }
    Ok(v)
}

/// Decodes one value at the start of `buf`, returning it and the bytes consumed
/// (BEP 9 metadata messages carry data after a bencoded dict).
pub fn decode_prefix(buf: &[u8]) -> Result<(Value<'_>, usize), BencodeError> {
    let mut d = Decoder { buf, pos: 0 };
    let v = d.value(0)?;
    Ok((v, d.pos))
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn peek(&self) -> Result<u8, BencodeError> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or(BencodeError::Truncated { offset: self.pos })
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, BencodeError> {
        if depth > MAX_DEPTH {
            return Err(BencodeError::TooDeep { offset: self.pos });
        }
        let start = self.pos;
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                let n = self.number(b'e', true)?;
                Ok(Value::Int(n))
            }
            b'0'..=b'9' => Ok(Value::Bytes(self.bytes()?)),
            b'l' => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items, &self.buf[start..self.pos]))
            }
            b'd' => {
                self.pos += 1;
                let mut items: Vec<(&'a [u8], Value<'a>)> = Vec::new();
                let mut unsorted_keys: Option<BTreeSet<&'a [u8]>> = None;
                while self.peek()? != b'e' {
                    let key_at = self.pos;
                    if !self.peek()?.is_ascii_digit() {
                        return Err(BencodeError::Unexpected {
                            offset: self.pos,
                            byte: self.peek()?,
                        });
                    }
                    let key = self.bytes()?;
                    // BEP 3 asks for sorted keys, but real clients and trackers send
                    // unsorted dictionaries; accept them (hashes use raw bytes anyway)
                    // and refuse only duplicates, which make lookups ambiguous.
                    // Sorted input (the norm) needs one comparison per key; only a
                    // dictionary that arrives unsorted pays for a set, so hostile
                    // input stays O(n log n) rather than quadratic.
                    // Once the set exists every later key goes through it: a key greater
                    // than its neighbour may still repeat one seen before the disorder.
                    let in_order = items.last().map_or(true, |(prev, _)| *prev < key);
                    let fresh = match unsorted_keys.as_mut() {
                        Some(seen) => seen.insert(key),
                        None if in_order => true,
                        None => {
                            let mut seen: BTreeSet<&[u8]> = items.iter().map(|(k, _)| *k).collect();
                            let fresh = seen.insert(key);
                            unsorted_keys = Some(seen);
                            fresh
                        }
                    };
                    if !fresh {
                        return Err(BencodeError::UnsortedKeys { offset: key_at });
                    }
                    let v = self.value(depth + 1)?;
                    items.push((key, v));
                }
                self.pos += 1;
                Ok(Value::Dict(items, &self.buf[start..self.pos]))
            }
            byte => Err(BencodeError::Unexpected {
                offset: self.pos,
                byte,
            }),
        }
    }

    fn bytes(&mut self) -> Result<&'a [u8], BencodeError> {
        let at = self.pos;
        let len = self.number(b':', false)?;
        let len = usize::try_from(len).map_err(|_| BencodeError::BadNumber { offset: at })?;
        let end = self
            .pos
            .checked_add(len)
            .ok_or(BencodeError::BadNumber { offset: at })?;
        if end > self.buf.len() {
            return Err(BencodeError::Truncated {
                offset: self.buf.len(),
            });
        }
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// Parses a canonical decimal number terminated by `term`.
    fn number(&mut self, term: u8, signed: bool) -> Result<i64, BencodeError> {
        let start = self.pos;
        let mut neg = false;
        if signed && self.peek()? == b'-' {
            neg = true;
            self.pos += 1;
        }
        let digits_at = self.pos;
        let mut n: i64 = 0;
        loop {
            let c = self.peek()?;
            if c == term {
                break;
            }
            if !c.is_ascii_digit() {
                return Err(BencodeError::Unexpected {
                    offset: self.pos,
                    byte: c,
                });
            }
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(i64::from(c - b'0')))
                .ok_or(BencodeError::BadNumber { offset: start })?;
            self.pos += 1;
        }
        let digits = &self.buf[digits_at..self.pos];
        let bad =
            digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') || (neg && digits == b"0");
        if bad {
            return Err(BencodeError::BadNumber { offset: start });
        }
        self.pos += 1; // terminator
        Ok(if neg { -n } else { n })
    }
}

/// A streaming bencode writer. Callers write dictionary keys in ascending order.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Self::default()
    }
    /// Writes `i<n>e`.
    pub fn int(&mut self, n: i64) -> &mut Self {
        self.buf.push(b'i');
        self.buf.extend_from_slice(n.to_string().as_bytes());
        self.buf.push(b'e');
        self
    }
    /// Writes a byte string.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b.len().to_string().as_bytes());
        self.buf.push(b':');
        self.buf.extend_from_slice(b);
        self
    }
    /// Writes a UTF-8 string.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }
    /// Starts a list; close with [`Encoder::end`].
    pub fn list(&mut self) -> &mut Self {
        self.buf.push(b'l');
        self
    }
    /// Starts a dictionary; close with [`Encoder::end`].
    pub fn dict(&mut self) -> &mut Self {
        self.buf.push(b'd');
        self
    }
    /// Closes the innermost list or dictionary.
    pub fn end(&mut self) -> &mut Self {
        self.buf.push(b'e');
        self
    }
    /// Appends already-encoded bencode (for example a raw `info` dict).
    pub fn raw(&mut self, encoded: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(encoded);
        self
    }
    /// The bytes written so far.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_scalars_and_containers() {
        assert_eq!(decode(b"i42e").unwrap(), Value::Int(42));
        assert_eq!(decode(b"i-7e").unwrap(), Value::Int(-7));
        assert_eq!(decode(b"4:spam").unwrap(), Value::Bytes(b"spam"));
        let v = decode(b"d3:cow3:moo4:spaml1:a1:bee").unwrap();
        assert_eq!(v.get("cow").unwrap().as_str(), Some("moo"));
        let l = v.get("spam").unwrap();
        assert_eq!(l.raw(), b"l1:a1:be");
        assert_eq!(l.as_list().unwrap().len(), 2);
        assert_eq!(v.raw(), b"d3:cow3:moo4:spaml1:a1:bee");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            &b""[..],
            b"i",
            b"i-0e",
            b"i03e",
            b"ie",
            b"i1x",
            b"5:abc",
            b"l",
            b"d1:a",
            b"d1:ai1e1:ai2ee",
            b"di1ei2ee",
            b"x",
            b"-1:a",
            b"99999999999999999999:",
            b"i99999999999999999999e",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(decode(b"i1ei2e"), Err(BencodeError::Trailing { extra: 3 }));
    }

    #[test]
    fn unsorted_keys_are_accepted_duplicates_are_not() {
        let v = decode(b"d1:bi1e1:ai2ee").unwrap();
        assert_eq!(v.get("a").and_then(Value::as_int), Some(2));
        assert!(decode(b"d1:ai1e1:ai2ee").is_err());
    }

    /// Found by the `wire` fuzz target (20-minute run): after the keys fell out of order, a
    /// key greater than its neighbour but equal to an earlier one (`c a b c`) was let through,
    /// so a dictionary decoded with a key twice.
    #[test]
    fn a_repeat_after_disorder_is_refused() {
        assert!(decode(b"d1:ci1e1:ai2e1:bi3e1:ci4ee").is_err());
        assert!(decode(b"d1:ci1e1:ai2e1:bi3e1:di4ee").is_ok());
    }

    #[test]
    fn many_unsorted_keys_decode_quickly() {
        // 50k keys in descending order: quadratic duplicate checks would take minutes.
        let mut e = Encoder::new();
        e.dict();
        for i in (0..50_000u32).rev() {
            e.str(&format!("{i:08}")).int(1);
        }
        e.end();
        let out = e.finish();
        assert_eq!(
            decode(&out).unwrap().as_dict().map(<[_]>::len),
            Some(50_000)
        );
    }

    #[test]
    fn depth_is_capped() {
        let mut deep = vec![b'l'; MAX_DEPTH + 2];
        deep.extend(vec![b'e'; MAX_DEPTH + 2]);
        assert!(matches!(decode(&deep), Err(BencodeError::TooDeep { .. })));
    }

    #[test]
    fn encoder_round_trips() {
        let mut e = Encoder::new();
        e.dict()
            .str("a")
            .int(-3)
            .str("b")
            .list()
            .bytes(b"\x00\xff")
            .end()
            .end();
        let out = e.finish();
        assert_eq!(out, b"d1:ai-3e1:bl2:\x00\xffee");
        assert_eq!(decode(&out).unwrap().raw(), &out[..]);
    }

    #[test]
    fn every_prefix_of_valid_input_fails_cleanly() {
        let full =
            b"d4:infod6:lengthi5e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
        assert!(decode(full).is_ok());
        for n in 0..full.len() {
            assert!(decode(&full[..n]).is_err());
        }
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = decode(&data);
        }
        #[test]
        fn ints_round_trip(n in proptest::num::i64::ANY) {
            let mut e = Encoder::new();
            e.int(n);
            let out = e.finish();
            proptest::prop_assert_eq!(decode(&out).unwrap(), Value::Int(n));
        }
    }
}
