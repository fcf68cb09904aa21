//! Kafka's FileStreamSource and FileStreamSink, with their keys (`file`, `topic`, `topics`,
//! `batch.size`).
//!
//! The source reads lines of `file` (standard input when unset) into `topic`, each line a string
//! value with no key; its source partition is `{"filename": file}` and its offset
//! `{"position": byte offset after the line}`, so a restarted task goes on after the last line
//! whose record was acknowledged. A line is taken once it ends (`\n` or `\r\n`). The sink
//! writes each record's value as a line to `file` (standard output when unset), written out at
//! the end of each `put`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value as Json;
use sluice_client::TopicPartition;
use tokio::io::{AsyncBufReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt, BufReader};

use crate::config::{Config, ConfigDef, ConfigType, Importance, Props, Validator};
use crate::connector::{SinkConnector, SinkTask, SourceConnector, SourceTask, SourceTaskContext};
use crate::data::{Schema, SinkRecord, SourceMap, SourceRecord, Value};
use crate::error::{Error, Result};

/// How long a source task at the end of its file waits before `poll` returns empty.
const EOF_WAIT: Duration = Duration::from_millis(200);

/// Kafka's FileStreamSourceConnector.
#[derive(Debug, Default)]
pub struct FileStreamSourceConnector {
    props: Props,
}

impl SourceConnector for FileStreamSourceConnector {
    type Task = FileStreamSourceTask;

    fn config_def() -> ConfigDef {
        ConfigDef::new()
            .define(
                "file",
                ConfigType::String,
                Some(""),
                None,
                Importance::High,
                "Source filename. If not specified, the standard input will be used",
                "Common",
            )
            .define(
                "topic",
                ConfigType::String,
                None,
                Some(Validator::NonEmpty),
                Importance::High,
                "The topic to publish data to",
                "Common",
            )
            .define(
                "batch.size",
                ConfigType::Int,
                Some("2000"),
                Some(Validator::AtLeast(1)),
                Importance::Low,
                "The maximum number of records the source task can read from the file each time it is polled",
                "Common",
            )
    }

    fn start(&mut self, config: Config) -> Result<()> {
        if config.string("topic").contains(',') {
            return Err(Error::config(
                config.owner(),
                "topic",
                "FileStreamSourceConnector takes one topic; found a list",
            ));
        }
        self.props = ["file", "topic", "batch.size"]
            .into_iter()
            .filter_map(|k| config.get(k).map(|v| (k.to_owned(), v.to_owned())))
            .collect();
        Ok(())
    }

    fn task_configs(&self, _max_tasks: usize) -> Result<Vec<Props>> {
        // One file, one reader.
        Ok(vec![self.props.clone()])
    }
}

/// The task of [`FileStreamSourceConnector`].
#[derive(Default)]
pub struct FileStreamSourceTask {
    file: Option<String>,
    topic: String,
    batch_size: usize,
    reader: Option<Box<dyn AsyncBufRead>>,
    /// Byte offset after the last line returned.
    position: u64,
    partition: SourceMap,
    buf: Vec<u8>,
}

/// What the task reads: a file or standard input.
trait AsyncBufRead: tokio::io::AsyncBufRead + Send + Unpin {}
impl<T: tokio::io::AsyncBufRead + Send + Unpin> AsyncBufRead for T {}

impl std::fmt::Debug for FileStreamSourceTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStreamSourceTask")
            .field("file", &self.file)
            .field("topic", &self.topic)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl FileStreamSourceTask {
    async fn open(&mut self) -> Result<()> {
        let Some(path) = &self.file else {
            self.reader = Some(Box::new(BufReader::new(tokio::io::stdin())));
            return Ok(());
        };
        let mut f = tokio::fs::File::open(path)
            .await
            .map_err(|e| Error::io(path, e))?;
        if self.position > 0 {
            f.seek(std::io::SeekFrom::Start(self.position))
                .await
                .map_err(|e| Error::io(path, e))?;
        }
        self.reader = Some(Box::new(BufReader::with_capacity(1 << 16, f)));
        Ok(())
    }
}

impl SourceTask for FileStreamSourceTask {
    async fn start(&mut self, config: Props, context: SourceTaskContext) -> Result<()> {
        self.file = config.get("file").filter(|f| !f.trim().is_empty()).cloned();
        self.topic = config.get("topic").cloned().unwrap_or_default();
        self.batch_size = config
            .get("batch.size")
            .and_then(|b| b.parse().ok())
            .unwrap_or(2000);
        // Kafka's partition of a file; standard input has no offsets to resume from.
        if let Some(f) = &self.file {
            self.partition
                .insert("filename".into(), Json::from(f.clone()));
            if let Some(pos) = context
                .offset(&self.partition)
                .and_then(|o| o.get("position"))
                .and_then(Json::as_u64)
            {
                tracing::debug!(file = %f, position = pos, "resuming from the committed offset");
                self.position = pos;
            }
        }
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        if self.reader.is_none()
            && let Err(e) = self.open().await
        {
            // Kafka's task waits for a file that is not there yet.
            tracing::warn!(error = %e, "couldn't open the source file; will retry");
            tokio::time::sleep(EOF_WAIT).await;
            return Ok(Vec::new());
        }
        let path = self.file.clone().unwrap_or_else(|| "stdin".into());
        let Some(reader) = self.reader.as_mut() else {
            return Ok(Vec::new());
        };
        let mut records = Vec::new();
        let schema = Schema::string();
        while records.len() < self.batch_size {
            // Read up to a line end; a partial line stays in `buf` until it is complete.
            let n = reader
                .read_until(b'\n', &mut self.buf)
                .await
                .map_err(|e| Error::io(&path, e))?;
            if n == 0 || self.buf.last() != Some(&b'\n') {
                // End of data for now: a partial line is kept, so it is not read twice. The
                // reader's position is past it; `position` is not.
                break;
            }
            let consumed = self.buf.len() as u64;
            let mut line = &self.buf[..self.buf.len() - 1];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let text = String::from_utf8_lossy(line).into_owned();
            self.buf.clear();
            self.position += consumed;
            let mut offset = SourceMap::new();
            offset.insert("position".into(), Json::from(self.position));
            let partition = if self.file.is_some() {
                self.partition.clone()
            } else {
                SourceMap::new()
            };
            records.push(SourceRecord::source(
                partition,
                offset,
                self.topic.clone(),
                Some(schema.clone()),
                Value::String(text),
            ));
        }
        if records.is_empty() {
            tokio::time::sleep(EOF_WAIT).await;
        }
        Ok(records)
    }

    async fn stop(&mut self) {
        self.reader = None;
    }
}

/// Kafka's FileStreamSinkConnector.
#[derive(Debug, Default)]
pub struct FileStreamSinkConnector {
    props: Props,
}

impl SinkConnector for FileStreamSinkConnector {
    type Task = FileStreamSinkTask;

    fn config_def() -> ConfigDef {
        ConfigDef::new().define(
            "file",
            ConfigType::String,
            Some(""),
            None,
            Importance::High,
            "Destination filename. If not specified, the standard output will be used",
            "Common",
        )
    }

    fn start(&mut self, config: Config) -> Result<()> {
        self.props = config
            .get("file")
            .map(|f| [("file".to_owned(), f.to_owned())].into())
            .unwrap_or_default();
        Ok(())
    }

    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Props>> {
        // Kafka gives every task the same file.
        Ok(vec![self.props.clone(); max_tasks.max(1)])
    }
}

/// The task of [`FileStreamSinkConnector`].
#[derive(Default)]
pub struct FileStreamSinkTask {
    file: Option<String>,
    out: Option<Box<dyn AsyncWriteSend>>,
    line: Vec<u8>,
}

trait AsyncWriteSend: AsyncWrite + Send + Unpin {}
impl<T: AsyncWrite + Send + Unpin> AsyncWriteSend for T {}

impl std::fmt::Debug for FileStreamSinkTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStreamSinkTask")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl SinkTask for FileStreamSinkTask {
    async fn start(&mut self, config: Props) -> Result<()> {
        self.file = config.get("file").filter(|f| !f.trim().is_empty()).cloned();
        let out: Box<dyn AsyncWriteSend> = match &self.file {
            Some(path) => {
                let f = tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await
                    .map_err(|e| Error::io(path, e))?;
                Box::new(tokio::io::BufWriter::with_capacity(1 << 16, f))
            }
            None => Box::new(tokio::io::BufWriter::new(tokio::io::stdout())),
        };
        self.out = Some(out);
        Ok(())
    }

    async fn put(&mut self, records: Vec<SinkRecord>) -> Result<()> {
        let path = self.file.clone().unwrap_or_else(|| "stdout".into());
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| Error::Task("the sink task was not started".into()))?;
        for r in records {
            self.line.clear();
            // Kafka prints the value's toString: "null" for a null.
            match &r.value {
                Value::Bytes(b) => self.line.extend_from_slice(b),
                v => self
                    .line
                    .extend_from_slice(v.to_text().as_deref().unwrap_or("null").as_bytes()),
            }
            self.line.push(b'\n');
            out.write_all(&self.line)
                .await
                .map_err(|e| Error::io(&path, e))?;
        }
        // As Kafka's sink (a PrintStream straight onto the file), what was put is in the file
        // when `put` returns (written, not fsynced).
        out.flush().await.map_err(|e| Error::io(&path, e))?;
        Ok(())
    }

    async fn flush(&mut self, _offsets: &BTreeMap<TopicPartition, i64>) -> Result<()> {
        let path = self.file.clone().unwrap_or_else(|| "stdout".into());
        if let Some(out) = self.out.as_mut() {
            out.flush().await.map_err(|e| Error::io(&path, e))?;
        }
        Ok(())
    }

    async fn stop(&mut self) {
        if let Some(mut out) = self.out.take()
            && let Err(e) = out.flush().await
        {
            tracing::warn!(error = %e, "flushing the sink file at stop");
        }
    }
}

/// Reads all of `r` (for tests of the stdin path).
#[cfg(test)]
async fn read_all(mut r: impl tokio::io::AsyncRead + Unpin) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut v = Vec::new();
    r.read_to_end(&mut v).await.unwrap();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_source_reads_whole_lines_and_resumes_at_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        std::fs::write(&path, "a\r\nbb\npart").unwrap();
        let file = path.display().to_string();
        let config: Props = [
            ("file".to_owned(), file.clone()),
            ("topic".to_owned(), "t".to_owned()),
        ]
        .into();
        let mut task = FileStreamSourceTask::default();
        SourceTask::start(&mut task, config.clone(), SourceTaskContext::default())
            .await
            .unwrap();
        let recs = task.poll().await.unwrap();
        let values: Vec<_> = recs.iter().map(|r| r.value.clone()).collect();
        assert_eq!(values, [Value::from("a"), Value::from("bb")]);
        assert_eq!(recs[1].source_offset.as_ref().unwrap()["position"], 6);
        assert_eq!(recs[0].source_partition.as_ref().unwrap()["filename"], file);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"ial\n"))
            .unwrap();
        let recs = task.poll().await.unwrap();
        assert_eq!(recs[0].value, Value::from("partial"));

        let partition = recs[0].source_partition.clone().unwrap();
        let offset: SourceMap = [("position".to_owned(), Json::from(3))]
            .into_iter()
            .collect();
        let mut again = FileStreamSourceTask::default();
        SourceTask::start(
            &mut again,
            config,
            SourceTaskContext::new(vec![(partition, offset)]),
        )
        .await
        .unwrap();
        let recs = again.poll().await.unwrap();
        assert_eq!(recs[0].value, Value::from("bb"), "resumed after line 1");
    }

    #[tokio::test]
    async fn the_sink_writes_values_as_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        let mut task = FileStreamSinkTask::default();
        SinkTask::start(
            &mut task,
            [("file".to_owned(), path.display().to_string())].into(),
        )
        .await
        .unwrap();
        let rec = |v: Value| {
            let mut r = SourceRecord::source(SourceMap::new(), SourceMap::new(), "t", None, v);
            r.kafka_offset = Some(0);
            r
        };
        task.put(vec![
            rec(Value::from("x")),
            rec(Value::Null),
            rec(Value::Int(4)),
        ])
        .await
        .unwrap();
        task.flush(&BTreeMap::new()).await.unwrap();
        let f = tokio::fs::File::open(&path).await.unwrap();
        assert_eq!(read_all(f).await, b"x\nnull\n4\n");
    }
}
