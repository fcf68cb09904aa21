//! Any bytes as a request frame's payload: decoding returns a request, an "unsupported"
//! answer, or an error; it never panics, and whatever decodes can be answered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_broker::codec::{Decoded, decode_request, encode_unsupported};

fuzz_target!(|data: &[u8]| {
    match decode_request(bytes::Bytes::copy_from_slice(data)) {
        Ok(Decoded::Unsupported { api_key, correlation_id, .. }) => {
            encode_unsupported(api_key, correlation_id).expect("the unsupported answer encodes");
        }
        Ok(Decoded::Request(_)) | Err(_) => {}
    }
});
