//! A live broker in this process and a minimal raw client, for tests that need the socket.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use sluice_broker::{Broker, BrokerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// Every wait in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct TestBroker {
    pub addr: SocketAddr,
    pub state: std::sync::Arc<sluice_broker::state::BrokerState>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<sluice_broker::Result<()>>,
    pub dir: tempfile::TempDir,
}

pub async fn start(tweak: impl FnOnce(&mut BrokerConfig)) -> TestBroker {
    let dir = tempfile::tempdir().unwrap();
    start_in(dir, tweak).await
}

pub async fn start_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut BrokerConfig)) -> TestBroker {
    let mut config = BrokerConfig::default();
    config.set("listeners", "PLAINTEXT://127.0.0.1:0").unwrap();
    config
        .set("log.dirs", dir.path().to_str().unwrap())
        .unwrap();
    config.set("group.initial.rebalance.delay.ms", "0").unwrap();
    tweak(&mut config);
    start_with(dir, config).await
}

/// Starts a broker of `config` as it is (its data directory under `dir`, which the broker
/// keeps alive).
pub async fn start_with(dir: tempfile::TempDir, config: BrokerConfig) -> TestBroker {
    let broker = Broker::bind(config).await.unwrap();
    let addr = broker.local_addr();
    let state = std::sync::Arc::clone(broker.state());
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(broker.run(async move {
        let _ = rx.await;
    }));
    TestBroker {
        addr,
        state,
        stop: Some(tx),
        task,
        dir,
    }
}

/// A loopback port free a moment ago, for configs that must name their port (a file whose
/// advertised listener carries it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestBroker {
    /// Shuts down as SIGTERM would and returns the data directory.
    pub async fn stop(mut self) -> tempfile::TempDir {
        let _ = self.stop.take().unwrap().send(());
        drop(self.state);
        tokio::time::timeout(Duration::from_secs(40), self.task)
            .await
            .expect("shutdown within 40 s")
            .unwrap()
            .unwrap();
        self.dir
    }

    pub async fn connect(&self) -> Conn {
        Conn::connect(self.addr).await
    }
}

pub struct Conn {
    pub stream: TcpStream,
    next: i32,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Conn {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .unwrap()
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Conn { stream, next: 1 }
    }

    /// Sends a request; returns its correlation id.
    pub async fn send<R: Request + Encodable>(&mut self, version: i16, req: &R) -> i32 {
        let corr = self.next;
        self.next += 1;
        let key = ApiKey::try_from(R::KEY).unwrap();
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(corr)
            .with_client_id(Some(StrBytes::from_static_str("sluice-broker-test")))
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        req.encode(&mut buf, version).unwrap();
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        self.raw(&buf).await;
        corr
    }

    /// Reads the next response, as `R`'s response at `version`; returns it with its
    /// correlation id.
    pub async fn recv<R: Request>(&mut self, version: i16) -> (i32, R::Response)
    where
        R::Response: Decodable,
    {
        let key = ApiKey::try_from(R::KEY).unwrap();
        let mut frame = self
            .read_frame()
            .await
            .expect("a response, not a closed connection");
        let header =
            ResponseHeader::decode(&mut frame, key.response_header_version(version)).unwrap();
        let body = R::Response::decode(&mut frame, version).unwrap();
        (header.correlation_id, body)
    }

    pub async fn call<R: Request + Encodable>(&mut self, version: i16, req: &R) -> R::Response
    where
        R::Response: Decodable,
    {
        let corr = self.send(version, req).await;
        let (got, body) = self.recv::<R>(version).await;
        assert_eq!(got, corr, "responses come in request order");
        body
    }

    pub async fn raw(&mut self, bytes: &[u8]) {
        tokio::time::timeout(WAIT, self.stream.write_all(bytes))
            .await
            .unwrap()
            .unwrap();
    }

    /// The next frame's payload, or None if the broker closed the connection.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let mut size = [0u8; 4];
        match tokio::time::timeout(WAIT, self.stream.read_exact(&mut size))
            .await
            .expect("a response within the wait")
        {
            Ok(_) => {}
            Err(_) => return None,
        }
        let size = i32::from_be_bytes(size) as usize;
        let mut buf = vec![0u8; size];
        tokio::time::timeout(WAIT, self.stream.read_exact(&mut buf))
            .await
            .unwrap()
            .ok()?;
        Some(Bytes::from(buf))
    }

    /// Whether the broker closed the connection (reads EOF or a reset within the wait).
    pub async fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(WAIT, self.stream.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// The first 8 bytes of a response frame: correlation id and (for the error-only answer to an
/// unknown API) the error code.
pub fn corr_and_code(mut frame: Bytes) -> (i32, i16) {
    (frame.get_i32(), frame.get_i16())
}

/// One uncompressed batch of `n` records `v0..`.
pub fn batch(n: usize) -> Bytes {
    let mut b = sluice_log::record::BatchBuilder::new(sluice_log::Compression::None);
    for i in 0..n {
        let v = format!("v{i}");
        b.append(1_700_000_000_000 + i as i64, None, Some(v.as_bytes()), &[]);
    }
    Bytes::from(b.build())
}
