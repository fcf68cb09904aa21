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
    let max = state.config.socket_request_max_bytes;
    let idle = state.config.connections_max_idle;
    loop {
        let frame = tokio::select! {
            biased;
            _ = stop.changed() => break,
            read = tokio::time::timeout(idle, read_frame(&mut rd, max)) => read,
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

/// Reads one frame: `Ok(None)` on a clean end of stream between frames.
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Option<Bytes>> {
    let mut size = [0u8; 4];
    match r.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(source) => {
            return Err(BrokerError::Io {
                what: "reading a request".into(),
                source,
            });
        }
    }
    let size = i32::from_be_bytes(size);
    let size = usize::try_from(size)
        .map_err(|_| BrokerError::Malformed(format!("negative frame size {size}")))?;
    if size > max {
        return Err(BrokerError::RequestTooLarge { size, max });
    }
    // Read into spare capacity: zeroing a megabyte per produce request first cost the broker
    // about 5% of its time under load.
    let mut buf = BytesMut::with_capacity(size);
    let io = |source| BrokerError::Io {
        what: format!("reading a request of {size} bytes"),
        source,
    };
    // Bounded: every round reads at least one byte of the frame or returns.
    while buf.len() < size {
        let left = (size - buf.len()) as u64;
        let n = (&mut *r).take(left).read_buf(&mut buf).await.map_err(io)?;
        if n == 0 {
            return Err(io(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
    Ok(Some(buf.freeze()))
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

    #[tokio::test]
    async fn frames_arriving_in_pieces_are_read_whole_and_in_order() {
        let first: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut stream = framed(&first);
        stream.extend(framed(b"second"));
        stream.extend(framed(b""));
        let mut r = chunked(stream, 7);
        assert_eq!(read_frame(&mut r, 1 << 20).await.unwrap().unwrap(), first);
        assert_eq!(
            &read_frame(&mut r, 1 << 20).await.unwrap().unwrap()[..],
            b"second"
        );
        assert!(
            read_frame(&mut r, 1 << 20)
                .await
                .unwrap()
                .unwrap()
                .is_empty()
        );
        assert!(
            read_frame(&mut r, 1 << 20).await.unwrap().is_none(),
            "clean end"
        );
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
