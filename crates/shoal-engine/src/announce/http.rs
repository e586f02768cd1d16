//! A minimal HTTP/1.1 client for tracker announces and the tracker catalog: GET, and
//! POST with a `Content-Length` body; `http://` URLs only, `Connection: close`,
//! bounded response size, chunked transfer decoding.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::AnnounceError;

/// Largest tracker response we read.
const MAX_RESPONSE: usize = 4 << 20;
/// Connect plus request plus response.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Splits `http://host:port/path?query` into (host, port, path-and-query).
pub fn split_url(url: &str) -> Result<(String, u16, String), AnnounceError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| AnnounceError::Unsupported(url.to_string()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = if let Some(h) = authority.strip_prefix('[') {
        // [v6]:port
        let end = h
            .find(']')
            .ok_or_else(|| AnnounceError::BadUrl(url.to_string()))?;
        let port = h[end + 1..].strip_prefix(':').unwrap_or("80");
        (h[..end].to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p),
            None => (authority.to_string(), "80"),
        }
    };
    let port: u16 = port
        .parse()
        .map_err(|_| AnnounceError::BadUrl(url.to_string()))?;
    if host.is_empty() {
        return Err(AnnounceError::BadUrl(url.to_string()));
    }
    Ok((host, port, path.to_string()))
}

/// GETs `url` and returns the body of a 200 response.
pub async fn get(url: &str) -> Result<Vec<u8>, AnnounceError> {
    tokio::time::timeout(REQUEST_TIMEOUT, request(url, None))
        .await
        .map_err(|_| AnnounceError::Timeout)?
}

/// POSTs `body` (of `content_type`) to `url` and returns the body of a 200 response.
pub async fn post(url: &str, content_type: &str, body: &[u8]) -> Result<Vec<u8>, AnnounceError> {
    tokio::time::timeout(REQUEST_TIMEOUT, request(url, Some((content_type, body))))
        .await
        .map_err(|_| AnnounceError::Timeout)?
}

/// GET, or POST when `body` is given.
async fn request(url: &str, body: Option<(&str, &[u8])>) -> Result<Vec<u8>, AnnounceError> {
    let (host, port, path) = split_url(url)?;
    let mut stream = TcpStream::connect((host.as_str(), port)).await?;
    let host_hdr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let (method, extra) = match body {
        Some((ctype, b)) => (
            "POST",
            format!("Content-Type: {ctype}\r\nContent-Length: {}\r\n", b.len()),
        ),
        None => ("GET", String::new()),
    };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host_hdr}\r\nUser-Agent: Shoal/{}\r\nAccept-Encoding: identity\r\n{extra}Connection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    let mut req = req.into_bytes();
    if let Some((_, b)) = body {
        req.extend_from_slice(b);
    }
    stream.write_all(&req).await?;
    let mut raw = Vec::with_capacity(4096);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
        if raw.len() > MAX_RESPONSE {
            return Err(AnnounceError::Http("response too large".into()));
        }
        if let Some(body) = complete_body(&raw)? {
            return Ok(body);
        }
    }
    complete_body(&raw)?
        .ok_or_else(|| AnnounceError::Http("connection closed early".into()))
        .or_else(|e| parse_until_close(&raw).ok_or(e))
}

/// The body of a complete raw HTTP response, `None` while more bytes are needed, or
/// an error for a non-200 status. Exposed for the fuzz target; never panics.
#[doc(hidden)]
pub fn parse_response(raw: &[u8]) -> Result<Option<Vec<u8>>, AnnounceError> {
    complete_body(raw)
}

/// Parses status and headers; returns the body if it is complete per Content-Length or
/// chunked encoding.
fn complete_body(raw: &[u8]) -> Result<Option<Vec<u8>>, AnnounceError> {
    let Some(hdr_end) = find(raw, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&raw[..hdr_end]);
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    let code = status.split_whitespace().nth(1).unwrap_or("");
    if code != "200" {
        return Err(AnnounceError::Http(format!(
            "tracker answered \"{status}\""
        )));
    }
    let mut length = None;
    let mut chunked = false;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim();
            if k == "content-length" {
                length = v.parse::<usize>().ok();
            } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    let body = &raw[hdr_end + 4..];
    if chunked {
        return Ok(dechunk(body));
    }
    match length {
        Some(n) if body.len() >= n => Ok(Some(body[..n].to_vec())),
        _ => Ok(None),
    }
}

/// A body delimited by connection close.
fn parse_until_close(raw: &[u8]) -> Option<Vec<u8>> {
    let hdr_end = find(raw, b"\r\n\r\n")?;
    Some(raw[hdr_end + 4..].to_vec())
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(body, b"\r\n")?;
        let size_str = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        body = body.get(line_end + 2..)?;
        if size == 0 {
            return Some(out);
        }
        // `size` comes from the server: no arithmetic that can overflow on it.
        let chunk = body.get(..size)?;
        let rest = body.get(size..)?.strip_prefix(b"\r\n")?;
        out.extend_from_slice(chunk);
        body = rest;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            split_url("http://127.0.0.1:5000/announce?pk=1").unwrap(),
            ("127.0.0.1".into(), 5000, "/announce?pk=1".into())
        );
        assert_eq!(split_url("http://t.example/a").unwrap().1, 80);
        assert_eq!(split_url("http://[::1]:7/a").unwrap().0, "::1");
        assert!(split_url("udp://x:1").is_err());
        assert!(split_url("http://x:notaport/").is_err());
    }

    #[test]
    fn random_and_truncated_responses_never_panic() {
        let valid: &[&[u8]] = &[
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        ];
        for v in valid {
            for n in 0..=v.len() {
                let _ = parse_response(&v[..n]);
            }
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..5000 {
            let mut buf = valid[1].to_vec();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % buf.len();
                buf[i] = (x >> 32) as u8;
            }
            let _ = parse_response(&buf);
        }
    }

    #[test]
    fn bodies() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef";
        assert_eq!(complete_body(r).unwrap().unwrap(), b"abc");
        let r =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n";
        assert_eq!(complete_body(r).unwrap().unwrap(), b"abcd");
        let r = b"HTTP/1.1 404 Not Found\r\n\r\n";
        assert!(complete_body(r).is_err());
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc";
        assert_eq!(complete_body(r).unwrap(), None);
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\nabc";
        assert_eq!(complete_body(r).unwrap(), None);
    }
}
