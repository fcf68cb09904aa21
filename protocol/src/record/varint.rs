//! Zigzag varints, as Kafka's records use (protobuf's encoding).

/// Appends `v` as a zigzag varint (at most 5 bytes).
#[inline]
pub fn put_varint(buf: &mut Vec<u8>, v: i32) {
    put_uvarint(buf, ((v << 1) ^ (v >> 31)) as u32 as u64);
}

/// Appends `v` as a zigzag varlong (at most 10 bytes).
#[inline]
pub fn put_varlong(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

#[inline]
fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Bytes `v` takes as a zigzag varint.
#[inline]
pub fn varint_len(v: i32) -> usize {
    uvarint_len(((v << 1) ^ (v >> 31)) as u32 as u64)
}

/// Bytes `v` takes as a zigzag varlong.
#[inline]
pub fn varlong_len(v: i64) -> usize {
    uvarint_len(((v << 1) ^ (v >> 63)) as u64)
}

#[inline]
fn uvarint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// A cursor over a byte slice that never panics: every read past the end is `None`.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    fn uvarint(&mut self, max_bytes: usize) -> Option<u64> {
        let mut out = 0u64;
        for i in 0..max_bytes {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            out |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(out);
            }
        }
        None
    }

    #[inline]
    pub fn varint(&mut self) -> Option<i32> {
        let u = self.uvarint(5)?;
        if u > u64::from(u32::MAX) {
            return None;
        }
        let u = u as u32;
        Some(((u >> 1) as i32) ^ -((u & 1) as i32))
    }

    #[inline]
    pub fn varlong(&mut self) -> Option<i64> {
        let u = self.uvarint(10)?;
        Some(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    #[inline]
    pub fn i8(&mut self) -> Option<i8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b as i8)
    }

    #[inline]
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// A varint length (-1 = null) followed by that many bytes; returns the byte range.
    #[inline]
    pub fn nullable_range(&mut self) -> Option<Option<std::ops::Range<usize>>> {
        let len = self.varint()?;
        if len < 0 {
            return if len == -1 { Some(None) } else { None };
        }
        let start = self.pos;
        self.take(len as usize)?;
        Some(Some(start..self.pos))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn varint_roundtrips(v in any::<i32>()) {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            prop_assert_eq!(b.len(), varint_len(v));
            let mut r = Reader::new(&b);
            prop_assert_eq!(r.varint(), Some(v));
            prop_assert_eq!(r.remaining(), 0);
        }

        #[test]
        fn varlong_roundtrips(v in any::<i64>()) {
            let mut b = Vec::new();
            put_varlong(&mut b, v);
            prop_assert_eq!(b.len(), varlong_len(v));
            let mut r = Reader::new(&b);
            prop_assert_eq!(r.varlong(), Some(v));
        }

        #[test]
        fn reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut r = Reader::new(&bytes);
            let _ = r.varint();
            let _ = r.varlong();
            let _ = r.nullable_range();
            let _ = r.take(7);
        }
    }
}
