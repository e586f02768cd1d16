//! Which torrent the user means: ID arguments (any unique prefix of the info-hash, resolved by
//! the node) and `shoal get`'s choice among search results.

use super::view::SearchHit;

/// Fewest hex digits the API accepts as an ID prefix.
pub const MIN_ID_LEN: usize = 4;
/// Hex digits of a full v1 info-hash.
pub const FULL_ID_LEN: usize = 40;

/// Checks an ID argument (4 to 40 hex digits, a prefix of the info-hash) and lowercases it.
pub fn torrent_id(arg: &str) -> Result<String, String> {
    let id = arg.trim();
    if !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{arg:?} is not a torrent ID: use the hex info-hash or its first characters, as `shoal ls` shows"
        ));
    }
    if id.len() < MIN_ID_LEN || id.len() > FULL_ID_LEN {
        return Err(format!(
            "{arg:?} is not a torrent ID: give {MIN_ID_LEN} to {FULL_ID_LEN} hex digits of the info-hash"
        ));
    }
    Ok(id.to_ascii_lowercase())
}

/// What a `shoal get` query selects among search results.
#[derive(Debug, PartialEq)]
pub enum Pick<'a> {
    /// Nothing matched.
    None,
    /// Exactly one torrent.
    One(&'a SearchHit),
    /// Several torrents; the user must choose.
    Several(Vec<&'a SearchHit>),
}

/// The single result `query` means: the one whose ID starts with `query` when exactly one
/// does, else the one named exactly `query` (ignoring case) when exactly one is, else the only
/// result, else all of them. Duplicate IDs (from several trackers) count once.
pub fn pick<'a>(query: &str, hits: &'a [SearchHit]) -> Pick<'a> {
    let mut unique: Vec<&SearchHit> = Vec::with_capacity(hits.len());
    for h in hits {
        if !unique.iter().any(|u| u.id.eq_ignore_ascii_case(&h.id)) {
            unique.push(h);
        }
    }
    if let Ok(prefix) = torrent_id(query) {
        let by_id: Vec<&SearchHit> = unique
            .iter()
            .copied()
            .filter(|h| h.id.to_ascii_lowercase().starts_with(&prefix))
            .collect();
        match by_id.len() {
            0 => {}
            1 => return Pick::One(by_id[0]),
            _ => return Pick::Several(by_id),
        }
    }
    let wanted = query.trim().to_lowercase();
    let named: Vec<&SearchHit> = unique
        .iter()
        .copied()
        .filter(|h| h.name.trim().to_lowercase() == wanted)
        .collect();
    if let [one] = named[..] {
        return Pick::One(one);
    }
    match unique.len() {
        0 => Pick::None,
        1 => Pick::One(unique[0]),
        _ => Pick::Several(unique),
    }
}

/// What a line typed at `shoal get`'s prompt means.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// Choice number `n` (0-based).
    Choice(usize),
    /// Empty line, `q` or end of input: do nothing.
    Cancel,
    /// Not understood; ask again.
    Invalid,
}

/// Reads `1`..=`count`, an ID prefix of one of `hits`, or a cancel.
pub fn parse_answer(line: &str, hits: &[&SearchHit]) -> Answer {
    let t = line.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("q") {
        return Answer::Cancel;
    }
    if let Ok(n) = t.parse::<usize>() {
        if (1..=hits.len()).contains(&n) {
            return Answer::Choice(n - 1);
        }
    }
    if let Ok(prefix) = torrent_id(t) {
        let matches: Vec<usize> = (0..hits.len())
            .filter(|&i| hits[i].id.to_ascii_lowercase().starts_with(&prefix))
            .collect();
        if let [one] = matches[..] {
            return Answer::Choice(one);
        }
    }
    Answer::Invalid
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: &str, name: &str) -> SearchHit {
        SearchHit {
            id: id.into(),
            name: name.into(),
            ..SearchHit::default()
        }
    }

    #[test]
    fn id_arguments() {
        assert_eq!(torrent_id("ABCD").unwrap(), "abcd");
        assert_eq!(torrent_id(" 0123abcd ").unwrap(), "0123abcd");
        assert!(torrent_id(&"a".repeat(40)).is_ok());
        assert!(torrent_id(&"a".repeat(41)).is_err());
        assert!(torrent_id("abc").unwrap_err().contains("4 to 40"));
        assert!(torrent_id("photos").unwrap_err().contains("shoal ls"));
        assert!(torrent_id("../etc").is_err());
        assert!(torrent_id("").is_err());
    }

    #[test]
    fn picks_by_id_prefix_then_count() {
        let a = hit("abcd1111", "cafe photos");
        let b = hit("abce2222", "cafe menu");
        let c = hit("0000aaaa", "other cafe");
        let hits = [a.clone(), b.clone(), c.clone()];
        assert_eq!(pick("abcd", &hits), Pick::One(&hits[0]));
        assert_eq!(pick("ABCD11", &hits), Pick::One(&hits[0]));
        assert_eq!(pick("abc", &hits), Pick::Several(hits.iter().collect()));
        // "cafe" is hex, but no ID starts with it: every result stays a candidate.
        assert_eq!(pick("cafe", &hits), Pick::Several(hits.iter().collect()));
        assert_eq!(pick("photos", &hits[..1]), Pick::One(&hits[0]));
        assert_eq!(pick("x", &[]), Pick::None);
        // A name query with one result picks it even when the query is not its ID.
        assert_eq!(pick("0000", &hits[..1]), Pick::One(&hits[0]));
        // An exact name beats names that merely start with it.
        let named = [hit("1111", "Folder"), hit("2222", "folder2")];
        assert_eq!(pick("folder", &named), Pick::One(&named[0]));
        let twins = [hit("1111", "folder"), hit("2222", "folder")];
        assert_eq!(
            pick("folder", &twins),
            Pick::Several(twins.iter().collect())
        );
        // Two trackers may list the same torrent.
        let dup = [a.clone(), a.clone()];
        assert_eq!(pick("cafe", &dup), Pick::One(&dup[0]));
    }

    #[test]
    fn several_id_matches_are_narrowed() {
        let hits = [hit("abcd1111", "x"), hit("abcd2222", "y"), hit("ffff", "z")];
        assert_eq!(pick("abcd", &hits), Pick::Several(vec![&hits[0], &hits[1]]));
    }

    #[test]
    fn answers() {
        let hits = [hit("abcd1111", "x"), hit("abcd2222", "y")];
        let refs: Vec<&SearchHit> = hits.iter().collect();
        assert_eq!(parse_answer("2\n", &refs), Answer::Choice(1));
        assert_eq!(parse_answer("abcd2", &refs), Answer::Choice(1));
        assert_eq!(parse_answer("abcd", &refs), Answer::Invalid);
        assert_eq!(parse_answer("3", &refs), Answer::Invalid);
        assert_eq!(parse_answer("0", &refs), Answer::Invalid);
        assert_eq!(parse_answer("", &refs), Answer::Cancel);
        assert_eq!(parse_answer("q", &refs), Answer::Cancel);
    }
}
