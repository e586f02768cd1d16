//! LSD announces (BEP 14): never panics, and a parsed announce re-encodes to packets
//! that parse back to the same port, info-hashes and cookie.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::lsd;

fuzz_target!(|data: &[u8]| {
    let Ok(a) = lsd::parse_announce(data) else {
        return;
    };
    assert!(!a.info_hashes.is_empty() && a.info_hashes.len() <= lsd::MAX_INFO_HASHES);
    let cookie = a.cookie.clone().unwrap_or_else(|| lsd::Cookie::new("x").unwrap());
    let mut back = Vec::new();
    for p in lsd::encode_announces(a.port, &a.info_hashes, &cookie) {
        assert!(p.len() <= lsd::MAX_PACKET_LEN);
        let b = lsd::parse_announce(&p).unwrap();
        assert_eq!((b.port, b.cookie.as_ref()), (a.port, Some(&cookie)));
        back.extend(b.info_hashes);
    }
    assert_eq!(back, a.info_hashes);
});
