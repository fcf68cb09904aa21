//! Kafka's primitive types, big-endian: the reads that the consumer protocol and the records of
//! the internal topics are made of, failing with [`Error::CorruptRecord`] instead of panicking.

use crate::{Error, Result};

/// Appends an i16-length string (Kafka's STRING), cut at `i16::MAX` bytes.
pub fn put_string(buf: &mut Vec<u8>, s: &str) {
    // Group ids, topics and metadata are bounded by the callers (metadata by
    // `offset.metadata.max.bytes`); a longer string is cut rather than mis-framed.
    let bytes = s.as_bytes();
    let len = bytes.len().min(i16::MAX as usize);
    buf.extend_from_slice(&(len as i16).to_be_bytes());
    buf.extend_from_slice(&bytes[..len]);
}

/// Big-endian reads that fail with [`Error::CorruptRecord`] instead of panicking.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(Error::CorruptRecord(format!(
                "needs {n} bytes at byte {}, found {}",
                self.pos,
                self.buf.len().saturating_sub(self.pos)
            )));
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub fn i8(&mut self) -> Result<i8> {
        Ok(i8::from_be_bytes(self.array()?))
    }

    pub fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn utf8(bytes: &[u8]) -> Result<String> {
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::CorruptRecord("string is not UTF-8".into()))
    }

    /// An i16-length string; null (-1) reads as empty.
    pub fn string(&mut self) -> Result<String> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(String::new());
        }
        Self::utf8(self.take(len as usize)?)
    }

    /// An i16-length string; null (-1) is `None`.
    pub fn nullable_string(&mut self) -> Result<Option<String>> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        Self::utf8(self.take(len as usize)?).map(Some)
    }

    /// An i32-length byte string; null (-1) is `None`.
    pub fn nullable_bytes(&mut self) -> Result<Option<&'a [u8]>> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(None);
        }
        Ok(Some(self.take(len as usize)?))
    }

    pub fn unsigned_varint(&mut self) -> Result<u32> {
        let mut value = 0u32;
        for i in 0..5 {
            let [b] = self.array::<1>()?;
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Error::CorruptRecord("varint longer than 5 bytes".into()))
    }

    pub fn compact_string(&mut self) -> Result<String> {
        match self.unsigned_varint()? {
            0 => Ok(String::new()),
            n => Self::utf8(self.take(n as usize - 1)?),
        }
    }

    pub fn skip_tagged_fields(&mut self) -> Result<()> {
        let n = self.unsigned_varint()?;
        for _ in 0..n {
            let _tag = self.unsigned_varint()?;
            let len = self.unsigned_varint()?;
            self.take(len as usize)?;
        }
        Ok(())
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Fails if bytes are left over.
    pub fn finish(&self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(Error::CorruptRecord(format!(
                "{} bytes left over after the last field",
                self.remaining()
            )));
        }
        Ok(())
    }
}
