//! HTTP/1.x request-head parsing over a byte buffer, no IO.
//!
//! Only what the tracker needs: method, target, version, and the `Connection`,
//! `Content-Length` and `Transfer-Encoding` headers. The caller caps the buffer size;
//! this module only ever looks inside it.

/// A parsed request head borrowing from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head<'a> {
    pub method: &'a [u8],
    /// Origin-form target: path plus optional `?query`.
    pub target: &'a [u8],
    /// HTTP/1.0 (responses then need an explicit `Connection: keep-alive`).
    pub http10: bool,
    /// The client wants the connection kept open after the response.
    pub keep_alive: bool,
    /// The request announces a body.
    pub has_body: bool,
    /// `Content-Length`, 0 when absent.
    pub content_length: u64,
    /// `Transfer-Encoding` is present (chunked bodies are not accepted).
    pub chunked: bool,
}

impl<'a> Head<'a> {
    /// Path and raw query (empty when there is no `?`).
    pub fn path_and_query(&self) -> (&'a [u8], &'a [u8]) {
        match self.target.iter().position(|&c| c == b'?') {
            Some(i) => (&self.target[..i], &self.target[i + 1..]),
            None => (self.target, &[]),
        }
    }
}

/// A head that is complete but cannot be served; answered with 400 and a close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadRequest(pub &'static str);

/// Finds and parses the first request head in `buf`. `Ok(None)` until the blank line
/// ending the head has arrived; otherwise the head and the bytes it spans.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<(Head<'_>, usize)>, BadRequest> {
    let Some(end) = head_end(buf) else {
        return Ok(None);
    };
    let mut lines = buf[..end]
        .split(|&c| c == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    // Tolerate one empty line before the request line (RFC 9112 section 2.2).
    let mut request_line = lines.next().unwrap_or_default();
    if request_line.is_empty() {
        request_line = lines.next().unwrap_or_default();
    }
    let mut parts = request_line.split(|&c| c == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BadRequest("malformed request line"));
    };
    let http10 = match version {
        b"HTTP/1.1" => false,
        b"HTTP/1.0" => true,
        _ => return Err(BadRequest("unsupported HTTP version")),
    };
    if method.is_empty() || !target.starts_with(b"/") {
        return Err(BadRequest("malformed request line"));
    }
    let mut head = Head {
        method,
        target,
        http10,
        keep_alive: !http10,
        has_body: false,
        content_length: 0,
        chunked: false,
    };
    for line in lines.filter(|l| !l.is_empty()) {
        let colon = line
            .iter()
            .position(|&c| c == b':')
            .ok_or(BadRequest("malformed header line"))?;
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&c| c == b',').map(trim) {
                if token.eq_ignore_ascii_case(b"close") {
                    head.keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    head.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            head.content_length =
                parse_length(value).ok_or(BadRequest("invalid Content-Length"))?;
            head.has_body |= head.content_length > 0;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            head.has_body = true;
            head.chunked = true;
        }
    }
    Ok(Some((head, end)))
}

/// A `Content-Length` value: 1 to 19 decimal digits.
fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |n, &c| {
        n.checked_mul(10)?.checked_add(u64::from(c - b'0'))
    })
}

/// Offset just past the blank line ending the head (`\r\n\r\n` or bare `\n\n`).
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    // Skip one leading blank line so it is not mistaken for the end of the head.
    if buf.starts_with(b"\r\n") {
        from = 2;
    } else if buf.starts_with(b"\n") {
        from = 1;
    }
    let mut i = from;
    while let Some(nl) = buf.get(i..)?.iter().position(|&c| c == b'\n') {
        let after = i + nl + 1;
        let rest = buf.get(after..)?;
        if rest.starts_with(b"\n") {
            return Some(after + 1);
        }
        if rest.starts_with(b"\r\n") {
            return Some(after + 2);
        }
        if rest.is_empty() || rest == b"\r" {
            return None;
        }
        i = after;
    }
    None
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_get() {
        let req = b"GET /announce?a=1 HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive\r\n\r\nGET /";
        let (head, used) = parse_head(req).unwrap().unwrap();
        assert_eq!(used, req.len() - 5);
        assert_eq!(head.method, b"GET");
        assert_eq!(head.path_and_query(), (&b"/announce"[..], &b"a=1"[..]));
        assert!(head.keep_alive && !head.http10 && !head.has_body);
    }

    #[test]
    fn connection_semantics() {
        let h = |r: &'static [u8]| parse_head(r).unwrap().unwrap().0;
        assert!(!h(b"GET / HTTP/1.1\r\nconnection: close\r\n\r\n").keep_alive);
        assert!(!h(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(h(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
        assert!(h(b"GET / HTTP/1.1\n\n").keep_alive);
        assert!(h(b"\r\nGET / HTTP/1.1\r\n\r\n").keep_alive);
        assert!(h(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n").has_body);
        assert!(h(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").has_body);
        assert!(!h(b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").has_body);
        assert_eq!(
            h(b"POST / HTTP/1.1\r\nContent-Length: 1234\r\n\r\n").content_length,
            1234
        );
        for bad in [&b"x"[..], b"-1", b"99999999999999999999", b""] {
            let mut r = b"POST / HTTP/1.1\r\nContent-Length: ".to_vec();
            r.extend_from_slice(bad);
            r.extend_from_slice(b"\r\n\r\n");
            assert_eq!(
                parse_head(&r).unwrap_err(),
                BadRequest("invalid Content-Length")
            );
        }
    }

    #[test]
    fn incomplete_and_bad() {
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\n\r"), Ok(None));
        assert_eq!(parse_head(b""), Ok(None));
        assert_eq!(parse_head(b"\r\n"), Ok(None));
        let bad = |r: &[u8]| parse_head(r).unwrap_err();
        assert_eq!(bad(b"GET /\r\n\r\n"), BadRequest("malformed request line"));
        assert_eq!(
            bad(b"GET  / HTTP/1.1\r\n\r\n"),
            BadRequest("malformed request line")
        );
        assert_eq!(
            bad(b"GET x HTTP/1.1\r\n\r\n"),
            BadRequest("malformed request line")
        );
        assert_eq!(
            bad(b"GET / HTTP/2\r\n\r\n"),
            BadRequest("unsupported HTTP version")
        );
        assert_eq!(
            bad(b"GET / HTTP/1.1\r\nnocolon\r\n\r\n"),
            BadRequest("malformed header line")
        );
    }

    #[test]
    fn never_panics_on_prefixes_or_noise() {
        let req = b"GET /announce?x HTTP/1.1\r\nA: b\r\nConnection: close\r\n\r\n";
        for i in 0..=req.len() {
            let _ = parse_head(&req[..i]);
        }
        for noise in [
            &b"\n\n\n"[..],
            b"\r\r\n\n",
            b":\n\n",
            b" \n\n",
            b"\r\n\r\n\r\n",
        ] {
            let _ = parse_head(noise);
        }
    }

    /// Cases for the randomized tests; `SHOAL_SMOKE_CASES=1000000` makes a quick
    /// fuzzing run on stable Rust.
    fn cases() -> usize {
        std::env::var("SHOAL_SMOKE_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(4000)
    }

    fn check(buf: &[u8]) {
        if let Ok(Some((head, used))) = parse_head(buf) {
            assert!(used <= buf.len());
            assert!(head.target.starts_with(b"/"));
            let (path, query) = head.path_and_query();
            assert!(path.len() + query.len() <= head.target.len());
            assert_eq!(head.has_body, head.chunked || head.content_length > 0);
        }
    }

    #[test]
    fn random_and_mutated_heads_never_panic() {
        use rand::{Rng, SeedableRng};
        let valid: [&[u8]; 3] = [
            b"GET /announce?info_hash=%41&x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n",
            b"POST /publish?peer_id=x HTTP/1.0\nContent-Length: 12\nTransfer-Encoding: chunked\n\nbody",
            b"\r\nGET / HTTP/1.1\r\n\r\n",
        ];
        for v in valid {
            for i in 0..=v.len() {
                check(&v[..i]);
            }
        }
        let structural = b"\r\n :,/?GETPOST HTTP/1.01content-length";
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5ea1);
        for _ in 0..cases() {
            let mut b = if rng.gen_bool(0.3) {
                let n = rng.gen_range(0..300);
                (0..n).map(|_| rng.gen()).collect()
            } else {
                valid[rng.gen_range(0..valid.len())].to_vec()
            };
            for _ in 0..rng.gen_range(0..8) {
                let at = rng.gen_range(0..=b.len());
                let byte = if rng.gen_bool(0.5) {
                    structural[rng.gen_range(0..structural.len())]
                } else {
                    rng.gen()
                };
                match rng.gen_range(0..4) {
                    0 if at < b.len() => b[at] = byte,
                    1 => b.insert(at, byte),
                    2 if at < b.len() => {
                        b.remove(at);
                    }
                    3 => b.truncate(at),
                    _ => {}
                }
            }
            check(&b);
        }
    }
}
