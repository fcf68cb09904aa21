//! Window store cases.

use anyhow::Result;

use super::{Engine, bytes, win, wins};

/// Long enough that nothing expires in the cases not about retention.
const LONG: i64 = 10_000_000;

pub(crate) fn fetch_by_key_and_time<E: Engine>() -> Result<()> {
    let engine = E::new()?;
    let mut store = engine.window("w", LONG, false)?;
    assert_eq!(store.retention_ms(), LONG);
    store.put(b"a", 20, Some(b"a20"))?;
    store.put(b"a", 0, Some(b"a0"))?;
    store.put(b"a", 10, Some(b"a10"))?;
    store.put(b"b", 10, Some(b"b10"))?;
    assert_eq!(store.fetch(b"a", 10)?, bytes(b"a10"));
    assert_eq!(store.fetch(b"b", 10)?, bytes(b"b10"));
    assert_eq!(store.fetch(b"a", 5)?, None);
    assert_eq!(store.fetch(b"c", 10)?, None);
    assert_eq!(
        wins(store.fetch_range(b"a", 5, 20)?)?,
        vec![win(b"a", 10, b"a10"), win(b"a", 20, b"a20")],
        "both time bounds included, by start"
    );
    assert_eq!(
        wins(store.fetch_range(b"a", 0, 0)?)?,
        vec![win(b"a", 0, b"a0")]
    );
    assert_eq!(wins(store.fetch_range(b"a", 21, 100)?)?, vec![]);
    assert_eq!(wins(store.fetch_range(b"c", 0, 100)?)?, vec![]);
    Ok(())
}

pub(crate) fn update_and_remove<E: Engine>() -> Result<()> {
    let engine = E::new()?;
    let mut store = engine.window("w", LONG, false)?;
    store.put(b"a", 0, Some(b"1"))?;
    store.put(b"a", 0, Some(b"2"))?;
    assert_eq!(store.fetch(b"a", 0)?, bytes(b"2"), "a put replaces");
    assert_eq!(wins(store.all()?)?, vec![win(b"a", 0, b"2")]);
    store.put(b"a", 0, None)?;
    assert_eq!(store.fetch(b"a", 0)?, None, "None removes");
    store.put(b"a", 5, None)?;
    assert_eq!(wins(store.all()?)?, vec![]);
    store.flush()?;
    Ok(())
}

pub(crate) fn prefix_keys_do_not_interleave<E: Engine>() -> Result<()> {
    let engine = E::new()?;
    let mut store = engine.window("w", LONG, false)?;
    for key in [&[0x01][..], &[0x01, 0x00], &[0x00], &[0x01, 0x00, 0x00]] {
        for start in [0, 100, -5] {
            store.put(key, start, Some(&[key.len() as u8]))?;
        }
    }
    assert_eq!(
        wins(store.fetch_range(&[0x01], i64::MIN, i64::MAX)?)?,
        vec![
            win(&[0x01], -5, &[1]),
            win(&[0x01], 0, &[1]),
            win(&[0x01], 100, &[1])
        ],
        "the windows of [0x01] only, not those of [0x01, 0x00]"
    );
    assert_eq!(store.fetch(&[0x01, 0x00], 100)?, bytes(&[2]));
    assert_eq!(
        wins(store.fetch_keys(&[0x01], &[0x01, 0x00], 0, 100)?)?,
        vec![
            win(&[0x01], 0, &[1]),
            win(&[0x01], 100, &[1]),
            win(&[0x01, 0x00], 0, &[2]),
            win(&[0x01, 0x00], 100, &[2]),
        ],
        "by key, then start"
    );
    Ok(())
}

pub(crate) fn fetch_keys_and_fetch_all<E: Engine>() -> Result<()> {
    let engine = E::new()?;
    let mut store = engine.window("w", LONG, false)?;
    for key in [b"c", b"a", b"b"] {
        for start in [30, 10, 20] {
            let value = format!("{}{start}", key[0] as char);
            store.put(key, start, Some(value.as_bytes()))?;
        }
    }
    assert_eq!(
        wins(store.fetch_keys(b"b", b"c", 15, 25)?)?,
        vec![win(b"b", 20, b"b20"), win(b"c", 20, b"c20")]
    );
    assert_eq!(
        wins(store.fetch_keys(b"a", b"a", 10, 20)?)?,
        vec![win(b"a", 10, b"a10"), win(b"a", 20, b"a20")]
    );
    assert_eq!(
        wins(store.fetch_all(20, 30)?)?,
        vec![
            win(b"a", 20, b"a20"),
            win(b"a", 30, b"a30"),
            win(b"b", 20, b"b20"),
            win(b"b", 30, b"b30"),
            win(b"c", 20, b"c20"),
            win(b"c", 30, b"c30"),
        ],
        "by key, then start"
    );
    assert_eq!(wins(store.all()?)?.len(), 9);
    assert_eq!(wins(store.all()?)?[0], win(b"a", 10, b"a10"));
    Ok(())
}

pub(crate) fn reversed_ranges_are_empty<E: Engine>() -> Result<()> {
    let engine = E::new()?;
    let mut store = engine.window("w", LONG, false)?;
    store.put(b"a", 10, Some(b"1"))?;
    store.put(b"b", 10, Some(b"1"))?;
    assert_eq!(wins(store.fetch_range(b"a", 20, 0)?)?, vec![]);
    assert_eq!(wins(store.fetch_keys(b"b", b"a", 0, 20)?)?, vec![]);
    assert_eq!(wins(store.fetch_keys(b"a", b"b", 20, 0)?)?, vec![]);
    assert_eq!(wins(store.fetch_all(11, 10)?)?, vec![]);
    Ok(())
}

pub(crate) fn ordered_across_segments<E: Engine>() -> Result<()> {
    let engine = E::new()?;
    // RocksDB: segments of max(retention / 2, 60 s) = 5,000 s, so these starts fall in three,
    // all within the retention of the latest.
    let mut store = engine.window("w", LONG, false)?;
    let (s0, s1, s2) = (4_000_000, 6_000_000, 10_500_000);
    store.put(b"b", s2, Some(b"b2"))?;
    store.put(b"a", s1, Some(b"a1"))?;
    store.put(b"b", s0, Some(b"b0"))?;
    store.put(b"a", s2, Some(b"a2"))?;
    store.put(b"c", s1, Some(b"c1"))?;
    assert_eq!(
        wins(store.all()?)?,
        vec![
            win(b"a", s1, b"a1"),
            win(b"a", s2, b"a2"),
            win(b"b", s0, b"b0"),
            win(b"b", s2, b"b2"),
            win(b"c", s1, b"c1"),
        ],
        "by key first, though the windows lie in different segments"
    );
    assert_eq!(
        wins(store.fetch_keys(b"a", b"b", s0, s1)?)?,
        vec![win(b"a", s1, b"a1"), win(b"b", s0, b"b0")]
    );
    assert_eq!(
        wins(store.fetch_range(b"b", 0, i64::MAX)?)?,
        vec![win(b"b", s0, b"b0"), win(b"b", s2, b"b2")]
    );
    Ok(())
}

pub(crate) fn duplicates_are_kept_in_order<E: Engine>() -> Result<()> {
    let engine = E::new()?;
    let mut store = engine.window("join", LONG, true)?;
    store.put(b"a", 10, Some(b"x"))?;
    store.put(b"b", 10, Some(b"w"))?;
    store.put(b"a", 10, Some(b"y"))?;
    store.put(b"a", 10, None)?;
    store.put(b"a", 0, Some(b"z"))?;
    store.put(b"a", 10, Some(b"x"))?;
    assert_eq!(
        store.fetch(b"a", 10)?,
        bytes(b"x"),
        "the first of the window"
    );
    assert_eq!(
        wins(store.fetch_range(b"a", 0, 10)?)?,
        vec![
            win(b"a", 0, b"z"),
            win(b"a", 10, b"x"),
            win(b"a", 10, b"y"),
            win(b"a", 10, b"x"),
        ],
        "every put kept, in insertion order within a window; None ignored"
    );
    assert_eq!(
        wins(store.all()?)?,
        vec![
            win(b"a", 0, b"z"),
            win(b"a", 10, b"x"),
            win(b"a", 10, b"y"),
            win(b"a", 10, b"x"),
            win(b"b", 10, b"w"),
        ]
    );
    Ok(())
}

pub(crate) fn retention_drops_old_windows<E: Engine>() -> Result<()> {
    let engine = E::new()?;
    let mut store = engine.window("w", 100, false)?;
    store.put(b"a", 0, Some(b"a0"))?;
    store.put(b"a", 50, Some(b"a50"))?;
    store.put(b"b", 60, Some(b"b60"))?;
    store.observe_stream_time(99)?;
    assert_eq!(
        wins(store.all()?)?.len(),
        3,
        "start 0 is not yet 100 behind 99"
    );
    store.observe_stream_time(149)?;
    // Kafka: expired once start <= stream time - retention.
    assert_eq!(
        wins(store.all()?)?,
        vec![win(b"a", 50, b"a50"), win(b"b", 60, b"b60")]
    );
    assert_eq!(store.fetch(b"a", 0)?, None);
    assert_eq!(
        wins(store.fetch_range(b"a", 0, 100)?)?,
        vec![win(b"a", 50, b"a50")]
    );
    store.observe_stream_time(10)?;
    assert_eq!(wins(store.all()?)?.len(), 2, "stream time does not go back");
    store.observe_stream_time(150)?;
    assert_eq!(
        wins(store.fetch_all(0, 1000)?)?,
        vec![win(b"b", 60, b"b60")]
    );
    store.observe_stream_time(1_000_000)?;
    assert_eq!(wins(store.all()?)?, vec![]);
    Ok(())
}

pub(crate) fn late_puts_are_dropped<E: Engine>() -> Result<()> {
    let engine = E::new()?;
    let mut store = engine.window("w", 100, false)?;
    store.observe_stream_time(1_000)?;
    store.put(b"a", 900, Some(b"late"))?;
    store.put(b"a", 901, Some(b"live"))?;
    store.put(b"a", 100, Some(b"very late"))?;
    assert_eq!(store.fetch(b"a", 900)?, None);
    assert_eq!(store.fetch(b"a", 100)?, None);
    assert_eq!(wins(store.all()?)?, vec![win(b"a", 901, b"live")]);
    Ok(())
}

pub(crate) fn a_put_advances_stream_time<E: Engine>() -> Result<()> {
    let engine = E::new()?;
    let mut store = engine.window("w", 100, false)?;
    store.put(b"a", 0, Some(b"0"))?;
    store.put(b"a", 1_000, Some(b"1000"))?;
    store.put(b"b", 850, Some(b"850"))?;
    assert_eq!(
        wins(store.all()?)?,
        vec![win(b"a", 1_000, b"1000")],
        "as in Kafka, a put's window start advances the store's stream time"
    );
    Ok(())
}

pub(crate) fn negative_retention_is_refused<E: Engine>() -> Result<()> {
    let engine = E::new()?;
    let err = engine.window("w", -1, false).err().map(|e| e.to_string());
    let err = err.unwrap_or_default();
    assert!(
        err.contains("\"w\"") && err.contains("retention of -1 ms"),
        "{err}"
    );
    Ok(())
}
