//! Any bytes as the consumer protocol's JoinGroup metadata (`Subscription`) and SyncGroup
//! assignment (`Assignment`), which a group's members send each other through the coordinator:
//! decoding returns a value or an error, never panics.
//! Property: what decodes encodes and decodes back to itself, up to the encoding's grouping of
//! partitions by topic (a topic listed twice is written once, with all its partitions).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_log::TopicPartition;
use sluice_log::group::{Assignment, Subscription};

/// Partitions grouped by topic, topics in order of first appearance (what encoding does).
fn grouped(tps: &[TopicPartition]) -> Vec<TopicPartition> {
    let mut topics: Vec<&str> = Vec::new();
    for tp in tps {
        if !topics.contains(&&*tp.topic) {
            topics.push(&tp.topic);
        }
    }
    topics
        .iter()
        .flat_map(|t| tps.iter().filter(move |tp| &*tp.topic == *t).cloned())
        .collect()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Subscription::decode(data) {
        let again = Subscription::decode(&s.encode()).expect("an encoded subscription decodes");
        let expected = Subscription {
            owned_partitions: grouped(&s.owned_partitions),
            ..s
        };
        assert_eq!(again, expected);
    }
    if let Ok(a) = Assignment::decode(data) {
        let again = Assignment::decode(&a.encode()).expect("an encoded assignment decodes");
        let expected = Assignment {
            partitions: grouped(&a.partitions),
            ..a
        };
        assert_eq!(again, expected);
    }
});
