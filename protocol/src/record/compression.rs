//! Compression of the records section of a batch, with the framings Kafka's clients write:
//! gzip, Snappy (xerial-framed as the Java client writes it; raw Snappy from librdkafka also read),
//! LZ4 frame, and Zstandard.

use std::io::{Read, Write};

use crate::Compression;

/// xerial snappy-java stream header: magic, then version 1 and compatible version 1.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_BLOCK: usize = 32 * 1024;

/// Compresses `data` with `codec` into `out` (appending).
pub fn compress(codec: Compression, data: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
    match codec {
        Compression::None => out.extend_from_slice(data),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
            enc.write_all(data)?;
            enc.finish()?;
        }
        Compression::Snappy => {
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut enc = snap::raw::Encoder::new();
            for chunk in data.chunks(XERIAL_BLOCK) {
                let at = out.len();
                out.extend_from_slice(&[0; 4]);
                let start = out.len();
                out.resize(start + snap::raw::max_compress_len(chunk.len()), 0);
                let n = enc
                    .compress(chunk, &mut out[start..])
                    .map_err(std::io::Error::other)?;
                out.truncate(start + n);
                out[at..at + 4].copy_from_slice(&(n as u32).to_be_bytes());
            }
        }
        Compression::Lz4 => {
            let mut enc = lz4::EncoderBuilder::new()
                .level(1)
                .block_size(lz4::BlockSize::Max64KB)
                .build(out)?;
            enc.write_all(data)?;
            let (_, res) = enc.finish();
            res?;
        }
        Compression::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(out, 1)?;
            enc.write_all(data)?;
            enc.finish()?;
        }
    }
    Ok(())
}

/// Decompresses `data` into a new buffer of at most `limit` bytes.
pub fn decompress(codec: Compression, data: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    decompress_into(codec, data, limit, &mut out)?;
    Ok(out)
}

/// Decompresses `data` into `out` (cleared first, its allocation reused), at most `limit` bytes.
pub(crate) fn decompress_into(
    codec: Compression,
    data: &[u8],
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    out.clear();
    let read_limited = |r: &mut dyn Read, out: &mut Vec<u8>| -> Result<(), String> {
        let n = r
            .take((limit as u64).saturating_add(1))
            .read_to_end(out)
            .map_err(|e| format!("{} data does not decompress: {e}", codec.as_str()))?;
        if n > limit {
            return Err(format!(
                "{} data decompresses to more than {limit} bytes",
                codec.as_str()
            ));
        }
        Ok(())
    };
    match codec {
        Compression::None => out.extend_from_slice(data),
        Compression::Gzip => read_limited(&mut flate2::read::GzDecoder::new(data), out)?,
        Compression::Snappy => snappy_decompress(data, limit, out)?,
        Compression::Lz4 => {
            let mut dec = lz4::Decoder::new(data).map_err(|e| format!("lz4 data: {e}"))?;
            read_limited(&mut dec, out)?;
        }
        Compression::Zstd => {
            let mut dec =
                zstd::stream::read::Decoder::new(data).map_err(|e| format!("zstd data: {e}"))?;
            read_limited(&mut dec, out)?;
        }
    }
    Ok(())
}

fn snappy_decompress(data: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), String> {
    let mut dec = snap::raw::Decoder::new();
    let mut raw = |block: &[u8], out: &mut Vec<u8>| -> Result<(), String> {
        let n = snap::raw::decompress_len(block).map_err(|e| format!("snappy data: {e}"))?;
        if out.len().saturating_add(n) > limit {
            return Err(format!(
                "snappy data decompresses to more than {limit} bytes"
            ));
        }
        let start = out.len();
        out.resize(start + n, 0);
        let got = dec
            .decompress(block, &mut out[start..])
            .map_err(|e| format!("snappy data: {e}"))?;
        out.truncate(start + got);
        Ok(())
    };
    if data.len() >= 16 && data[..8] == XERIAL_MAGIC {
        let mut rest = &data[16..];
        while !rest.is_empty() {
            let Some(len) = rest.get(..4) else {
                return Err("snappy data: truncated xerial block length".into());
            };
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let Some(block) = rest.get(4..4 + len) else {
                return Err("snappy data: truncated xerial block".into());
            };
            raw(block, out)?;
            rest = &rest[4 + len..];
        }
        Ok(())
    } else {
        raw(data, out)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const CODECS: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    proptest! {
        #[test]
        fn every_codec_roundtrips(data in proptest::collection::vec(any::<u8>(), 0..100_000), i in 0usize..5) {
            let codec = CODECS[i];
            let mut c = Vec::new();
            compress(codec, &data, &mut c).unwrap();
            prop_assert_eq!(decompress(codec, &c, 1 << 20).unwrap(), data);
        }

        #[test]
        fn garbage_is_an_error_not_a_panic(data in proptest::collection::vec(any::<u8>(), 0..200), i in 1usize..5) {
            let _ = decompress(CODECS[i], &data, 1 << 20);
        }
    }

    #[test]
    fn decompression_is_bounded() {
        let data = vec![0u8; 1 << 20];
        for codec in &CODECS[1..] {
            let mut c = Vec::new();
            compress(*codec, &data, &mut c).unwrap();
            let err = decompress(*codec, &c, 1000).unwrap_err();
            assert!(err.contains("more than 1000 bytes"), "{codec:?}: {err}");
        }
    }

    #[test]
    fn decompression_without_a_bound_does_not_overflow() {
        // Found by fuzz/decode_batch: `limit + 1` overflowed for `usize::MAX` ("no bound").
        let data = b"unbounded".repeat(10);
        for codec in &CODECS[1..] {
            let mut c = Vec::new();
            compress(*codec, &data, &mut c).unwrap();
            assert_eq!(
                decompress(*codec, &c, usize::MAX).unwrap(),
                data,
                "{codec:?}"
            );
        }
    }

    #[test]
    fn raw_snappy_as_librdkafka_writes_it_is_read() {
        let data = b"hello hello hello hello".repeat(100);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(
            decompress(Compression::Snappy, &raw, 1 << 20).unwrap(),
            data
        );
    }
}
