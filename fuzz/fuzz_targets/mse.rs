//! The MSE receiver role: bytes as an initiator (or anyone who connects) might send
//! them. The first byte picks how much of a valid handshake from a fixed initiator
//! comes first (none, its key, or its key and a prefix of message 3), so the fuzzer
//! also reaches the states past synchronisation; the rest is fed in chunks whose sizes
//! the second byte sets. Never panics; once refused or done, the state stays so.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::mse::{Initiator, Methods, Progress, Receiver, Secrets};
use shoal_proto::InfoHash;

const SKEY: InfoHash = InfoHash([3; 20]);

fn secrets(seed: u8) -> Secrets {
    Secrets {
        private_key: [seed; 20],
        pad_key: vec![seed; seed as usize],
        pad_crypto: vec![seed; 5],
    }
}

fuzz_target!(|data: &[u8]| {
    let [mode, chunk, rest @ ..] = data else {
        return;
    };
    let lookup = |h: &[u8; 20]| (*h == shoal_proto::mse::req2_hash(&SKEY)).then_some(SKEY);
    let mut b = Receiver::new(secrets(9), Methods::BOTH, lookup);
    let mut a = Initiator::new(secrets(7), SKEY, Methods::BOTH, b"ia".to_vec()).unwrap();
    let msg1 = a.take_output();
    let mut lead = Vec::new();
    if mode % 3 >= 1 {
        lead.extend_from_slice(&msg1);
    }
    if mode % 3 == 2 {
        let mut probe = Receiver::new(secrets(9), Methods::BOTH, lookup);
        probe.handle_input(&msg1).unwrap();
        a.handle_input(&probe.take_output()).unwrap();
        let msg3 = a.take_output();
        let cut = (*mode as usize / 3 * 2).min(msg3.len());
        lead.extend_from_slice(&msg3[..cut]);
    }
    if b.handle_input(&lead).is_err() {
        return;
    }
    let step = (*chunk as usize).max(1);
    for c in rest.chunks(step) {
        match b.handle_input(c) {
            Ok(Progress::Pending) => {}
            Ok(Progress::Done) => {
                let _ = b.take_output();
                let _ = b.finish();
                return;
            }
            Err(_) => return,
        }
    }
});
