//! Readahead for readers catching up from disk.
//!
//! A reader far behind a partition's end (a new consumer group, a restore, any reader behind
//! the page-cache window) reads pages that are not cached. Each read then waits for the disk,
//! and the records are decoded only after it: disk and decoder take turns. After each such
//! read the partition asks the kernel (`fadvise(WILLNEED)`) to read the next
//! [`READAHEAD_BYTES`] past it in the background, so the disk works while the reader decodes.
//!
//! The plan is bounded: never more than [`READAHEAD_BYTES`] past the reader's last read, issued
//! in steps of at least [`READAHEAD_STEP`] (one `fadvise` per few reads, not per read). Readers
//! within [`READAHEAD_BYTES`] of the partition's end get none: what was just written is
//! cached (the page-cache window keeps more than that), and the kernel's own readahead covers
//! the rest.
//!
//! Prefetched pages and the page-cache window (`Partition::drop_cache_behind`): the window drops
//! each byte of a segment once, below a mark that only moves up. Readahead of bytes below the
//! mark (dropped ones, read again from disk) is therefore never dropped again; readahead above
//! it touches pages that are still cached, where `WILLNEED` does nothing. So the window never
//! throws away what a reader just prefetched.

/// How far past a reader's last read the log asks the kernel to read ahead: 16 MiB.
pub(crate) const READAHEAD_BYTES: u64 = 16 << 20;
/// The least readahead asked for at once within a segment (except its last bytes): 4 MiB.
pub(crate) const READAHEAD_STEP: u64 = 4 << 20;

/// What the planner needs of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extent {
    /// Bytes in the segment.
    pub(crate) size: u64,
    /// Bytes from its start already asked for (readahead issued up to here).
    pub(crate) issued: u64,
}

/// Bytes `[from, to)` of the segment at `segment` (an index into the extents given to
/// [`plan`]) to read ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Advice {
    pub(crate) segment: usize,
    pub(crate) from: u64,
    pub(crate) to: u64,
}

/// The readahead to issue after a read that ended at byte `end` of the first of `extents` (the
/// segments from the one read on, oldest first): up to `distance` bytes past `end`, across
/// segment boundaries, leaving out what was issued already. A segment's part is issued once it
/// is at least `step` bytes, or when it reaches the end of a segment that has a successor
/// (the rest of a closed segment, however small). Nothing when fewer than `distance` bytes
/// follow `end`: the reader is near the partition's end.
pub(crate) fn plan(end: u64, extents: &[Extent], distance: u64, step: u64) -> Vec<Advice> {
    let mut advice = Vec::new();
    let mut left = distance;
    let mut pos = end;
    for (i, e) in extents.iter().enumerate() {
        let pos_here = pos.min(e.size);
        let stop = pos_here.saturating_add(left).min(e.size);
        let from = e.issued.max(pos_here);
        let closed = i + 1 < extents.len();
        if stop > from && (stop - from >= step || (closed && stop == e.size)) {
            advice.push(Advice {
                segment: i,
                from,
                to: stop,
            });
        }
        left -= stop - pos_here;
        if left == 0 {
            return advice;
        }
        pos = 0;
    }
    // The partition ends within `distance` of the reader.
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn ext(size: u64, issued: u64) -> Extent {
        Extent { size, issued }
    }

    fn adv(segment: usize, from: u64, to: u64) -> Advice {
        Advice { segment, from, to }
    }

    #[test]
    fn a_reader_far_behind_gets_the_distance_ahead_of_it() {
        let p = plan(10 * MIB, &[ext(100 * MIB, 0)], 16 * MIB, 4 * MIB);
        assert_eq!(p, [adv(0, 10 * MIB, 26 * MIB)]);
    }

    #[test]
    fn a_reader_near_the_end_gets_nothing() {
        // 15 MiB to the end of the only segment, 16 MiB asked for.
        assert_eq!(plan(85 * MIB, &[ext(100 * MIB, 0)], 16 * MIB, 4 * MIB), []);
        // Likewise across segments: 6 + 9 MiB left.
        let segs = [ext(100 * MIB, 0), ext(9 * MIB, 0)];
        assert_eq!(plan(94 * MIB, &segs, 16 * MIB, 4 * MIB), []);
        assert_eq!(plan(0, &[], 16 * MIB, 4 * MIB), []);
    }

    #[test]
    fn what_was_issued_is_not_asked_again_and_small_steps_wait() {
        let segs = [ext(100 * MIB, 26 * MIB)];
        // Moved 1 MiB on: 1 MiB more to ask for, less than a step.
        assert_eq!(plan(11 * MIB, &segs, 16 * MIB, 4 * MIB), []);
        // Moved 4 MiB on: a step's worth, from where the last one ended.
        assert_eq!(
            plan(14 * MIB, &segs, 16 * MIB, 4 * MIB),
            [adv(0, 26 * MIB, 30 * MIB)]
        );
        // A reader behind an earlier one, inside what it had asked for: nothing.
        assert_eq!(plan(2 * MIB, &segs, 16 * MIB, 4 * MIB), []);
    }

    #[test]
    fn readahead_crosses_into_the_next_segments() {
        // 3 MiB left in the first segment: all of it (the rest of a closed segment, less than
        // a step), then 13 MiB of the next, whose last part is short of the distance.
        let segs = [ext(100 * MIB, 97 * MIB), ext(4 * MIB, 0), ext(50 * MIB, 0)];
        assert_eq!(
            plan(97 * MIB, &segs, 16 * MIB, 4 * MIB),
            [
                adv(0, 97 * MIB, 100 * MIB),
                adv(1, 0, 4 * MIB),
                adv(2, 0, 9 * MIB)
            ]
        );
        // The rest of the first was issued already.
        let segs = [ext(100 * MIB, 100 * MIB), ext(40 * MIB, 0)];
        assert_eq!(
            plan(90 * MIB, &segs, 16 * MIB, 4 * MIB),
            [adv(1, 0, 6 * MIB)]
        );
    }

    #[test]
    fn a_sequential_reader_keeps_a_bounded_distance_ahead() {
        // Read 1 MiB at a time through three segments, applying each plan: readahead never
        // asks twice, stays within the distance of the reader, and while the reader is far from
        // the end it stays more than distance - step ahead.
        let mut segs = [ext(40 * MIB, 0), ext(7 * MIB, 0), ext(60 * MIB, 0)];
        let starts = [0, 40 * MIB, 47 * MIB];
        let total = 107 * MIB;
        let (distance, step) = (16 * MIB, 4 * MIB);
        // Where, counted from the partition's first byte, readahead reaches.
        let mut reach = 0u64;
        let (mut seg, mut end, mut done) = (0usize, 0u64, 0u64);
        while done < total {
            let n = MIB.min(segs[seg].size - end);
            end += n;
            done += n;
            for a in plan(end, &segs[seg..], distance, step) {
                let s = seg + a.segment;
                assert!(a.from >= segs[s].issued, "asked again: {a:?}");
                assert!(
                    starts[s] + a.from >= reach.max(done),
                    "a gap or overlap: {a:?}"
                );
                segs[s].issued = a.to;
                reach = starts[s] + a.to;
            }
            let ahead = reach.saturating_sub(done);
            assert!(ahead <= distance, "{ahead} ahead at {done}");
            if total - done >= distance {
                assert!(ahead + step > distance, "only {ahead} ahead at {done}");
            }
            if end == segs[seg].size && seg + 1 < segs.len() {
                (seg, end) = (seg + 1, 0);
            }
        }
        assert!(reach <= total, "never past the end");
        assert!(reach + step > total, "up to the last stretch: {reach}");
    }
}
