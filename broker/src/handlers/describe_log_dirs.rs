//! DescribeLogDirs: the one data directory with the size of each partition asked for (all with
//! a null topic list), and from v4 the total and usable bytes of its volume.

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};

use super::{RequestContext, sb};
use crate::handlers::codes::KAFKA_STORAGE_ERROR;
use crate::state::BrokerState;

pub(crate) fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    req: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let wanted: Vec<(String, Option<Vec<i32>>)> = match req.topics {
        None => state
            .log
            .list_topics()
            .into_iter()
            .map(|t| (t, None))
            .collect(),
        Some(ts) => ts
            .into_iter()
            .map(|t| (t.topic.to_string(), Some(t.partitions)))
            .collect(),
    };
    let mut topics: Vec<DescribeLogDirsTopic> = Vec::new();
    for (name, partitions) in wanted {
        // Partitions that do not exist are left out, as Kafka leaves out those it does not host.
        let Ok(all) = state.log.partitions(&name) else {
            continue;
        };
        let listed: Vec<DescribeLogDirsPartition> = all
            .iter()
            .filter(|p| {
                partitions
                    .as_ref()
                    .is_none_or(|ps| ps.contains(&p.topic_partition().partition))
            })
            .map(|p| {
                DescribeLogDirsPartition::default()
                    .with_partition_index(p.topic_partition().partition)
                    .with_partition_size(i64::try_from(p.size_bytes()).unwrap_or(i64::MAX))
                    // One replica: the log end is the high watermark.
                    .with_offset_lag(0)
            })
            .collect();
        if listed.is_empty() {
            continue;
        }
        match topics.iter_mut().find(|t| t.name.as_str() == name) {
            Some(t) => t.partitions.extend(listed),
            None => topics.push(
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(sb(name)))
                    .with_partitions(listed),
            ),
        }
    }
    let dir = state.log.dir();
    let path = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut result = DescribeLogDirsResult::default()
        .with_log_dir(sb(path.display().to_string()))
        .with_topics(topics);
    if ctx.api_version >= 4 {
        match rustix::fs::statvfs(dir) {
            Ok(fs) => {
                let bytes = |blocks: u64| {
                    i64::try_from(blocks.saturating_mul(fs.f_frsize)).unwrap_or(i64::MAX)
                };
                result = result
                    .with_total_bytes(bytes(fs.f_blocks))
                    .with_usable_bytes(bytes(fs.f_bavail));
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "statvfs of the data directory failed");
                result = result.with_error_code(KAFKA_STORAGE_ERROR);
            }
        }
    }
    DescribeLogDirsResponse::default().with_results(vec![result])
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    use sluice_log::TopicPartition;

    use super::*;
    use crate::handlers::test_util::{create_topic, ctx, encodes, plain_batch, test_state};

    #[test]
    fn lists_partition_sizes_and_the_volume() {
        let b = test_state();
        create_topic(&b, "t", 2);
        let p = b.log.partition(&TopicPartition::new("t", 1)).expect("p");
        p.append(plain_batch(&["hello", "world"]))
            .expect("appended");
        let size = i64::try_from(p.size_bytes()).expect("size");
        assert!(size > 0);
        let r = handle(
            &b,
            &ctx(4),
            DescribeLogDirsRequest::default().with_topics(None),
        );
        encodes(&r, 4);
        assert_eq!(r.results.len(), 1);
        let dir = &r.results[0];
        assert!(std::path::Path::new(dir.log_dir.as_str()).is_absolute());
        assert!(dir.total_bytes > 0 && dir.usable_bytes > 0);
        assert!(dir.usable_bytes <= dir.total_bytes);
        let t = dir
            .topics
            .iter()
            .find(|t| t.name.as_str() == "t")
            .expect("t");
        let sizes: Vec<(i32, i64)> = t
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.partition_size))
            .collect();
        assert_eq!(sizes, [(0, 0), (1, size)]);
        // Only what is asked for; unknown topics and partitions are left out.
        let ask = DescribeLogDirsRequest::default().with_topics(Some(vec![
            DescribableLogDirTopic::default()
                .with_topic(TopicName(sb("t")))
                .with_partitions(vec![1, 5]),
            DescribableLogDirTopic::default()
                .with_topic(TopicName(sb("nope")))
                .with_partitions(vec![0]),
        ]));
        for v in 1..=4 {
            let r = handle(&b, &ctx(v), ask.clone());
            encodes(&r, v);
            let topics = &r.results[0].topics;
            assert_eq!(topics.len(), 1);
            assert_eq!(topics[0].partitions.len(), 1);
            assert_eq!(topics[0].partitions[0].partition_size, size);
            if v < 4 {
                assert_eq!(r.results[0].total_bytes, -1);
            }
        }
    }
}
