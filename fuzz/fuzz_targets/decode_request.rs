//! Any bytes as a request frame's payload: decoding returns a request, an "unsupported"
//! answer, or an error; it never panics, and whatever decodes can be answered.
//! Property: a decoded request re-encodes (header and body at the version sent) and decodes
//! back to the same request.
#![no_main]

use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::Encodable;
use libfuzzer_sys::fuzz_target;
use sluice_broker::codec::{Decoded, decode_request, encode_unsupported};

fuzz_target!(|data: &[u8]| {
    match decode_request(Bytes::copy_from_slice(data)) {
        Ok(Decoded::Unsupported {
            api_key,
            correlation_id,
            ..
        }) => {
            encode_unsupported(api_key, correlation_id).expect("the unsupported answer encodes");
        }
        Ok(Decoded::Request(request)) => {
            let version = request.header.request_api_version;
            let mut buf = BytesMut::new();
            request
                .header
                .encode(&mut buf, request.api_key.request_header_version(version))
                .expect("a decoded request header encodes");
            request
                .body
                .encode(&mut buf, version)
                .expect("a decoded request body encodes");
            match decode_request(buf.freeze()) {
                Ok(Decoded::Request(again)) => {
                    assert_eq!(again.header, request.header);
                    assert_eq!(again.body, request.body);
                }
                other => panic!("a re-encoded request decodes as {other:?}"),
            }
        }
        Err(_) => {}
    }
});
