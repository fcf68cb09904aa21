//! Kafka's rules for topic names.
//!
//! A valid name is also a safe directory name: partitions live in `<topic>-<partition>`.
//!
//! ```
//! use sluice_protocol::names::{has_collision_chars, is_internal, validate_topic_name};
//!
//! assert!(validate_topic_name("orders.v1").is_ok());
//! assert!(validate_topic_name("orders/v1").is_err());
//! assert!(is_internal("__consumer_offsets"));
//! assert!(has_collision_chars("orders.v1"));
//! ```

use crate::error::{Error, Result};

/// Longest topic name Kafka accepts, in characters.
pub const MAX_TOPIC_NAME_LENGTH: usize = 249;

/// Checks `name` against Kafka's rules: not empty, not `.` or `..`, at most 249 characters, and
/// only ASCII letters, digits, `.`, `_` and `-`.
///
/// A name breaking a rule is [`Error::InvalidTopicName`] saying which.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let fail = |reason: String| {
        Err(Error::InvalidTopicName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return fail("must not be empty".to_owned());
    }
    if name == "." || name == ".." {
        return fail("must not be \".\" or \"..\"".to_owned());
    }
    let len = name.chars().count();
    if len > MAX_TOPIC_NAME_LENGTH {
        return fail(format!(
            "must be at most {MAX_TOPIC_NAME_LENGTH} characters long, not {len}"
        ));
    }
    if let Some(c) = name.chars().find(|&c| !is_legal_char(c)) {
        return fail(format!(
            "must contain only ASCII letters, digits, '.', '_' and '-', not {c:?}"
        ));
    }
    Ok(())
}

fn is_legal_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Whether `name` is reserved for internal topics: it starts with `__`, like
/// `__consumer_offsets` and `__transaction_state`.
pub fn is_internal(name: &str) -> bool {
    name.starts_with("__")
}

/// Whether `name` contains `.` or `_`, which Kafka's metrics names do not tell apart (Kafka warns
/// when a topic has them).
pub fn has_collision_chars(name: &str) -> bool {
    name.contains(['.', '_'])
}

/// Whether two different names would collide in metrics names, i.e. are equal once every `.` is
/// read as `_` (Kafka refuses to create the second).
pub fn collides(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .all(|(x, y)| x == y || matches!((x, y), (b'.', b'_') | (b'_', b'.')))
}

#[cfg(test)]
mod tests {
    use std::path::{Component, Path};

    use proptest::prelude::*;

    use super::*;

    fn reason(name: &str) -> String {
        match validate_topic_name(name) {
            Err(Error::InvalidTopicName { name: n, reason }) => {
                assert_eq!(n, name);
                reason
            }
            other => panic!("{name:?}: expected InvalidTopicName, got {other:?}"),
        }
    }

    #[test]
    fn accepts_kafka_legal_names() {
        for name in [
            "a",
            "orders",
            "Orders-2024_v1.x",
            "__consumer_offsets",
            "-",
            "...",
        ] {
            assert!(validate_topic_name(name).is_ok(), "{name}");
        }
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
    }

    #[test]
    fn rejects_each_broken_rule_saying_which() {
        assert!(reason("").contains("empty"));
        assert!(reason(".").contains("\".\" or \"..\""));
        assert!(reason("..").contains("\".\" or \"..\""));
        assert!(reason(&"x".repeat(250)).contains("at most 249"));
        assert!(reason("a/b").contains("'/'"));
        assert!(reason("a b").contains("' '"));
        assert!(reason("caf\u{e9}").contains("only ASCII letters"));
        assert!(reason("a\0b").contains("'\\0'"));
        assert!(reason("a\\b").contains("only ASCII letters"));
    }

    #[test]
    fn internal_and_collision_chars() {
        assert!(is_internal("__transaction_state"));
        assert!(!is_internal("_orders"));
        assert!(has_collision_chars("a.b") && has_collision_chars("a_b"));
        assert!(!has_collision_chars("a-b"));
        assert!(collides("a.b", "a_b") && collides("a.b", "a.b"));
        assert!(!collides("a.b", "a-b") && !collides("a.b", "a.bc"));
    }

    proptest! {
        #[test]
        /// With a partition number of up to 5 digits the partition directory fits in 255 bytes too.
    fn accepted_names_are_safe_directory_components(
            name in prop_oneof![
                any::<String>(),
                "[a-zA-Z0-9._\\-]{0,260}",
                "[a-zA-Z0-9._\\-/\\\\ \u{0}é]{0,20}",
                "[.]{1,3}",
            ]
        ) {
            if validate_topic_name(&name).is_ok() {
                for dir in [name.clone(), format!("{name}-99999")] {
                    prop_assert!(!dir.is_empty() && dir.len() <= 255, "{}", dir);
                    prop_assert!(!dir.contains(['/', '\\', '\0']));
                    let mut parts = Path::new(&dir).components();
                    prop_assert_eq!(parts.next(), Some(Component::Normal(dir.as_ref())));
                    prop_assert_eq!(parts.next(), None);
                }
            }
        }
    }
}
