//! Windows: tumbling and hopping time windows, session windows, and the windowed key.

use std::time::Duration;

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Fixed-size windows by event time: tumbling (advance = size) or hopping (advance < size),
/// with a grace period for late records (Kafka's `TimeWindows`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindows {
    pub(crate) size_ms: i64,
    pub(crate) advance_ms: i64,
    pub(crate) grace_ms: i64,
}

impl TimeWindows {
    /// Tumbling windows of `size` that accept no record after they end.
    pub fn of_size_with_no_grace(size: Duration) -> Self {
        Self::of_size_and_grace(size, Duration::ZERO)
    }

    /// Tumbling windows of `size` that accept records up to `grace` after they end.
    pub fn of_size_and_grace(size: Duration, grace: Duration) -> Self {
        let size_ms = ms(size).max(1);
        Self {
            size_ms,
            advance_ms: size_ms,
            grace_ms: ms(grace),
        }
    }

    /// Hopping windows: a new window every `advance` (at most the size).
    pub fn advance_by(mut self, advance: Duration) -> Self {
        self.advance_ms = ms(advance).clamp(1, self.size_ms);
        self
    }

    /// The window size in ms.
    pub fn size_ms(&self) -> i64 {
        self.size_ms
    }

    /// The grace period in ms.
    pub fn grace_ms(&self) -> i64 {
        self.grace_ms
    }

    /// The start times of the windows `timestamp` falls in, ascending (Kafka's
    /// `windowsFor`).
    pub fn window_starts(&self, timestamp: i64) -> impl Iterator<Item = i64> + use<> {
        let first = ((timestamp - self.size_ms + self.advance_ms).max(0) / self.advance_ms)
            * self.advance_ms;
        let advance = self.advance_ms;
        (0..)
            .map(move |i: i64| first + i * advance)
            .take_while(move |&s| s <= timestamp)
    }
}

/// Windows of activity per key, closed after an inactivity gap (Kafka's `SessionWindows`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindows {
    pub(crate) gap_ms: i64,
    pub(crate) grace_ms: i64,
}

impl SessionWindows {
    /// Sessions that end after `gap` without a record, accepting no late record.
    pub fn of_inactivity_gap_with_no_grace(gap: Duration) -> Self {
        Self::of_inactivity_gap_and_grace(gap, Duration::ZERO)
    }

    /// Sessions that end after `gap` without a record, accepting records up to `grace` late.
    pub fn of_inactivity_gap_and_grace(gap: Duration, grace: Duration) -> Self {
        Self {
            gap_ms: ms(gap),
            grace_ms: ms(grace),
        }
    }

    /// The inactivity gap in ms.
    pub fn gap_ms(&self) -> i64 {
        self.gap_ms
    }
}

/// A key with the window it belongs to: `[start, end)` for time windows, `[start, end]` for
/// sessions (Kafka's `Windowed<K>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Windowed<K> {
    /// The key.
    pub key: K,
    /// The window's start, in ms.
    pub start: i64,
    /// The window's end, in ms.
    pub end: i64,
}

impl<K: std::fmt::Display> std::fmt::Display for Windowed<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}@{}/{}]", self.key, self.start, self.end)
    }
}

/// A serde of windowed keys as Kafka writes them: the key's bytes, then the 8-byte big-endian
/// window start (`TimeWindowedSerializer`); sessions add the 8-byte end
/// (`SessionWindowedSerializer`).
pub(crate) struct WindowedSerde<K> {
    pub(crate) inner: crate::serdes::SerdeRef<K>,
    /// Time windows: the fixed size, to give the end back on read. Sessions: `None`.
    pub(crate) size_ms: Option<i64>,
}

impl<K: 'static> crate::serdes::Serde<Windowed<K>> for WindowedSerde<K> {
    fn serialize(&self, value: &Windowed<K>) -> Result<Option<bytes::Bytes>, String> {
        let key = self.inner.serialize(&value.key)?.unwrap_or_default();
        let mut b = bytes::BytesMut::with_capacity(key.len() + 16);
        b.extend_from_slice(&key);
        if self.size_ms.is_some() {
            b.extend_from_slice(&value.start.to_be_bytes());
        } else {
            b.extend_from_slice(&value.end.to_be_bytes());
            b.extend_from_slice(&value.start.to_be_bytes());
        }
        Ok(Some(b.freeze()))
    }

    fn deserialize(&self, bytes: Option<&[u8]>) -> Result<Windowed<K>, String> {
        let b = bytes.ok_or("null where a windowed key was expected")?;
        let tail = if self.size_ms.is_some() { 8 } else { 16 };
        if b.len() < tail {
            return Err(format!("{} bytes are too few for a windowed key", b.len()));
        }
        let (k, t) = b.split_at(b.len() - tail);
        let read = |s: &[u8]| i64::from_be_bytes(s.try_into().unwrap_or([0; 8]));
        let key = self.inner.deserialize(Some(k))?;
        Ok(match self.size_ms {
            Some(size) => {
                let start = read(t);
                Windowed {
                    key,
                    start,
                    end: start.saturating_add(size),
                }
            }
            None => Windowed {
                key,
                end: read(&t[..8]),
                start: read(&t[8..]),
            },
        })
    }

    fn name(&self) -> &'static str {
        "windowed"
    }
}

/// The serde of time-windowed keys of `size`, Kafka's layout.
pub fn time_windowed_serde<K: 'static>(
    inner: crate::serdes::SerdeRef<K>,
    size_ms: i64,
) -> crate::serdes::SerdeRef<Windowed<K>> {
    std::sync::Arc::new(WindowedSerde {
        inner,
        size_ms: Some(size_ms),
    })
}

/// The serde of session-windowed keys, Kafka's layout.
pub fn session_windowed_serde<K: 'static>(
    inner: crate::serdes::SerdeRef<K>,
) -> crate::serdes::SerdeRef<Windowed<K>> {
    std::sync::Arc::new(WindowedSerde {
        inner,
        size_ms: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tumbling_and_hopping_windows_for_a_timestamp() {
        let t = TimeWindows::of_size_with_no_grace(Duration::from_secs(60));
        assert_eq!(t.window_starts(59_999).collect::<Vec<_>>(), vec![0]);
        assert_eq!(t.window_starts(60_000).collect::<Vec<_>>(), vec![60_000]);
        let h = TimeWindows::of_size_with_no_grace(Duration::from_secs(10))
            .advance_by(Duration::from_secs(5));
        assert_eq!(
            h.window_starts(12_000).collect::<Vec<_>>(),
            vec![5_000, 10_000]
        );
        assert_eq!(h.window_starts(3_000).collect::<Vec<_>>(), vec![0]);
    }

    #[test]
    fn windowed_keys_round_trip_in_kafkas_layout() {
        let s = time_windowed_serde(crate::serdes::string(), 60_000);
        let w = Windowed {
            key: "eu".to_owned(),
            start: 60_000,
            end: 120_000,
        };
        let b = s.serialize(&w).unwrap().unwrap();
        assert_eq!(&b[..2], b"eu");
        assert_eq!(&b[2..], &60_000i64.to_be_bytes());
        assert_eq!(s.deserialize(Some(&b)).unwrap(), w);
        let ss = session_windowed_serde(crate::serdes::string());
        let w = Windowed {
            key: "u".to_owned(),
            start: 5,
            end: 9,
        };
        assert_eq!(
            ss.deserialize(ss.serialize(&w).unwrap().as_deref())
                .unwrap(),
            w
        );
    }
}
