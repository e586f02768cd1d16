//! BEP 9 `ut_metadata` and BEP 11 `ut_pex` payloads and the metadata assembler: never
//! panic; decoded messages survive encode and decode; an assembler fed arbitrary
//! pieces never completes with bytes that do not hash to its info-hash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::metadata::{Assembler, Progress};
use shoal_proto::wire::{MetadataMessage, PexMessage};
use shoal_proto::InfoHash;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    match sel % 3 {
        0 => {
            if let Ok(m) = MetadataMessage::decode(rest) {
                let mut out = Vec::new();
                m.encode(&mut out);
                assert_eq!(MetadataMessage::decode(&out).ok(), Some(m));
            }
        }
        1 => {
            if let Ok(m) = PexMessage::decode(rest) {
                assert_eq!(PexMessage::decode(&m.encode()).ok(), Some(m));
            }
        }
        _ => {
            // Each chunk: 2 bytes of size/piece choice, then data.
            let hash = InfoHash([7; 20]);
            let mut a = Assembler::new(hash);
            for (peer, chunk) in rest.chunks(300).enumerate() {
                if chunk.len() < 2 {
                    break;
                }
                let size = u64::from(chunk[0]) * 97 + 1;
                let _ = a.offer_size(size);
                let Some(piece) = a.next_request(peer as u64) else {
                    continue;
                };
                let total = a.size().unwrap_or(size);
                if let Ok(Progress::Done(bytes)) =
                    a.on_data(peer as u64, piece, total, &chunk[2..])
                {
                    assert_eq!(InfoHash::of(&bytes), hash);
                }
            }
        }
    }
});
