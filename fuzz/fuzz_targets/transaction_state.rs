//! Any bytes as a key and as a value of `__transaction_state` (read back when the transaction
//! coordinator loads the topic): decoding returns a value or an error, never panics.
//! Property: what decodes encodes and decodes back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_log::txn::{decode_key, decode_value, encode_key, encode_value};

fuzz_target!(|data: &[u8]| {
    if let Ok(id) = decode_key(data) {
        assert_eq!(
            decode_key(&encode_key(&id)).expect("an encoded key decodes"),
            id
        );
    }
    if let Ok(m) = decode_value(data) {
        assert_eq!(
            decode_value(&encode_value(&m)).expect("an encoded value decodes"),
            m
        );
    }
});
