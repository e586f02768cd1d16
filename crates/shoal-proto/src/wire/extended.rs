//! The BEP 10 extended handshake: the bencoded dictionary sent as extension message 0,
//! naming the extensions a peer supports and the ids it wants them sent under.

use super::WireError;
use crate::bencode::{self, Encoder, Value};

/// Extension message id of the extended handshake itself.
pub const EXTENDED_HANDSHAKE_ID: u8 = 0;

/// The fields of a BEP 10 extended handshake Shoal reads or sends. Unknown keys are
/// ignored on decode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtendedHandshake {
    /// Extension names and the message ids the sender wants them sent under;
    /// id 0 means the extension is disabled.
    pub m: Vec<(String, u8)>,
    /// Client name and version.
    pub v: Option<String>,
    /// The sender's listen port.
    pub p: Option<u16>,
    /// Outstanding requests the sender accepts without dropping any.
    pub reqq: Option<u32>,
    /// Size of the info dictionary in bytes (BEP 9).
    pub metadata_size: Option<u64>,
    /// The receiver's IP as the sender sees it: 4 or 16 bytes, compact form.
    pub yourip: Option<Vec<u8>>,
}

impl ExtendedHandshake {
    /// The id the sender assigned to extension `name`, if enabled (non-zero).
    pub fn extension_id(&self, name: &str) -> Option<u8> {
        self.m
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, id)| id)
            .filter(|&id| id != 0)
    }

    /// Bencodes the handshake (the payload of extension message 0). Duplicate names in
    /// `m` keep their first entry, since bencode dictionaries cannot repeat keys.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.dict();
        e.str("m").dict();
        let mut m: Vec<&(String, u8)> = self.m.iter().collect();
        m.sort_by(|a, b| a.0.cmp(&b.0)); // stable: the first duplicate stays first
        m.dedup_by(|later, earlier| later.0 == earlier.0);
        for (name, id) in m {
            e.str(name).int(i64::from(*id));
        }
        e.end();
        if let Some(size) = self.metadata_size {
            // Sizes past i64::MAX cannot be bencoded; no real info dict comes close.
            e.str("metadata_size")
                .int(i64::try_from(size).unwrap_or(i64::MAX));
        }
        if let Some(p) = self.p {
            e.str("p").int(i64::from(p));
        }
        if let Some(reqq) = self.reqq {
            e.str("reqq").int(i64::from(reqq));
        }
        if let Some(v) = &self.v {
            e.str("v").str(v);
        }
        if let Some(ip) = &self.yourip {
            e.str("yourip").bytes(ip);
        }
        e.end();
        e.finish()
    }

    /// Decodes an extended handshake payload. Unknown keys are ignored; known keys with
    /// the wrong type or an out-of-range value are errors. `m` entries whose names are
    /// not UTF-8 are skipped (no extension Shoal knows has such a name); the rest come
    /// out sorted by name, as [`encode`](Self::encode) writes them, whatever order the
    /// peer sent (unsorted dictionaries are accepted), so decoding what we encode gives
    /// back the same handshake. A non-UTF-8
    /// `v` is decoded lossily, since it is only shown to users.
    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let root = bencode::decode(payload).map_err(WireError::ExtendedBencode)?;
        let Some(dict) = root.as_dict() else {
            return Err(field("(root)", "is not a dictionary"));
        };
        let mut h = ExtendedHandshake::default();
        for (key, value) in dict {
            match *key {
                b"m" => h.m = decode_m(value)?,
                b"v" => {
                    let v = value.as_bytes().ok_or(field("v", "is not a string"))?;
                    h.v = Some(String::from_utf8_lossy(v).into_owned());
                }
                b"p" => h.p = Some(int_in(value, "p")?),
                b"reqq" => h.reqq = Some(int_in(value, "reqq")?),
                b"metadata_size" => h.metadata_size = Some(int_in(value, "metadata_size")?),
                b"yourip" => {
                    let ip = value.as_bytes().ok_or(field("yourip", "is not a string"))?;
                    h.yourip = Some(ip.to_vec());
                }
                _ => {}
            }
        }
        Ok(h)
    }
}

fn field(key: &'static str, problem: &'static str) -> WireError {
    WireError::ExtendedField { key, problem }
}

fn int_in<T: TryFrom<i64>>(value: &Value<'_>, key: &'static str) -> Result<T, WireError> {
    let n = value.as_int().ok_or(field(key, "is not an integer"))?;
    T::try_from(n).map_err(|_| field(key, "is out of range"))
}

fn decode_m(value: &Value<'_>) -> Result<Vec<(String, u8)>, WireError> {
    let entries = value.as_dict().ok_or(field("m", "is not a dictionary"))?;
    let mut m = Vec::with_capacity(entries.len());
    for (name, id) in entries {
        let id = int_in::<u8>(id, "m")?;
        if let Ok(name) = std::str::from_utf8(name) {
            m.push((name.to_owned(), id));
        }
    }
    // Bencode refuses duplicate keys, so sorting is enough to be canonical.
    m.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bep9_example() {
        let h =
            ExtendedHandshake::decode(b"d1:md11:ut_metadatai3ee13:metadata_sizei31235ee").unwrap();
        assert_eq!(h.extension_id("ut_metadata"), Some(3));
        assert_eq!(h.extension_id("ut_pex"), None);
        assert_eq!(h.metadata_size, Some(31235));
    }

    #[test]
    fn encodes_sorted_keys() {
        let h = ExtendedHandshake {
            m: vec![
                ("ut_pex".into(), 2),
                ("ut_metadata".into(), 1),
                ("ut_pex".into(), 9),
            ],
            v: Some("Shoal 0.1".into()),
            p: Some(6881),
            reqq: Some(250),
            metadata_size: Some(100),
            yourip: Some(vec![127, 0, 0, 1]),
        };
        let b = h.encode();
        assert_eq!(
            b,
            b"d1:md11:ut_metadatai1e6:ut_pexi2ee13:metadata_sizei100e1:pi6881e\
              4:reqqi250e1:v9:Shoal 0.16:yourip4:\x7f\x00\x00\x01e"
                .to_vec()
        );
        let back = ExtendedHandshake::decode(&b).unwrap();
        assert_eq!(
            back.m,
            [("ut_metadata".to_string(), 1), ("ut_pex".to_string(), 2)]
        );
        assert_eq!((back.p, back.reqq, back.yourip), (h.p, h.reqq, h.yourip));
    }

    /// Found by the `wire` fuzz target: `m` sent unsorted decoded in input order, so
    /// encoding (sorted) and decoding again gave a different handshake.
    #[test]
    fn unsorted_m_decodes_sorted_and_round_trips() {
        let h = ExtendedHandshake::decode(b"d1:md11:utm_etadatai1e6:ut_pexi2eee").unwrap();
        assert_eq!(
            h.m,
            [("ut_pex".to_string(), 2), ("utm_etadata".to_string(), 1)]
        );
        assert_eq!(ExtendedHandshake::decode(&h.encode()), Ok(h.clone()));
        assert_eq!(h.extension_id("ut_pex"), Some(2));
    }

    #[test]
    fn unknown_keys_ignored_bad_types_rejected() {
        let h = ExtendedHandshake::decode(b"d1:ai1e1:mde1:zl1:xee").unwrap();
        assert_eq!(h, ExtendedHandshake::default());
        let bad: &[&[u8]] = &[
            b"le",
            b"d1:mi1ee",
            b"d1:md1:xi256eee",
            b"d1:md1:x1:yee",
            b"d1:pi65536ee",
            b"d1:pi-1ee",
            b"d4:reqq3:abce",
            b"d13:metadata_sizei-5ee",
            b"d1:vi1ee",
            b"d6:youripi1ee",
            b"d1:m",
            b"de1:x",
        ];
        for b in bad {
            assert!(
                ExtendedHandshake::decode(b).is_err(),
                "{}",
                String::from_utf8_lossy(b)
            );
        }
        let e = ExtendedHandshake::decode(b"d1:pi65536ee").unwrap_err();
        assert_eq!(e.to_string(), "extended handshake: `p` is out of range");
    }

    #[test]
    fn every_prefix_is_an_error() {
        let h = ExtendedHandshake {
            m: vec![("ut_metadata".into(), 1)],
            v: Some("x".into()),
            p: Some(1),
            reqq: Some(2),
            metadata_size: Some(3),
            yourip: Some(vec![1, 2, 3, 4]),
        };
        let b = h.encode();
        for n in 0..b.len() {
            assert!(ExtendedHandshake::decode(&b[..n]).is_err(), "prefix {n}");
        }
        assert_eq!(ExtendedHandshake::decode(&b), Ok(h));
    }

    proptest! {
        #[test]
        fn round_trip(m in proptest::collection::btree_map("[a-z_]{1,12}", any::<u8>(), 0..6),
                      v in proptest::option::of(".{0,20}"),
                      p: Option<u16>, reqq: Option<u32>,
                      metadata_size in proptest::option::of(0u64..=i64::MAX as u64),
                      yourip in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..17))) {
            let h = ExtendedHandshake { m: m.into_iter().collect(), v, p, reqq, metadata_size, yourip };
            prop_assert_eq!(ExtendedHandshake::decode(&h.encode()), Ok(h));
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = ExtendedHandshake::decode(&bytes);
        }
    }
}
