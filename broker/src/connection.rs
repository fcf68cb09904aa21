//! One client connection: a reader task decodes frames and runs handlers in request order; a
//! writer task answers in the same order, awaiting responses that wait on something (an fsync,
//! a long-poll) while the reader goes on. All socket I/O of the broker is here.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseKind};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, watch};

use crate::Principal;
use crate::codec::{self, Decoded};
use crate::error::{BrokerError, Result};
use crate::handlers::{self, LaterResponse, Reply, RequestContext};
use crate::state::BrokerState;

/// Responses a connection may owe at once before the reader stops reading (back-pressure on
/// a client pipelining faster than acks come back).
const MAX_IN_FLIGHT: usize = 128;

enum Outgoing {
    /// An encoded frame.
    Frame(BytesMut),
    /// A response still to be awaited and encoded.
    Later {
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
        response: LaterResponse,
    },
}

pub(crate) async fn serve(
    state: Arc<BrokerState>,
    stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    tracing::debug!(%peer, "connection opened");
    let (rd, wr) = stream.into_split();
    let mut rd = BufReader::with_capacity(16 * 1024, rd);
    let (tx, rx) = mpsc::channel(MAX_IN_FLIGHT);
    let writer = tokio::spawn(write_loop(wr, rx, peer));
    let principal = Arc::new(Principal::anonymous());
    let client_host: Arc<str> = Arc::from(format!("/{}", peer.ip()));
    let mut frames = FrameReader::new(state.config.socket_request_max_bytes);
    let idle = state.config.connections_max_idle;
    loop {
        let frame = tokio::select! {
            biased;
            _ = stop.changed() => break,
            read = tokio::time::timeout(idle, frames.next(&mut rd)) => read,
        };
        let frame = match frame {
            Err(_) => {
                tracing::debug!(%peer, "closing idle connection (connections.max.idle.ms)");
                break;
            }
            Ok(Ok(Some(frame))) => frame,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                break;
            }
        };
        let out = match codec::decode_request(frame) {
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                break;
            }
            Ok(Decoded::Unsupported {
                api_key,
                api_version,
                correlation_id,
            }) => {
                tracing::debug!(%peer, api_key, api_version, "unsupported API or version");
                match codec::encode_unsupported(api_key, correlation_id) {
                    Ok(frame) => Outgoing::Frame(frame),
                    Err(e) => {
                        tracing::error!(%peer, error = %e, "closing connection");
                        break;
                    }
                }
            }
            Ok(Decoded::Request(request)) => {
                let codec::Request {
                    api_key,
                    header,
                    body,
                } = *request;
                let ctx = RequestContext {
                    principal: Arc::clone(&principal),
                    client_id: header.client_id.unwrap_or_default(),
                    client_host: Arc::clone(&client_host),
                    api_version: header.request_api_version,
                };
                tracing::trace!(%peer, api = ?api_key, version = header.request_api_version, "request");
                let version = header.request_api_version;
                let correlation_id = header.correlation_id;
                match handlers::dispatch(&state, &ctx, body).await {
                    Reply::Now(response) => {
                        match codec::encode_response(api_key, version, correlation_id, &response) {
                            Ok(frame) => Outgoing::Frame(frame),
                            Err(e) => {
                                tracing::error!(%peer, error = %e, "closing connection");
                                break;
                            }
                        }
                    }
                    Reply::Later(response) => Outgoing::Later {
                        api_key,
                        version,
                        correlation_id,
                        response,
                    },
                    Reply::None => continue,
                    Reply::Close(why) => {
                        tracing::warn!(%peer, reason = %why, "closing connection");
                        break;
                    }
                }
            }
        };
        if tx.send(out).await.is_err() {
            break; // the writer is gone: the socket failed
        }
    }
    drop(tx);
    // Ignored error: a panicked writer has nothing left to flush.
    let _ = writer.await;
    tracing::debug!(%peer, "connection closed");
}

/// The buffer a frame's body starts in; it grows as bytes arrive, never ahead of them by more
/// than it already holds, so a declared size costs nothing until the bytes come.
const FIRST_CHUNK: usize = 64 * 1024;

/// Reads request frames (a 4-byte size, then that many bytes) off one connection.
///
/// The body's buffer grows with what has arrived (doubling from [`FIRST_CHUNK`], up to the
/// declared size, which `socket.request.max.bytes` bounds): a client declaring 100 MB and sending
/// nothing holds 64 KiB, not 100 MB of address space. [`FrameReader::next`] is cancel-safe: a
/// frame half read when its future is dropped goes on at the next call.
#[derive(Debug)]
pub(crate) struct FrameReader {
    max: usize,
    size: [u8; 4],
    size_read: usize,
    body: Option<(usize, BytesMut)>,
}

impl FrameReader {
    pub(crate) fn new(max: usize) -> FrameReader {
        FrameReader {
            max,
            size: [0; 4],
            size_read: 0,
            body: None,
        }
    }

    /// Bytes reserved for the frame being read.
    #[cfg(test)]
    fn reserved(&self) -> usize {
        self.body.as_ref().map_or(0, |(_, b)| b.capacity())
    }

    /// Reads one frame: `Ok(None)` on an end of stream between frames (or inside the size).
    pub(crate) async fn next<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<Option<Bytes>> {
        while self.body.is_none() {
            let n = r
                .read(&mut self.size[self.size_read..])
                .await
                .map_err(|source| BrokerError::Io {
                    what: "reading a request".into(),
                    source,
                })?;
            if n == 0 {
                return Ok(None);
            }
            self.size_read += n;
            if self.size_read < 4 {
                continue;
            }
            self.size_read = 0;
            let size = i32::from_be_bytes(self.size);
            let size = usize::try_from(size)
                .map_err(|_| BrokerError::Malformed(format!("negative frame size {size}")))?;
            if size > self.max {
                return Err(BrokerError::RequestTooLarge {
                    size,
                    max: self.max,
                });
            }
            self.body = Some((size, BytesMut::with_capacity(size.min(FIRST_CHUNK))));
        }
        let Some((size, buf)) = self.body.as_mut() else {
            return Ok(None);
        };
        let size = *size;
        let io = |source| BrokerError::Io {
            what: format!("reading a request of {size} bytes"),
            source,
        };
        // Bounded: every round reads at least one byte of the frame or returns.
        while buf.len() < size {
            if buf.len() == buf.capacity() {
                // Read into spare capacity, never zeroed: zeroing a megabyte per produce
                // request first cost the broker about 5% of its time under load.
                buf.reserve((size - buf.len()).min(buf.capacity().max(FIRST_CHUNK)));
            }
            let room = (buf.capacity() - buf.len()).min(size - buf.len()) as u64;
            let n = (&mut *r).take(room).read_buf(buf).await.map_err(io)?;
            if n == 0 {
                return Err(io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
        let frame = self.body.take().map(|(_, b)| b.freeze());
        Ok(frame)
    }
}

async fn write_loop(wr: OwnedWriteHalf, mut rx: mpsc::Receiver<Outgoing>, peer: SocketAddr) {
    let mut w = BufWriter::with_capacity(16 * 1024, wr);
    while let Some(out) = rx.recv().await {
        let frame = match out {
            Outgoing::Frame(f) => f,
            Outgoing::Later {
                api_key,
                version,
                correlation_id,
                response,
            } => {
                let response: ResponseKind = response.await;
                match codec::encode_response(api_key, version, correlation_id, &response) {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::error!(%peer, error = %e, "closing connection");
                        return;
                    }
                }
            }
        };
        if let Err(e) = w.write_all(&frame).await {
            tracing::debug!(%peer, error = %e, "write failed");
            return;
        }
        if rx.is_empty()
            && let Err(e) = w.flush().await
        {
            tracing::debug!(%peer, error = %e, "write failed");
            return;
        }
    }
    // Ignored errors: the peer may already be gone; there is nothing left to tell it.
    let _ = w.flush().await;
    let _ = w.shutdown().await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A reader that hands out at most `chunk` bytes per read, as a slow socket does.
    fn chunked(bytes: Vec<u8>, chunk: usize) -> impl AsyncRead + Unpin {
        let (mut tx, rx) = tokio::io::duplex(chunk);
        tokio::spawn(async move {
            for piece in bytes.chunks(chunk) {
                if tx.write_all(piece).await.is_err() {
                    return;
                }
            }
        });
        rx
    }

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut v = (payload.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Option<Bytes>> {
        FrameReader::new(max).next(r).await
    }

    #[tokio::test]
    async fn frames_arriving_in_pieces_are_read_whole_and_in_order() {
        let first: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut stream = framed(&first);
        stream.extend(framed(b"second"));
        stream.extend(framed(b""));
        let mut r = chunked(stream, 7);
        let mut frames = FrameReader::new(1 << 20);
        assert_eq!(frames.next(&mut r).await.unwrap().unwrap(), first);
        assert_eq!(&frames.next(&mut r).await.unwrap().unwrap()[..], b"second");
        assert!(frames.next(&mut r).await.unwrap().unwrap().is_empty());
        assert!(frames.next(&mut r).await.unwrap().is_none(), "clean end");
    }

    #[tokio::test(start_paused = true)]
    async fn a_declared_size_reserves_nothing_until_its_bytes_arrive() {
        let (mut client, mut server) = tokio::io::duplex(4 << 20);
        let mut frames = FrameReader::new(100 << 20);
        // 100 MB declared, 10 bytes sent, then silence.
        client
            .write_all(&(100i32 << 20).to_be_bytes())
            .await
            .unwrap();
        client.write_all(&[7u8; 10]).await.unwrap();
        let pending = tokio::time::timeout(Duration::from_secs(60), frames.next(&mut server)).await;
        assert!(pending.is_err(), "the frame is not complete");
        assert!(
            frames.reserved() <= FIRST_CHUNK,
            "{} bytes reserved for 10 received",
            frames.reserved()
        );
        // The same frame goes on where it was (the read is cancel-safe), growing with the
        // bytes: after 1 MB it holds at most twice that.
        let mb = vec![9u8; 1 << 20];
        client.write_all(&mb).await.unwrap();
        let pending = tokio::time::timeout(Duration::from_secs(60), frames.next(&mut server)).await;
        assert!(pending.is_err());
        assert!(frames.reserved() <= 2 << 20, "{}", frames.reserved());
        drop(client);
        let e = frames.next(&mut server).await.unwrap_err().to_string();
        assert!(e.contains("104857600 bytes"), "{e}");
    }

    #[tokio::test]
    async fn a_real_large_frame_is_read_whole() {
        let big: Vec<u8> = (0..(5u32 << 20)).map(|i| (i % 251) as u8).collect();
        let mut stream = framed(&big);
        stream.extend(framed(b"after"));
        let mut r = chunked(stream, 64 * 1024);
        let mut frames = FrameReader::new(100 << 20);
        let got = frames.next(&mut r).await.unwrap().unwrap();
        assert!(got == big, "5 MB frame read back intact");
        assert_eq!(&frames.next(&mut r).await.unwrap().unwrap()[..], b"after");
    }

    #[tokio::test]
    async fn a_frame_cut_short_is_an_error_naming_its_size() {
        let mut stream = framed(&[1u8; 500]);
        stream.truncate(300);
        let e = read_frame(&mut chunked(stream, 64), 1 << 20)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("500 bytes"), "{e}");
    }

    #[tokio::test]
    async fn oversized_and_negative_sizes_are_refused_before_reading() {
        let e = read_frame(&mut chunked(framed(&[0u8; 65]), 64), 64).await;
        assert!(matches!(
            e,
            Err(BrokerError::RequestTooLarge { size: 65, max: 64 })
        ));
        let e = read_frame(&mut chunked((-1i32).to_be_bytes().to_vec(), 4), 64).await;
        assert!(matches!(e, Err(BrokerError::Malformed(_))), "{e:?}");
    }
}
