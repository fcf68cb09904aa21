//! Bad input never takes the broker down: random and truncated frames, oversized and negative
//! sizes, unknown APIs and versions each cost at most their own connection.

use bytes::BufMut;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, MetadataRequest, RequestHeader};
use kafka_protocol::protocol::{Encodable, StrBytes};

use crate::wire::{self, Conn, corr_and_code};

/// A small deterministic generator (xorshift64*), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn valid_frame(key: ApiKey, version: i16, body: &impl Encodable) -> Vec<u8> {
    let mut buf = bytes::BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(42)
        .with_client_id(Some(StrBytes::from_static_str("fuzz")))
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    buf.to_vec()
}

fn framed(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.put_i32(payload.len() as i32);
    out.extend_from_slice(payload);
    out
}

async fn still_serves(addr: std::net::SocketAddr) {
    let mut c = Conn::connect(addr).await;
    let r = c.call(3, &ApiVersionsRequest::default()).await;
    assert_eq!(r.error_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_truncated_frames_cost_only_their_connection() {
    let b = wire::start(|c| c.set("socket.request.max.bytes", "65536").unwrap()).await;
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let seeds = [
        valid_frame(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()),
        valid_frame(ApiKey::Metadata, 12, &MetadataRequest::default()),
        valid_frame(ApiKey::Metadata, 1, &MetadataRequest::default()),
    ];
    for round in 0..300u32 {
        let mut c = b.connect().await;
        let payload: Vec<u8> = match round % 3 {
            // Pure noise, with a plausible header (a known key) half of the time.
            0 => {
                let len = rng.below(200) as usize;
                let mut p: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                if len >= 4 && rng.below(2) == 0 {
                    p[0] = 0;
                    p[1] = rng.below(70) as u8;
                    p[2] = 0;
                    p[3] = rng.below(14) as u8;
                }
                p
            }
            // A valid request cut short.
            1 => {
                let s = &seeds[rng.below(seeds.len() as u64) as usize];
                s[..rng.below(s.len() as u64) as usize].to_vec()
            }
            // A valid request with bytes flipped.
            _ => {
                let mut s = seeds[rng.below(seeds.len() as u64) as usize].clone();
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(s.len() as u64) as usize;
                    s[i] ^= 1 << rng.below(8);
                }
                s
            }
        };
        c.raw(&framed(&payload)).await;
        // Whatever it did with that frame (answered, or closed the connection), it serves.
        if round % 25 == 0 {
            still_serves(b.addr).await;
        }
    }
    // A frame over socket.request.max.bytes, a negative size, and a frame cut by the
    // client's close: each closes only its connection.
    let mut c = b.connect().await;
    c.raw(&(1_000_000i32).to_be_bytes()).await;
    assert!(
        c.closed().await,
        "an oversized request closes the connection"
    );
    let mut c = b.connect().await;
    c.raw(&(-5i32).to_be_bytes()).await;
    assert!(c.closed().await, "a negative size closes the connection");
    let mut c = b.connect().await;
    c.raw(&framed(&seeds[0])[..10]).await;
    drop(c);
    still_serves(b.addr).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_apis_and_versions_get_unsupported_version() {
    let b = wire::start(|_| {}).await;
    let mut c = b.connect().await;
    // ApiVersions v99 (KIP-511): error 35 and a v0 body listing what is served.
    let mut f = valid_frame(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    f[2..4].copy_from_slice(&99i16.to_be_bytes());
    c.raw(&framed(&f)).await;
    let mut frame = c.read_frame().await.unwrap();
    let header =
        <kafka_protocol::messages::ResponseHeader as kafka_protocol::protocol::Decodable>::decode(
            &mut frame, 0,
        )
        .unwrap();
    assert_eq!(header.correlation_id, 42);
    let body = <kafka_protocol::messages::ApiVersionsResponse as kafka_protocol::protocol::Decodable>::decode(&mut frame, 0).unwrap();
    assert_eq!(body.error_code, 35);
    assert!(
        body.api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::Produce as i16)
    );
    // An API key no Kafka has, and a version of Metadata past what is served: the
    // correlation id and UNSUPPORTED_VERSION, and the connection stays usable.
    let mut f = valid_frame(ApiKey::Metadata, 1, &MetadataRequest::default());
    f[0..2].copy_from_slice(&777i16.to_be_bytes());
    c.raw(&framed(&f)).await;
    assert_eq!(corr_and_code(c.read_frame().await.unwrap()), (42, 35));
    let mut f = valid_frame(ApiKey::Metadata, 1, &MetadataRequest::default());
    f[2..4].copy_from_slice(&60i16.to_be_bytes());
    c.raw(&framed(&f)).await;
    assert_eq!(corr_and_code(c.read_frame().await.unwrap()), (42, 35));
    let r = c.call(3, &ApiVersionsRequest::default()).await;
    assert_eq!(r.error_code, 0);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_idle_connections_are_held() {
    let b = wire::start(|_| {}).await;
    let mut conns = Vec::new();
    for _ in 0..200 {
        conns.push(b.connect().await);
    }
    for c in conns.iter_mut().step_by(20) {
        let r = c.call(3, &ApiVersionsRequest::default()).await;
        assert_eq!(r.error_code, 0);
    }
    drop(conns);
    still_serves(b.addr).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_names_of_245_to_249_characters_are_created_served_and_kept() {
    use crate::protocol::{create, fetch, produce};
    let b = wire::start(|_| {}).await;
    let mut c = b.connect().await;
    let names: Vec<String> = (245..=249).map(|n| "t".repeat(n)).collect();
    for n in &names {
        create(&mut c, n, 2).await;
        let r = c.call(9, &produce(n, 0, -1, crate::wire::batch(3))).await;
        assert_eq!(
            r.responses[0].partition_responses[0].error_code,
            0,
            "{}",
            n.len()
        );
    }
    // 250 characters is Kafka's INVALID_TOPIC_EXCEPTION, not a storage error.
    let r = c
        .call(
            7,
            &kafka_protocol::messages::CreateTopicsRequest::default().with_topics(vec![
                kafka_protocol::messages::create_topics_request::CreatableTopic::default()
                    .with_name(crate::protocol::name(&"t".repeat(250)))
                    .with_num_partitions(1)
                    .with_replication_factor(1),
            ]),
        )
        .await;
    assert_eq!(r.topics[0].error_code, 17);
    let dir = b.stop().await;
    let b = wire::start_in(dir, |_| {}).await;
    let mut c = b.connect().await;
    for n in &names {
        let r = c.call(12, &fetch(n, 0, 0)).await;
        let p = &r.responses[0].partitions[0];
        assert_eq!((p.error_code, p.high_watermark), (0, 3), "{}", n.len());
        assert_eq!(b.state.log.partition_count(n).unwrap(), 2);
    }
    let dir = b.stop().await;
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            assert!(
                !path.to_string_lossy().ends_with(".tmp"),
                "{}",
                path.display()
            );
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_100_mb_frame_sent_by_nobody_costs_only_its_connection_and_real_big_requests_work()
 {
    use crate::protocol::{create, fetch, produce};
    let b = wire::start(|c| c.set("message.max.bytes", "8000000").unwrap()).await;
    let mut c = b.connect().await;
    create(&mut c, "big", 1).await;
    // Fifty connections each declare a 100 MB request and send nothing more.
    let mut hostile = Vec::new();
    for _ in 0..50 {
        let mut h = b.connect().await;
        h.raw(&(100i32 << 20).to_be_bytes()).await;
        hostile.push(h);
    }
    // A real 6 MB produce is read whole and stored.
    let mut big = sluice_log::record::BatchBuilder::new(sluice_log::Compression::None);
    let value: Vec<u8> = (0..6_000_000u32).map(|i| (i % 253) as u8).collect();
    big.append(1_700_000_000_000, None, Some(&value), &[]);
    let r = c
        .call(9, &produce("big", 0, -1, bytes::Bytes::from(big.build())))
        .await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    let r = c.call(12, &fetch("big", 0, 0)).await;
    assert_eq!(r.responses[0].partitions[0].high_watermark, 1);
    drop(hostile);
    still_serves(b.addr).await;
    b.stop().await;
}
