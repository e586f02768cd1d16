//! Peer wire: the handshake, a stream of messages, bitfields and BEP 10 extended
//! handshakes. Never panics; every decoded message re-encodes to the bytes it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::wire::{
    decode_message, max_message_len, Bitfield, ExtendedHandshake, Handshake, Message,
    EXTENDED_HANDSHAKE_ID, HANDSHAKE_LEN,
};

fuzz_target!(|data: &[u8]| {
    // The first two bytes pick the torrent's piece count, as the engine would know it.
    let (num_pieces, mut rest) = match data {
        [a, b, rest @ ..] => (u32::from(u16::from_be_bytes([*a, *b])), rest),
        _ => return,
    };
    if let Ok(Some(h)) = Handshake::decode_prefix(rest) {
        assert_eq!(h.encode()[..], rest[..HANDSHAKE_LEN]);
        rest = &rest[HANDSHAKE_LEN..];
    }
    let _ = Handshake::decode(rest);
    let _ = ExtendedHandshake::decode(rest);
    let cap = max_message_len(num_pieces);
    while let Ok(Some((msg, used))) = decode_message(rest, cap) {
        let mut out = Vec::new();
        msg.encode(&mut out);
        assert_eq!(out, rest[..used]);
        assert_eq!(msg.encoded_len(), used);
        match msg {
            Message::Bitfield(bytes) => {
                if let Ok(bf) = Bitfield::from_bytes(bytes, num_pieces) {
                    assert_eq!(bf.as_bytes(), bytes);
                    assert_eq!(bf.iter_set().count() as u32, bf.count_ones());
                }
            }
            Message::Extended { id, payload } if id == EXTENDED_HANDSHAKE_ID => {
                if let Ok(h) = ExtendedHandshake::decode(payload) {
                    assert_eq!(ExtendedHandshake::decode(&h.encode()), Ok(h));
                }
            }
            _ => {}
        }
        rest = &rest[used..];
    }
});
