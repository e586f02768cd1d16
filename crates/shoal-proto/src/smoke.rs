//! Test-only inputs for the "never panics" property tests: valid messages with random
//! edits (replace, insert, delete, truncate), biased towards the bytes parsers branch on.
//! `PROPTEST_CASES=200000 cargo test -p shoal-proto never_panic` turns these into a
//! quick fuzzing run on stable Rust.

use proptest::prelude::*;

/// One edit: (kind, position, byte). Positions wrap around the input length.
pub(crate) type Edit = (u8, usize, u8);

/// Up to eight edits.
pub(crate) fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let byte = prop_oneof![
        any::<u8>(),
        proptest::sample::select(b"%&=+?:;deil0123456789-\r\n \xff\x00".to_vec()),
    ];
    proptest::collection::vec((0u8..4, any::<usize>(), byte), 0..8)
}

/// `base` with `edits` applied in order.
pub(crate) fn mutate(base: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut v = base.to_vec();
    for &(kind, pos, byte) in edits {
        let at = pos % (v.len() + 1);
        match kind {
            0 if at < v.len() => v[at] = byte,
            1 => v.insert(at, byte),
            2 if at < v.len() => {
                v.remove(at);
            }
            3 => v.truncate(at),
            _ => {}
        }
    }
    v
}
