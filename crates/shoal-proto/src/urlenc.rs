//! Percent-encoding for tracker query strings and magnet links (RFC 3986 unreserved set).

/// Percent-encodes every byte outside `A-Za-z0-9-._~`.
pub fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            s.push(char::from(b));
        } else {
            s.push('%');
            s.push_str(&crate::ids::to_hex(&[b]).to_uppercase());
        }
    }
    s
}

/// Decodes `%XX` escapes and, when `plus_is_space`, `+` as a space. `None` on a bad escape.
pub fn decode(s: &[u8], plus_is_space: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                let mut b = [0u8];
                if !crate::ids::from_hex_into(std::str::from_utf8(hex).ok()?, &mut b) {
                    return None;
                }
                out.push(b[0]);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

/// Splits a query string (`a=1&b=2`) into decoded key/value pairs; `None` on a bad escape.
pub fn parse_query(q: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    q.split(|&c| c == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = match pair.iter().position(|&c| c == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            Some((decode(k, true)?, decode(v, true)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let raw = b"\x12\x34\xff a/b";
        let e = encode(raw);
        assert_eq!(e, "%124%FF%20a%2Fb");
        assert_eq!(decode(e.as_bytes(), false).unwrap(), raw);
        assert_eq!(decode(b"%zz", false), None);
        assert_eq!(decode(b"%1", false), None);
        let q = parse_query(b"a=1&b=x+y&c").unwrap();
        assert_eq!(q[1], (b"b".to_vec(), b"x y".to_vec()));
        assert_eq!(q[2], (b"c".to_vec(), vec![]));
    }
}
