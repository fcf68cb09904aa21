//! Frames to typed requests and typed responses to frames, with `kafka-protocol`'s codecs.
//!
//! A frame is a 4-byte big-endian size and that many bytes: a request header (its version
//! depends on the API and its version) and the body. Nothing here does I/O.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::error::{BrokerError, Result};
use crate::handlers::supported_versions;

/// Kafka's UNSUPPORTED_VERSION.
pub const UNSUPPORTED_VERSION: i16 = kafka_protocol::ResponseError::UnsupportedVersion.code();

/// A decoded request.
#[derive(Debug)]
pub struct Request {
    /// The API.
    pub api_key: ApiKey,
    /// The header as sent.
    pub header: RequestHeader,
    /// The body.
    pub body: RequestKind,
}

/// What a frame turned out to be.
#[derive(Debug)]
pub enum Decoded {
    /// A request of an API and version this broker serves.
    Request(Box<Request>),
    /// An API key this broker does not know, or a version outside what it serves: answered
    /// with UNSUPPORTED_VERSION (for ApiVersions, with the v0 body listing what is served, as
    /// KIP-511 has it, so the client can pick a version and go on).
    Unsupported {
        /// The API key as sent.
        api_key: i16,
        /// The version as sent.
        api_version: i16,
        /// To echo back.
        correlation_id: i32,
    },
}

/// Decodes one frame's payload (the bytes after the size).
pub fn decode_request(mut frame: Bytes) -> Result<Decoded> {
    if frame.len() < 8 {
        return Err(BrokerError::Malformed(format!(
            "a request header needs at least 8 bytes, the frame has {}",
            frame.len()
        )));
    }
    let mut peek = &frame[..8];
    let api_key = peek.get_i16();
    let api_version = peek.get_i16();
    let correlation_id = peek.get_i32();
    let unsupported = Decoded::Unsupported {
        api_key,
        api_version,
        correlation_id,
    };
    let Ok(key) = ApiKey::try_from(api_key) else {
        return Ok(unsupported);
    };
    let Some((min, max)) = supported_versions(key) else {
        return Ok(unsupported);
    };
    if api_version < min || api_version > max {
        return Ok(unsupported);
    }
    let header = RequestHeader::decode(&mut frame, key.request_header_version(api_version))
        .map_err(|e| BrokerError::Malformed(format!("{key:?} v{api_version} header: {e:#}")))?;
    let body = RequestKind::decode(key, &mut frame, api_version)
        .map_err(|e| BrokerError::Malformed(format!("{key:?} v{api_version} body: {e:#}")))?;
    if frame.has_remaining() {
        // Kafka ignores bytes after the body, and some clients send them (librdkafka 2.16's
        // Metadata v12 carries 3): tolerate them as Kafka does.
        tracing::trace!(api = ?key, version = api_version, left = frame.remaining(), "bytes after the request body");
    }
    Ok(Decoded::Request(Box::new(Request {
        api_key: key,
        header,
        body,
    })))
}

/// Encodes a response as a whole frame, size first.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<BytesMut> {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let encode_err = |message: String| BrokerError::Encode {
        api: format!("{api_key:?}"),
        version,
        message,
    };
    header
        .encode(&mut buf, api_key.response_header_version(version))
        .map_err(|e| encode_err(format!("{e:#}")))?;
    body.encode(&mut buf, version)
        .map_err(|e| encode_err(format!("{e:#}")))?;
    patch_size(&mut buf);
    Ok(buf)
}

/// The answer to a frame of an unknown API or version: the correlation id and
/// UNSUPPORTED_VERSION. For ApiVersions it is a whole v0 body (KIP-511); for other APIs every
/// response body starts with fields a client cannot parse without a version it knows, so the
/// error code alone is sent and the client gives up on the request.
pub fn encode_unsupported(api_key: i16, correlation_id: i32) -> Result<BytesMut> {
    if api_key == ApiKey::ApiVersions as i16 {
        let body = ResponseKind::ApiVersions(
            ApiVersionsResponse::default()
                .with_error_code(UNSUPPORTED_VERSION)
                .with_api_keys(crate::handlers::api_versions::api_keys()),
        );
        return encode_response(ApiKey::ApiVersions, 0, correlation_id, &body);
    }
    let mut buf = BytesMut::with_capacity(10);
    buf.put_i32(0);
    buf.put_i32(correlation_id);
    buf.put_i16(UNSUPPORTED_VERSION);
    patch_size(&mut buf);
    Ok(buf)
}

fn patch_size(buf: &mut BytesMut) {
    let size = i32::try_from(buf.len() - 4).unwrap_or(i32::MAX);
    buf[..4].copy_from_slice(&size.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiVersionsRequest;
    use kafka_protocol::protocol::StrBytes;

    fn frame(key: ApiKey, version: i16, body: &impl Encodable) -> Bytes {
        let mut buf = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .with_client_id(Some(StrBytes::from_static_str("t")))
            .encode(&mut buf, key.request_header_version(version))
            .expect("header");
        body.encode(&mut buf, version).expect("body");
        buf.freeze()
    }

    #[test]
    fn a_tagged_field_past_i32_max_is_encoded_again() {
        // Found by fuzz/decode_request: tag 2^31 + 5 (kept as a negative key) was counted but
        // not written back, so the re-encoded header did not decode (kafka-protocol patch in
        // third_party/).
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::DescribeCluster as i16)
            .with_correlation_id(9)
            .with_unknown_tagged_field(1, Bytes::from_static(b"a"))
            .with_unknown_tagged_field((1u32 << 31) as i32 + 5, Bytes::from_static(b"bc"));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, ApiKey::DescribeCluster.request_header_version(0))
            .expect("header");
        kafka_protocol::messages::DescribeClusterRequest::default()
            .encode(&mut buf, 0)
            .expect("body");
        let Ok(Decoded::Request(r)) = decode_request(buf.freeze()) else {
            panic!("expected a request");
        };
        assert_eq!(r.header, header);
    }

    #[test]
    fn decodes_a_request_and_flags_unknown_versions() {
        let f = frame(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        let Ok(Decoded::Request(r)) = decode_request(f) else {
            panic!("expected a request");
        };
        assert_eq!(r.header.correlation_id, 7);
        let f = frame(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        let mut raw = BytesMut::from(&f[..]);
        raw[2..4].copy_from_slice(&99i16.to_be_bytes());
        assert!(matches!(
            decode_request(raw.freeze()),
            Ok(Decoded::Unsupported {
                api_version: 99,
                correlation_id: 7,
                ..
            })
        ));
        let mut raw = BytesMut::from(&f[..]);
        raw[0..2].copy_from_slice(&999i16.to_be_bytes());
        assert!(matches!(
            decode_request(raw.freeze()),
            Ok(Decoded::Unsupported { api_key: 999, .. })
        ));
    }

    #[test]
    fn truncated_frames_are_errors_not_panics() {
        let f = frame(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        for cut in 0..f.len() {
            let r = decode_request(f.slice(..cut));
            assert!(r.is_err(), "cut at {cut} decoded");
        }
    }
}
