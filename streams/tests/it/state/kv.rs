//! Key-value store cases.

use anyhow::Result;
use bytes::Bytes;

use super::{Engine, bytes, kv, kvs};

pub(crate) fn put_get_delete<E: Engine>() -> Result<()> {
    let engine = E::new()?;
    let mut store = engine.kv("counts")?;
    assert_eq!(store.name(), "counts");
    assert_eq!(store.get(b"a")?, None);
    store.put(b"a", b"1")?;
    assert_eq!(store.get(b"a")?, bytes(b"1"));
    store.put(b"a", b"2")?;
    assert_eq!(store.get(b"a")?, bytes(b"2"));
    store.put(b"b", b"")?;
    assert_eq!(store.get(b"b")?, bytes(b""), "an empty value is a value");
    assert_eq!(store.delete(b"a")?, bytes(b"2"));
    assert_eq!(store.get(b"a")?, None);
    assert_eq!(store.delete(b"a")?, None, "a second delete finds nothing");
    store.flush()?;
    assert_eq!(kvs(store.all()?)?, vec![kv(b"b", b"")]);
    Ok(())
}

fn abcd<E: Engine>(engine: &E) -> Result<Box<dyn sluice_streams::state::KeyValueStore>> {
    let mut store = engine.kv("abcd")?;
    for k in [b"d", b"b", b"a", b"c"] {
        store.put(k, k)?;
    }
    Ok(store)
}

pub(crate) fn inclusive_ranges<E: Engine>() -> Result<()> {
    let engine = E::new()?;
    let store = abcd(&engine)?;
    assert_eq!(
        kvs(store.range(b"b", b"c")?)?,
        vec![kv(b"b", b"b"), kv(b"c", b"c")],
        "both bounds included"
    );
    assert_eq!(kvs(store.range(b"b", b"b")?)?, vec![kv(b"b", b"b")]);
    assert_eq!(kvs(store.range(b"bb", b"c")?)?, vec![kv(b"c", b"c")]);
    assert_eq!(
        kvs(store.range(b"", b"bz")?)?,
        vec![kv(b"a", b"a"), kv(b"b", b"b")]
    );
    assert_eq!(kvs(store.range(b"x", b"z")?)?, vec![]);
    Ok(())
}

pub(crate) fn reversed_range_is_empty<E: Engine>() -> Result<()> {
    let engine = E::new()?;
    let store = abcd(&engine)?;
    assert_eq!(kvs(store.range(b"c", b"b")?)?, vec![]);
    assert_eq!(kvs(store.range(b"b\x00", b"b")?)?, vec![]);
    Ok(())
}

pub(crate) fn prefix_scans<E: Engine>() -> Result<()> {
    let engine = E::new()?;
    let mut store = engine.kv("prefix")?;
    for k in [
        &b"user:1"[..],
        b"user:2",
        b"user",
        b"usex",
        b"use",
        b"\xff",
        b"\xff\xff",
        b"\xff\x00",
        b"\xfe\xff",
    ] {
        store.put(k, b"v")?;
    }
    let keys = |prefix: &[u8]| -> Result<Vec<Vec<u8>>> {
        Ok(kvs(store.prefix_scan(prefix)?)?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    };
    assert_eq!(
        keys(b"user")?,
        vec![b"user".to_vec(), b"user:1".to_vec(), b"user:2".to_vec()]
    );
    assert_eq!(
        keys(b"user:")?,
        vec![b"user:1".to_vec(), b"user:2".to_vec()]
    );
    assert_eq!(keys(b"users")?, Vec::<Vec<u8>>::new());
    assert_eq!(
        keys(b"\xff")?,
        vec![b"\xff".to_vec(), b"\xff\x00".to_vec(), b"\xff\xff".to_vec()],
        "a prefix of 0xff bytes has no successor: the scan runs to the end"
    );
    assert_eq!(keys(b"\xfe")?, vec![b"\xfe\xff".to_vec()]);
    assert_eq!(keys(b"")?.len(), 9, "the empty prefix is every key");
    Ok(())
}

pub(crate) fn byte_order_of_keys<E: Engine>() -> Result<()> {
    let engine = E::new()?;
    let mut store = engine.kv("order")?;
    for k in [
        &[0x02][..],
        &[0x01, 0x00],
        &[0x01],
        &[0xff],
        &[],
        &[0x00],
        &[0x01, 0xff],
        &[0x00, 0x00],
    ] {
        store.put(k, &[k.len() as u8])?;
    }
    let all: Vec<Vec<u8>> = kvs(store.all()?)?.into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        all,
        vec![
            vec![],
            vec![0x00],
            vec![0x00, 0x00],
            vec![0x01],
            vec![0x01, 0x00],
            vec![0x01, 0xff],
            vec![0x02],
            vec![0xff],
        ]
    );
    assert_eq!(
        kvs(store.range(&[0x01], &[0x01])?)?,
        vec![kv(&[0x01], &[1])]
    );
    assert_eq!(
        kvs(store.range(&[0x01], &[0x01, 0x00])?)?,
        vec![kv(&[0x01], &[1]), kv(&[0x01, 0x00], &[2])]
    );
    assert_eq!(
        kvs(store.range(&[0x01, 0x00], &[0x02])?)?,
        vec![
            kv(&[0x01, 0x00], &[2]),
            kv(&[0x01, 0xff], &[2]),
            kv(&[0x02], &[1])
        ]
    );
    assert_eq!(store.get(&[])?, bytes(&[0]), "the empty key is a key");
    Ok(())
}

pub(crate) fn write_batch_applies_in_order<E: Engine>() -> Result<()> {
    let engine = E::new()?;
    let mut store = engine.kv("batch")?;
    store.put(b"gone", b"x")?;
    let b = Bytes::from_static;
    store.write_batch(&[
        (b(b"a"), Some(b(b"1"))),
        (b(b"b"), Some(b(b"2"))),
        (b(b"a"), None),
        (b(b"gone"), None),
        (b(b"b"), Some(b(b"3"))),
        (b(b"a"), Some(b(b"4"))),
    ])?;
    assert_eq!(kvs(store.all()?)?, vec![kv(b"a", b"4"), kv(b"b", b"3")]);
    Ok(())
}

pub(crate) fn num_entries<E: Engine>() -> Result<()> {
    let engine = E::new()?;
    let mut store = engine.kv("n")?;
    assert_eq!(store.approximate_num_entries()?, 0);
    for i in 0..100u32 {
        store.put(&i.to_be_bytes(), b"v")?;
    }
    store.flush()?;
    let n = store.approximate_num_entries()?;
    assert!((50..=150).contains(&n), "100 entries estimated as {n}");
    Ok(())
}
