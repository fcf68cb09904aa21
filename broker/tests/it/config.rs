//! Kafka users' own `server.properties` start the broker as they are; a typo is refused naming
//! the key meant; listeners Sluice cannot serve are refused or skipped, saying which.

use sluice_broker::{Broker, BrokerConfig};
use sluice_log::TopicPartition;
use sluice_log::record::{BatchIter, decode_records};

use crate::protocol::{create, fetch, produce};
use crate::wire::{self, TestBroker, batch, free_port};

/// `fixture` with its placeholders filled: loopback host, `port`, data under `dir`.
fn fill(fixture: &str, port: u16, dir: &std::path::Path) -> String {
    let dir = dir.to_str().unwrap();
    fixture
        .replace("{host}", "127.0.0.1")
        .replace("{port}", &port.to_string())
        .replace("{log_dir}", &format!("{dir}/data"))
        .replace("{tmp_dir}", dir)
}

/// Starts a broker from a filled fixture, as `sluice broker server.properties` reads it.
async fn start_from(fixture: &str) -> (TestBroker, u16) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = BrokerConfig::from_properties(&fill(fixture, port, dir.path()))
        .unwrap_or_else(|e| panic!("the fixture is refused: {e}"));
    (wire::start_with(dir, config).await, port)
}

/// Produces 5 records to a new topic and fetches them back through the broker.
async fn produce_and_consume(b: &TestBroker, topic: &str) {
    let mut c = b.connect().await;
    create(&mut c, topic, 1).await;
    let r = c.call(9, &produce(topic, 0, -1, batch(5))).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    let r = c.call(12, &fetch(topic, 0, 0)).await;
    let p = &r.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark), (0, 5));
    let records = p.records.clone().unwrap();
    let mut values = Vec::new();
    for (_, range) in BatchIter::new(&records) {
        for rec in decode_records(&records.slice(range), 1 << 20).unwrap() {
            values.push(rec.unwrap().value.unwrap());
        }
    }
    assert_eq!(values, ["v0", "v1", "v2", "v3", "v4"].map(|v| v.as_bytes()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_4_shipped_server_properties_starts_the_broker_as_it_is() {
    let (b, port) = start_from(include_str!("fixtures/kafka-4-server.properties")).await;
    // The client listener is served on the file's port; the controller listener is not.
    assert_eq!(b.addr.port(), port);
    assert_eq!(b.state.config.listener.name, "PLAINTEXT");
    assert_eq!(
        b.state
            .config
            .controller_listeners()
            .map(|l| l.port)
            .collect::<Vec<_>>(),
        [9093]
    );
    // Advertised as the file says.
    assert_eq!(b.state.advertised.host, "localhost");
    assert_eq!(b.state.advertised.port, port);
    assert_eq!(b.state.config.node_id, 1);
    produce_and_consume(&b, "from-kafka-4-config").await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_test_suite_broker_configs_start_the_broker_as_they_are() {
    // kafka-python's, with Kafka 4.0 (offsets.commit.timeout.ms, replica.lag.time.max.ms,
    // replica.socket.timeout.ms, the authorizer's keys, ...).
    let (b, _) = start_from(include_str!("fixtures/kafka-python-4.0-kafka.properties")).await;
    assert_eq!(b.state.config.num_partitions, 4);
    assert_eq!(b.state.config.group_min_session_timeout_ms, 1000);
    produce_and_consume(&b, "from-kafka-python-config").await;
    b.stop().await;
    // librdkafka's (trivup), ZooKeeper-era keys and all; broker.id is node.id's older name.
    let (b, _) = start_from(include_str!("fixtures/trivup-server.properties")).await;
    assert_eq!(b.state.config.node_id, 1);
    assert_eq!(b.state.config.num_partitions, 3);
    produce_and_consume(&b, "from-trivup-config").await;
    b.stop().await;
}

#[test]
fn a_typo_is_refused_naming_the_key_meant() {
    let e = BrokerConfig::from_properties("log.retention.hour=24\n").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("`log.retention.hour`"), "{msg}");
    assert!(msg.contains("did you mean `log.retention.hours`"), "{msg}");
    // A Kafka key Sluice does not act on is no typo: accepted.
    BrokerConfig::from_properties("replica.lag.time.max.ms=1000\n").unwrap();
    // Nor is a per-listener key.
    BrokerConfig::from_properties("listener.name.plaintext.max.connections=10\n").unwrap();
}

#[test]
fn listeners_sluice_cannot_serve_are_refused_saying_why() {
    let refused = |text: &str| BrokerConfig::from_properties(text).unwrap_err().to_string();
    let e = refused("listeners=SSL://127.0.0.1:9093\n");
    assert!(e.contains("SSL listeners are not supported yet"), "{e}");
    let e = refused(
        "listeners=CLIENT://127.0.0.1:9093\nlistener.security.protocol.map=CLIENT:SASL_SSL\n",
    );
    assert!(
        e.contains("SASL_SSL listeners are not supported yet"),
        "{e}"
    );
    let e = refused("listeners=CLIENT://127.0.0.1:9093\n");
    assert!(
        e.contains("CLIENT") && e.contains("listener.security.protocol.map"),
        "{e}"
    );
    let e =
        refused("listeners=CONTROLLER://127.0.0.1:9093\ncontroller.listener.names=CONTROLLER\n");
    assert!(e.contains("every listener is a controller listener"), "{e}");
    let e = refused("listener.security.protocol.map=CLIENT:TLS\n");
    assert!(e.contains("TLS is not a security protocol"), "{e}");
    // A client listener of another name, mapped to PLAINTEXT, is served.
    let c = BrokerConfig::from_properties(
        "listeners=CLIENT://127.0.0.1:0,CONTROLLER://127.0.0.1:9093\n\
         controller.listener.names=CONTROLLER\n\
         listener.security.protocol.map=CLIENT:PLAINTEXT,CONTROLLER:PLAINTEXT\n",
    )
    .unwrap();
    assert_eq!(c.listener.name, "CLIENT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_use_fails_before_the_log_directory_is_touched() {
    let first = wire::start(|_| {}).await;
    let mut c = first.connect().await;
    create(&mut c, "kept", 1).await;
    let r = c.call(9, &produce("kept", 0, -1, batch(3))).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    // A second broker on the same port, with a data directory of its own.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("second");
    let mut config = BrokerConfig::default();
    config
        .set("listeners", &format!("PLAINTEXT://{}", first.addr))
        .unwrap();
    config.set("log.dirs", data.to_str().unwrap()).unwrap();
    let e = Broker::bind(config).await.unwrap_err().to_string();
    assert!(e.contains(&first.addr.to_string()), "{e}");
    assert!(
        !data.exists(),
        "the log directory was created before the bind failed"
    );
    // The first broker and its data are untouched.
    let p = first
        .state
        .log
        .partition(&TopicPartition::new("kept", 0))
        .unwrap();
    assert_eq!(p.log_end_offset(), 3);
    let r = c.call(12, &fetch("kept", 0, 0)).await;
    assert_eq!(r.responses[0].partitions[0].high_watermark, 3);
    first.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_directory_that_is_a_file_is_named_as_not_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, "someone's file").unwrap();
    let mut config = BrokerConfig::default();
    config.set("listeners", "PLAINTEXT://127.0.0.1:0").unwrap();
    config.set("log.dirs", file.to_str().unwrap()).unwrap();
    let e = Broker::bind(config).await.unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "log directory {} is not a directory",
            file.display()
        )),
        "{e}"
    );
    assert!(!e.contains("File exists"), "{e}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "someone's file");
}
