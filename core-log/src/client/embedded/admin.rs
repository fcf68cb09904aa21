//! Admin over the embedded log.

use crate::client::{Admin, ListedOffset, NewTopic, OffsetSpec, TopicDescription};
use crate::log::LogManager;
use crate::{Result, TopicPartition};

/// Topic administration of an embedded log.
#[derive(Debug, Clone)]
pub struct EmbeddedAdmin {
    log: LogManager,
}

impl EmbeddedAdmin {
    pub(crate) fn new(log: LogManager) -> Self {
        Self { log }
    }
}

impl Admin for EmbeddedAdmin {
    async fn create_topics(&self, topics: Vec<NewTopic>) -> Result<()> {
        for t in topics {
            self.log.create_topic(&t.name, t.partitions, t.configs)?;
        }
        Ok(())
    }

    async fn delete_topics(&self, names: Vec<String>) -> Result<()> {
        for n in names {
            self.log.delete_topic(&n)?;
        }
        Ok(())
    }

    async fn list_topics(&self) -> Result<Vec<String>> {
        Ok(self.log.list_topics())
    }

    async fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        self.log.describe_topic(name)
    }

    async fn alter_configs(
        &self,
        topic: &str,
        set: Vec<(String, String)>,
        delete: Vec<String>,
    ) -> Result<()> {
        self.log.alter_topic_config(topic, set, delete)
    }

    async fn create_partitions(&self, topic: &str, total: i32) -> Result<()> {
        self.log.create_partitions(topic, total)
    }

    async fn delete_records(&self, tp: &TopicPartition, offset: i64) -> Result<i64> {
        self.log.partition(tp)?.delete_records(offset)
    }

    async fn list_offsets(&self, tp: &TopicPartition, spec: OffsetSpec) -> Result<ListedOffset> {
        let p = self.log.partition(tp)?;
        Ok(match spec {
            OffsetSpec::Earliest => ListedOffset {
                offset: p.log_start_offset(),
                timestamp: -1,
            },
            OffsetSpec::Latest => ListedOffset {
                offset: p.high_watermark(),
                timestamp: -1,
            },
            OffsetSpec::Timestamp(ts) => match p.offset_for_timestamp(ts)? {
                Some((offset, timestamp)) => ListedOffset { offset, timestamp },
                None => ListedOffset {
                    offset: p.high_watermark(),
                    timestamp: -1,
                },
            },
            OffsetSpec::MaxTimestamp => {
                let (timestamp, _) = p.max_timestamp();
                if timestamp < 0 {
                    ListedOffset {
                        offset: -1,
                        timestamp: -1,
                    }
                } else {
                    match p.offset_for_timestamp(timestamp)? {
                        Some((offset, timestamp)) => ListedOffset { offset, timestamp },
                        None => ListedOffset {
                            offset: -1,
                            timestamp: -1,
                        },
                    }
                }
            }
        })
    }
}
