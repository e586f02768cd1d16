//! HTTP byte ranges (RFC 9110, section 14) for one file, and the media type
//! by file extension. Pure functions, no IO.

/// What a `Range` header asks of a body of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable `Range`: the whole body, `200`.
    Full,
    /// Bytes `start..=end`, `206`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// No byte of the range exists: `416`.
    Unsatisfiable,
}

/// Parses a `Range` header against a body of `len` bytes. A header that is not
/// `bytes=`, or is malformed, is ignored (the whole body, as the RFC allows).
/// Of several ranges only the first is answered (a single-part `206`, which the
/// RFC allows: a server may answer fewer ranges than asked).
pub fn parse_range(header: Option<&str>, len: u64) -> RangeRequest {
    let Some(h) = header else {
        return RangeRequest::Full;
    };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return RangeRequest::Full;
    };
    let Some(first) = spec.split(',').next().map(str::trim) else {
        return RangeRequest::Full;
    };
    let Some((a, b)) = first.split_once('-') else {
        return RangeRequest::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // Suffix: the last N bytes.
        let Ok(n) = b.parse::<u64>() else {
            return RangeRequest::Full;
        };
        if n == 0 || len == 0 {
            return RangeRequest::Unsatisfiable;
        }
        return RangeRequest::Partial {
            start: len.saturating_sub(n),
            end: len - 1,
        };
    }
    let Ok(start) = a.parse::<u64>() else {
        return RangeRequest::Full;
    };
    let end = if b.is_empty() {
        u64::MAX
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e,
            _ => return RangeRequest::Full,
        }
    };
    if start >= len {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial {
        start,
        end: end.min(len - 1),
    }
}

/// The media type for a file name, by extension (audio, video and subtitles;
/// anything else is `application/octet-stream`).
pub fn content_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "mp4" | "m4v" => "video/mp4",
        "mkv" => "video/x-matroska",
        "webm" => "video/webm",
        "avi" => "video/x-msvideo",
        "mov" => "video/quicktime",
        "mpg" | "mpeg" => "video/mpeg",
        "ts" => "video/mp2t",
        "ogv" => "video/ogg",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        "flac" => "audio/flac",
        "ogg" | "oga" => "audio/ogg",
        "opus" => "audio/opus",
        "wav" => "audio/wav",
        "weba" => "audio/webm",
        "srt" => "application/x-subrip",
        "vtt" => "text/vtt",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeRequest::*;

    #[test]
    fn ranges() {
        let r = |h: &str| parse_range(Some(h), 1000);
        assert_eq!(parse_range(None, 1000), Full);
        assert_eq!(r("bytes=0-0"), Partial { start: 0, end: 0 });
        assert_eq!(
            r("bytes=999-999"),
            Partial {
                start: 999,
                end: 999
            }
        );
        assert_eq!(
            r("bytes=10-"),
            Partial {
                start: 10,
                end: 999
            }
        );
        assert_eq!(
            r("bytes=10-5000"),
            Partial {
                start: 10,
                end: 999
            }
        );
        assert_eq!(
            r("bytes=-100"),
            Partial {
                start: 900,
                end: 999
            }
        );
        assert_eq!(r("bytes=-5000"), Partial { start: 0, end: 999 });
        assert_eq!(r("bytes=-0"), Unsatisfiable);
        assert_eq!(r("bytes=1000-"), Unsatisfiable);
        assert_eq!(r("bytes=1000-2000"), Unsatisfiable);
        assert_eq!(r("bytes=0-1, 5-6"), Partial { start: 0, end: 1 });
        assert_eq!(r(" bytes= 3 - 4 "), Partial { start: 3, end: 4 });
        assert_eq!(r("bytes=3 - 4"), Partial { start: 3, end: 4 });
        for bad in [
            "bytes=5-4",
            "bytes=a-b",
            "bytes=-",
            "items=0-1",
            "bytes=0",
            "",
        ] {
            assert_eq!(r(bad), Full, "{bad:?}");
        }
        assert_eq!(parse_range(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-1"), 0), Unsatisfiable);
    }

    #[test]
    fn media_types() {
        assert_eq!(content_type("a/b/Movie.MKV"), "video/x-matroska");
        assert_eq!(content_type("clip.webm"), "video/webm");
        assert_eq!(content_type("song.flac"), "audio/flac");
        assert_eq!(content_type("subs.vtt"), "text/vtt");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
