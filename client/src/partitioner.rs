//! Choosing a partition for a record, as Kafka's Java producer does.
//!
//! Keyed records go to `toPositive(murmur2(key)) % partitions`, so Sluice and Kafka clients agree
//! on where a key lives. Unkeyed records go to a sticky partition that changes only when a batch
//! for it is closed (KIP-480), which fills batches faster than round robin.
//!
//! ```
//! use sluice_client::partitioner::{StickyPartitioner, murmur2, partition_for_key};
//!
//! assert_eq!(murmur2(b"21"), -973932308);
//! assert_eq!(partition_for_key(b"21", 6), (-973932308_i32 & 0x7fff_ffff) % 6);
//!
//! let sticky = StickyPartitioner::new(42);
//! let p = sticky.partition("events", 6);
//! assert_eq!(sticky.partition("events", 6), p); // sticks until the batch is closed
//! sticky.on_new_batch("events", p);
//! assert_ne!(sticky.partition("events", 6), p);
//! ```

use std::hash::{BuildHasher, Hasher};

use parking_lot::Mutex;
use rustc_hash::FxHashMap as HashMap;

/// Kafka's 32-bit murmur2 hash, bit for bit as `org.apache.kafka.common.utils.Utils.murmur2`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java takes the length as an `int`; arrays longer than that do not exist there.
    let mut h = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if let Some(&first) = tail.first() {
        h ^= u32::from(first);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`, which overflows on `i32::MIN`).
pub fn to_positive(x: i32) -> i32 {
    x & 0x7fff_ffff
}

/// The partition of a keyed record: `toPositive(murmur2(key)) % num_partitions`, as Kafka's
/// producer computes it.
///
/// A topic has at least one partition; for `num_partitions <= 0` this returns 0 rather than
/// failing, so callers must check the count first.
pub fn partition_for_key(key: &[u8], num_partitions: i32) -> i32 {
    if num_partitions <= 0 {
        return 0;
    }
    to_positive(murmur2(key)) % num_partitions
}

/// Kafka's sticky partitioning of unkeyed records (KIP-480): each topic sticks to one partition
/// until a batch for that partition is closed, then moves to another chosen uniformly at random.
///
/// Thread-safe: all methods take `&self`. The randomness comes from a seed, so tests and
/// simulations repeat exactly.
#[derive(Debug)]
pub struct StickyPartitioner {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    rng: SplitMix64,
    topics: HashMap<String, Sticky>,
}

#[derive(Debug, Clone, Copy)]
enum Sticky {
    /// Records go to this partition.
    At(i32),
    /// The batch of this partition was closed: pick another one at the next record.
    LeaveFrom(i32),
}

impl StickyPartitioner {
    /// A partitioner whose choices follow from `seed`.
    pub fn new(seed: u64) -> Self {
        StickyPartitioner {
            inner: Mutex::new(Inner {
                rng: SplitMix64(seed),
                topics: HashMap::default(),
            }),
        }
    }

    /// A partitioner seeded from the process's random hasher keys (different on every run).
    pub fn from_entropy() -> Self {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(0x5eed);
        Self::new(hasher.finish())
    }

    /// The partition for the next unkeyed record of `topic`, which has `num_partitions`.
    ///
    /// The same until [`StickyPartitioner::on_new_batch`] closes it, or until it no longer exists
    /// because the count shrank. Returns 0 for `num_partitions <= 0`.
    pub fn partition(&self, topic: &str, num_partitions: i32) -> i32 {
        if num_partitions <= 0 {
            return 0;
        }
        let mut inner = self.inner.lock();
        let Inner { rng, topics } = &mut *inner;
        let current = topics.get(topic).copied();
        let chosen = match current {
            Some(Sticky::At(p)) if p < num_partitions => return p,
            Some(Sticky::LeaveFrom(prev)) if prev < num_partitions => {
                pick_other(rng, num_partitions, prev)
            }
            _ => pick(rng, num_partitions),
        };
        match topics.get_mut(topic) {
            Some(state) => *state = Sticky::At(chosen),
            None => {
                topics.insert(topic.to_owned(), Sticky::At(chosen));
            }
        }
        chosen
    }

    /// Tells the partitioner that the batch for `prev_partition` of `topic` was closed, so the
    /// next record goes elsewhere.
    ///
    /// As in Kafka, nothing changes unless `prev_partition` is the current sticky partition (a
    /// batch may close after another thread already moved on).
    pub fn on_new_batch(&self, topic: &str, prev_partition: i32) {
        let mut inner = self.inner.lock();
        if let Some(state) = inner.topics.get_mut(topic)
            && matches!(*state, Sticky::At(p) if p == prev_partition)
        {
            *state = Sticky::LeaveFrom(prev_partition);
        }
    }
}

impl Default for StickyPartitioner {
    fn default() -> Self {
        Self::from_entropy()
    }
}

/// Uniform in `0..n`, for `n >= 1`.
fn pick(rng: &mut SplitMix64, n: i32) -> i32 {
    rng.below(n.unsigned_abs()) as i32
}

/// Uniform among `0..n` except `prev`, for `0 <= prev < n`; `prev` itself when it is the only one.
fn pick_other(rng: &mut SplitMix64, n: i32, prev: i32) -> i32 {
    if n <= 1 {
        return prev;
    }
    let r = pick(rng, n - 1);
    if r >= prev { r + 1 } else { r }
}

/// SplitMix64 (Steele, Lea and Flood): tiny, fast, and good enough to spread partitions.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` for `n >= 1` (multiply-shift; the bias is below 2^-32).
    fn below(&mut self, n: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(n)) >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn murmur2_matches_kafka_vectors() {
        let vectors: [(&[u8], i32); 7] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
            (b"", 275646681),
        ];
        for (input, expect) in vectors {
            assert_eq!(
                murmur2(input),
                expect,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn partition_for_key_is_positive_modulo() {
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-1), i32::MAX);
        // murmur2("21") = -973932308 -> & 0x7fffffff = 1173551340
        assert_eq!(partition_for_key(b"21", 1000), 1173551340 % 1000);
        for n in 1..50 {
            let p = partition_for_key(b"foobar", n);
            assert!((0..n).contains(&p));
        }
        assert_eq!(partition_for_key(b"x", 0), 0);
        assert_eq!(partition_for_key(b"x", -3), 0);
    }

    #[test]
    fn sticks_until_the_batch_closes_then_moves() {
        let s = StickyPartitioner::new(7);
        let p = s.partition("t", 4);
        for _ in 0..100 {
            assert_eq!(s.partition("t", 4), p);
        }
        s.on_new_batch("t", (p + 1) % 4); // a stale batch: ignored
        assert_eq!(s.partition("t", 4), p);
        s.on_new_batch("t", p);
        let q = s.partition("t", 4);
        assert_ne!(q, p);
        assert_eq!(s.partition("t", 4), q);
    }

    #[test]
    fn single_partition_and_bad_counts() {
        let s = StickyPartitioner::new(1);
        assert_eq!(s.partition("t", 1), 0);
        s.on_new_batch("t", 0);
        assert_eq!(s.partition("t", 1), 0);
        assert_eq!(s.partition("t", 0), 0);
        assert_eq!(s.partition("t", -1), 0);
        s.on_new_batch("unknown", 3);
    }

    #[test]
    fn shrinking_count_repicks_and_topics_are_independent() {
        let s = StickyPartitioner::new(3);
        let mut p = s.partition("big", 100);
        while p < 10 {
            s.on_new_batch("big", p);
            p = s.partition("big", 100);
        }
        assert!(s.partition("big", 10) < 10);
        let other = s.partition("other", 100);
        s.on_new_batch("other", other);
        let big = s.partition("big", 10);
        assert_eq!(s.partition("big", 10), big);
    }

    #[test]
    fn same_seed_same_choices() {
        let run = |seed| {
            let s = StickyPartitioner::new(seed);
            (0..50)
                .map(|_| {
                    let p = s.partition("t", 12);
                    s.on_new_batch("t", p);
                    p
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(99), run(99));
        assert_ne!(run(99), run(100));
    }

    #[test]
    fn switches_cover_all_partitions_evenly() {
        const SEED: u64 = 0x0051_09ce;
        const N: i32 = 6;
        const BATCHES: usize = 6000;
        let s = StickyPartitioner::new(SEED);
        let mut counts = [0usize; N as usize];
        let mut prev = None;
        for _ in 0..BATCHES {
            let p = s.partition("t", N);
            for _ in 0..9 {
                assert_eq!(s.partition("t", N), p, "seed {SEED}");
            }
            assert_ne!(Some(p), prev, "seed {SEED}: moved to the same partition");
            counts[p as usize] += 1;
            s.on_new_batch("t", p);
            prev = Some(p);
        }
        let expect = BATCHES / N as usize;
        for (p, &c) in counts.iter().enumerate() {
            assert!(
                c.abs_diff(expect) < expect / 10,
                "seed {SEED}: partition {p} got {c} batches of {BATCHES}: {counts:?}"
            );
        }
    }

    #[test]
    fn usable_from_many_threads() {
        let s = Arc::new(StickyPartitioner::new(5));
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let s = Arc::clone(&s);
                std::thread::spawn(move || {
                    let topic = format!("t{}", i % 2);
                    for _ in 0..1000 {
                        let p = s.partition(&topic, 8);
                        assert!((0..8).contains(&p));
                        s.on_new_batch(&topic, p);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
}
