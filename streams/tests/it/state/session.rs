//! Session store cases.

use anyhow::Result;

use super::{Engine, bytes, sess, sessions};

const LONG: i64 = 10_000_000;

pub(crate) fn put_fetch_remove<E: Engine>() -> Result<()> {
    let engine = E::new()?;
    let mut store = engine.session("s", LONG)?;
    assert_eq!(store.retention_ms(), LONG);
    store.put(b"a", 0, 10, b"1")?;
    store.put(b"a", 20, 20, b"2")?;
    assert_eq!(store.fetch_session(b"a", 0, 10)?, bytes(b"1"));
    assert_eq!(
        store.fetch_session(b"a", 0, 11)?,
        None,
        "exactly [start, end]"
    );
    assert_eq!(store.fetch_session(b"a", 20, 20)?, bytes(b"2"));
    store.put(b"a", 0, 10, b"3")?;
    assert_eq!(
        store.fetch_session(b"a", 0, 10)?,
        bytes(b"3"),
        "a put replaces"
    );
    store.remove(b"a", 0, 10)?;
    assert_eq!(store.fetch_session(b"a", 0, 10)?, None);
    store.remove(b"a", 0, 10)?;
    store.remove(b"zz", 0, 10)?;
    assert_eq!(
        sessions(store.fetch(b"a")?)?,
        vec![sess(b"a", 20, 20, b"2")]
    );
    store.flush()?;
    Ok(())
}

pub(crate) fn find_sessions_overlap<E: Engine>() -> Result<()> {
    let engine = E::new()?;
    let mut store = engine.session("s", LONG)?;
    store.put(b"a", 50, 100, b"50-100")?;
    store.put(b"a", 0, 10, b"0-10")?;
    store.put(b"a", 40, 40, b"40-40")?;
    store.put(b"a", 20, 30, b"20-30")?;
    store.put(b"b", 0, 1_000, b"b")?;
    let find = |earliest_end, latest_start| -> Result<Vec<Vec<u8>>> {
        Ok(
            sessions(store.find_sessions(b"a", earliest_end, latest_start)?)?
                .into_iter()
                .map(|(_, _, _, v)| v)
                .collect(),
        )
    };
    let v = |s: &[&str]| -> Vec<Vec<u8>> { s.iter().map(|s| s.as_bytes().to_vec()).collect() };
    // end >= 10 and start <= 20: [0,10] ends at the bound, [20,30] starts at it; [40,40] and
    // [50,100] start after 20.
    assert_eq!(find(10, 20)?, v(&["0-10", "20-30"]));
    // end >= 11: [0,10] ended before.
    assert_eq!(find(11, 39)?, v(&["20-30"]));
    // A record at 35 with a gap of 5 merges with what ends at 30 or later and starts by 40.
    assert_eq!(find(30, 40)?, v(&["20-30", "40-40"]));
    // A record at 45, gap 5: [40,40] (end 40 >= 40) and [50,100] (start 50 <= 50).
    assert_eq!(find(40, 50)?, v(&["40-40", "50-100"]));
    // Between sessions: nothing within the gap.
    assert_eq!(find(12, 18)?, Vec::<Vec<u8>>::new());
    assert_eq!(find(101, 200)?, Vec::<Vec<u8>>::new());
    assert_eq!(
        find(i64::MIN, i64::MAX)?,
        v(&["0-10", "20-30", "40-40", "50-100"]),
        "every session of the key, by end"
    );
    assert_eq!(
        sessions(store.find_sessions(b"b", 500, 500)?)?,
        vec![sess(b"b", 0, 1_000, b"b")],
        "a session spanning the whole range overlaps it"
    );
    Ok(())
}

pub(crate) fn ordered_by_key_end_start<E: Engine>() -> Result<()> {
    let engine = E::new()?;
    let mut store = engine.session("s", LONG)?;
    store.put(b"b", 5, 30, b"b")?;
    store.put(b"a", 20, 30, b"3")?;
    store.put(b"a", 5, 30, b"2")?;
    store.put(b"a", 25, 26, b"1")?;
    store.put(b"a", -10, 40, b"4")?;
    let expected_a = vec![
        sess(b"a", 25, 26, b"1"),
        sess(b"a", 5, 30, b"2"),
        sess(b"a", 20, 30, b"3"),
        sess(b"a", -10, 40, b"4"),
    ];
    assert_eq!(
        sessions(store.fetch(b"a")?)?,
        expected_a,
        "by end, then start"
    );
    let mut expected_all = expected_a;
    expected_all.push(sess(b"b", 5, 30, b"b"));
    assert_eq!(sessions(store.all()?)?, expected_all, "by key first");
    Ok(())
}

pub(crate) fn sessions_of_prefix_keys_stay_apart<E: Engine>() -> Result<()> {
    let engine = E::new()?;
    let mut store = engine.session("s", LONG)?;
    store.put(&[0x01, 0x00], 0, 5, b"long")?;
    store.put(&[0x01], 0, 10, b"short")?;
    store.put(&[0x01, 0x00], 0, 20, b"long")?;
    store.put(&[0x00], 0, 7, b"zero")?;
    assert_eq!(
        sessions(store.fetch(&[0x01])?)?,
        vec![sess(&[0x01], 0, 10, b"short")]
    );
    assert_eq!(
        sessions(store.find_sessions(&[0x01], 0, 100)?)?,
        vec![sess(&[0x01], 0, 10, b"short")]
    );
    assert_eq!(
        sessions(store.all()?)?,
        vec![
            sess(&[0x00], 0, 7, b"zero"),
            sess(&[0x01], 0, 10, b"short"),
            sess(&[0x01, 0x00], 0, 5, b"long"),
            sess(&[0x01, 0x00], 0, 20, b"long"),
        ]
    );
    Ok(())
}

pub(crate) fn retention_drops_old_sessions<E: Engine>() -> Result<()> {
    let engine = E::new()?;
    let mut store = engine.session("s", 100)?;
    store.put(b"a", 0, 59, b"a")?;
    store.put(b"b", 0, 60, b"b")?;
    store.observe_stream_time(159)?;
    // Kafka: expired once end <= stream time - retention (59 <= 59).
    assert_eq!(sessions(store.all()?)?, vec![sess(b"b", 0, 60, b"b")]);
    assert_eq!(store.fetch_session(b"a", 0, 59)?, None);
    store.put(b"c", 0, 59, b"late")?;
    assert_eq!(
        store.fetch_session(b"c", 0, 59)?,
        None,
        "a late put is dropped"
    );
    store.put(b"c", 0, 60, b"live")?;
    assert_eq!(store.fetch_session(b"c", 0, 60)?, bytes(b"live"));
    store.put(b"d", 300, 300, b"d")?;
    assert_eq!(
        sessions(store.all()?)?,
        vec![sess(b"d", 300, 300, b"d")],
        "a put's session end advances stream time"
    );
    Ok(())
}

pub(crate) fn a_session_ending_before_it_starts_is_refused<E: Engine>() -> Result<()> {
    let engine = E::new()?;
    let mut store = engine.session("s", LONG)?;
    let err = store.put(b"a", 10, 9, b"x").err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("state store \"s\": session [10, 9] ends before it starts")
    );
    assert_eq!(sessions(store.all()?)?, vec![]);
    Ok(())
}
