//! Any bytes as a key and as a value of `__consumer_offsets` (read back when a coordinator
//! loads the topic, which Kafka's tools and other brokers may have written): decoding returns a
//! value or an error, never panics.
//! Property: what decodes encodes (in the version this store writes) and decodes back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_log::group::schema::{OffsetCommitValue, OffsetsKey};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(key)) = OffsetsKey::decode(data) {
        let again = OffsetsKey::decode(&key.encode()).expect("an encoded key decodes");
        assert_eq!(again, Some(key));
    }
    if let Ok(value) = OffsetCommitValue::decode(data) {
        // v4 holds metadata in a compact string (any length); v3, which is written, in an i16
        // length string: longer metadata is cut (offset.metadata.max.bytes keeps it far below).
        if value.metadata.len() <= i16::MAX as usize {
            let again =
                OffsetCommitValue::decode(&value.encode()).expect("an encoded value decodes");
            assert_eq!(again, value);
        }
    }
});
