//! Parsing shared by the topic and client configs: Kafka's value types and its error wording.
//!
//! Every value is trimmed first, as Kafka's `ConfigDef` does. Each config type keeps a table of
//! [`Def`]s, one per key; the table gives the known keys, the setter that validates a value, and
//! the canonical text of the current value.

use crate::config::ConfigEntry;
use crate::error::{Error, Result};

/// Largest value of a Kafka `INT` config.
pub const INT_MAX: i64 = i32::MAX as i64;
/// Largest value of a Kafka `LONG` config.
pub const LONG_MAX: i64 = i64::MAX;

/// One key of a config type `C`.
#[allow(missing_debug_implementations)] // a table of function pointers
pub struct Def<C> {
    /// Kafka's name of the key.
    pub name: &'static str,
    /// Validates a value and stores it in `C`; leaves `C` untouched on error.
    pub set: fn(&mut C, &str) -> Result<()>,
    /// The current value, in the form `set` accepts.
    pub get: fn(&C) -> String,
}

/// A [`Def`] for an integer field: `integer_def!("key", field, min, max)`.
#[doc(hidden)]
#[macro_export]
macro_rules! __integer_def {
    ($name:literal, $field:ident, $min:expr, $max:expr) => {
        $crate::config::parse::Def {
            name: $name,
            set: |c, v| {
                c.$field = $crate::config::parse::integer($name, v, $min, $max)?;
                Ok(())
            },
            get: |c| c.$field.to_string(),
        }
    };
}
pub use crate::__integer_def as integer_def;

/// A [`Def`] for a `bool` field: `bool_def!("key", field)`.
#[doc(hidden)]
#[macro_export]
macro_rules! __bool_def {
    ($name:literal, $field:ident) => {
        $crate::config::parse::Def {
            name: $name,
            set: |c, v| {
                c.$field = $crate::config::parse::boolean($name, v)?;
                Ok(())
            },
            get: |c| c.$field.to_string(),
        }
    };
}
pub use crate::__bool_def as bool_def;

/// The definition of `key`, or [`Error::UnknownConfig`] listing every known key.
pub fn lookup<'a, C>(defs: &'a [Def<C>], key: &str) -> Result<&'a Def<C>> {
    defs.iter()
        .find(|d| d.name == key)
        .ok_or_else(|| unknown(defs, key))
}

fn unknown<C>(defs: &[Def<C>], key: &str) -> Error {
    Error::UnknownConfig {
        key: key.to_owned(),
        known: names(defs).join(", "),
    }
}

/// Every key with its current value, sorted by name.
pub fn describe<C>(
    defs: &[Def<C>],
    config: &C,
    is_default: impl Fn(&str) -> bool,
) -> Vec<ConfigEntry> {
    let mut entries: Vec<ConfigEntry> = defs
        .iter()
        .map(|d| ConfigEntry {
            name: d.name.to_owned(),
            value: (d.get)(config),
            is_default: is_default(d.name),
        })
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// Sets `key` on `config` if it is known and `value` is valid; returns Kafka's name of the key.
pub fn set<C>(defs: &[Def<C>], config: &mut C, key: &str, value: &str) -> Result<&'static str> {
    let def = lookup(defs, key)?;
    (def.set)(config, value)?;
    Ok(def.name)
}

/// The names of every key, sorted.
pub fn names<C>(defs: &[Def<C>]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = defs.iter().map(|d| d.name).collect();
    names.sort_unstable();
    names
}

/// A comma-separated list of free-form items, trimmed, empty items dropped.
pub fn string_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// [`Error::InvalidConfig`] for `key` and `value`, with `reason` saying what is accepted.
pub fn invalid(key: &str, value: &str, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// An integer in `min..=max`, converted to `T` (callers pick a range `T` can hold).
pub fn integer<T: TryFrom<i64>>(key: &str, value: &str, min: i64, max: i64) -> Result<T> {
    let reason = || {
        if min == i64::MIN && max == LONG_MAX {
            "must be an integer".to_owned()
        } else if max == LONG_MAX {
            format!("must be an integer >= {min}")
        } else {
            format!("must be an integer between {min} and {max}")
        }
    };
    let n: i64 = value
        .trim()
        .parse()
        .map_err(|_| invalid(key, value, reason()))?;
    if n < min || n > max {
        return Err(invalid(key, value, reason()));
    }
    T::try_from(n).map_err(|_| invalid(key, value, reason()))
}

/// A finite number in `min..=max`.
pub fn number(key: &str, value: &str, min: f64, max: f64) -> Result<f64> {
    let reason = || format!("must be a number between {min} and {max}");
    let x: f64 = value
        .trim()
        .parse()
        .map_err(|_| invalid(key, value, reason()))?;
    if !(min..=max).contains(&x) {
        return Err(invalid(key, value, reason()));
    }
    Ok(x)
}

/// `true` or `false`, in any case (as Kafka's `BOOLEAN`).
pub fn boolean(key: &str, value: &str) -> Result<bool> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(invalid(key, value, "must be true or false"))
    }
}

/// One of `choices`, spelled exactly (as Kafka's `ValidString`).
pub fn one_of<T: Copy>(key: &str, value: &str, choices: &[(&str, T)]) -> Result<T> {
    let v = value.trim();
    choices
        .iter()
        .find(|(name, _)| *name == v)
        .map(|&(_, t)| t)
        .ok_or_else(|| invalid(key, value, one_of_reason(choices)))
}

/// One of `choices`, in any case (as Kafka's `CaseInsensitiveValidString`).
pub fn one_of_ignore_case<T: Copy>(key: &str, value: &str, choices: &[(&str, T)]) -> Result<T> {
    let v = value.trim();
    choices
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(v))
        .map(|&(_, t)| t)
        .ok_or_else(|| invalid(key, value, one_of_reason(choices)))
}

fn one_of_reason<T>(choices: &[(&str, T)]) -> String {
    let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
    format!("must be one of: {}", names.join(", "))
}

/// The items of a comma-separated list, trimmed; `None` if the list or any item is empty.
pub fn split_list(value: &str) -> Option<Vec<&str>> {
    let items: Vec<&str> = value.split(',').map(str::trim).collect();
    if items.iter().any(|item| item.is_empty()) {
        return None;
    }
    Some(items)
}

/// A non-empty comma-separated list of `choices`, each spelled exactly.
pub fn list_of<T: Copy>(key: &str, value: &str, choices: &[(&str, T)]) -> Result<Vec<T>> {
    let reason = || {
        let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
        format!("must be a comma-separated list of: {}", names.join(", "))
    };
    let items = split_list(value).ok_or_else(|| invalid(key, value, reason()))?;
    items
        .into_iter()
        .map(|item| {
            choices
                .iter()
                .find(|(name, _)| *name == item)
                .map(|&(_, t)| t)
                .ok_or_else(|| invalid(key, value, reason()))
        })
        .collect()
}

/// A free-form string, trimmed; `None` when empty.
pub fn optional_string(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

/// The `key=value` pairs of a Java-style properties text.
///
/// Blank lines and lines starting with `#` or `!` are skipped. As in `java.util.Properties`, the
/// key ends at the first `=`, `:` or whitespace, and one `=` or `:` around the value is dropped.
/// Escapes and line continuations are not supported.
pub fn properties(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let key_end = line
            .find(|c: char| c == '=' || c == ':' || c.is_whitespace())
            .unwrap_or(line.len());
        let (key, rest) = line.split_at(key_end);
        let rest = rest.trim_start();
        let rest = rest
            .strip_prefix('=')
            .or_else(|| rest.strip_prefix(':'))
            .unwrap_or(rest);
        pairs.push((key.to_owned(), rest.trim().to_owned()));
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_checks_range_and_form() {
        assert_eq!(integer::<i64>("k", " 42 ", 0, LONG_MAX).unwrap(), 42);
        assert_eq!(integer::<i64>("k", "+7", 0, LONG_MAX).unwrap(), 7);
        let err = integer::<u64>("k", "13", 14, INT_MAX)
            .unwrap_err()
            .to_string();
        assert!(err.contains("between 14 and 2147483647"), "{err}");
        let err = integer::<i64>("k", "x", -1, LONG_MAX)
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be an integer >= -1"), "{err}");
        assert!(integer::<i32>("k", "2147483648", 0, INT_MAX).is_err());
        assert!(integer::<i64>("k", "99999999999999999999", 0, LONG_MAX).is_err());
    }

    #[test]
    fn number_rejects_nan_and_out_of_range() {
        assert_eq!(number("k", "0.25", 0.0, 1.0).unwrap(), 0.25);
        assert!(number("k", "NaN", 0.0, 1.0).is_err());
        assert!(number("k", "inf", 0.0, 1.0).is_err());
        assert!(number("k", "1.5", 0.0, 1.0).is_err());
    }

    #[test]
    fn boolean_ignores_case() {
        assert!(boolean("k", "TRUE").unwrap());
        assert!(!boolean("k", " false ").unwrap());
        assert!(boolean("k", "yes").is_err());
    }

    #[test]
    fn lists_need_every_item() {
        let choices = [("a", 1), ("b", 2)];
        assert_eq!(list_of("k", "a, b", &choices).unwrap(), vec![1, 2]);
        assert!(list_of("k", "a,,b", &choices).is_err());
        assert!(list_of("k", "", &choices).is_err());
        assert!(list_of("k", "a,c", &choices).is_err());
    }

    #[test]
    fn properties_follow_java_separators() {
        let text = "# comment\n! also\n\n a=1\nb : 2\nc 3\nd=x=y\ne\nf=host:9092\n";
        let pairs = properties(text);
        let expect = [
            ("a", "1"),
            ("b", "2"),
            ("c", "3"),
            ("d", "x=y"),
            ("e", ""),
            ("f", "host:9092"),
        ];
        let got: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, expect);
    }
}
