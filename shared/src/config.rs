//! Reading a function's configuration from its environment, once per cold start.
//!
//! Each function crate has its own `Config` with exactly the variables it needs, read through an
//! [`Env`]: from the process environment in Lambda, from the template's environment of that
//! function in the local runner and the tests. An `Env` remembers which variables were read, so
//! a test can check that the template gives each function exactly the variables its config reads.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// A missing or unparsable variable, named.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {name} has an invalid value {value:?}: {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    /// Values that are valid one by one but not together (a lease shorter than the timeout).
    #[error("inconsistent configuration: {0}")]
    Inconsistent(String),
}

/// The longest duration any setting may have: long enough for every real use, short enough
/// that `now + duration` can never overflow a timestamp.
pub const MAX_SECONDS: u64 = 10 * 365 * 86_400;

/// Reads one variable.
type Lookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where configuration comes from, and which variables were asked for.
pub struct Env {
    lookup: Lookup,
    read: RefCell<BTreeSet<&'static str>>,
}

impl Env {
    /// The process environment (Lambda's).
    pub fn process() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// A fixed set of variables (a function's environment in template.yaml, a test's map).
    pub fn from_map(vars: BTreeMap<String, String>) -> Self {
        Self::from_lookup(move |name| vars.get(name).cloned())
    }

    /// [`from_map`](Self::from_map) from `(name, value)` pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self::from_map(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self {
            lookup: Box::new(lookup),
            read: RefCell::new(BTreeSet::new()),
        }
    }

    /// Every variable asked for so far, set or not.
    pub fn names_read(&self) -> BTreeSet<&'static str> {
        self.read.borrow().clone()
    }

    /// The value, with blank values counting as unset.
    pub fn optional(&self, name: &'static str) -> Option<String> {
        self.read.borrow_mut().insert(name);
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    /// A non-negative integer, or `default` when unset.
    pub fn number<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: T,
    ) -> Result<T, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| ConfigError::Invalid {
                name,
                value: v,
                expected: "a non-negative integer",
            }),
        }
    }

    /// A duration in whole seconds (at most [`MAX_SECONDS`]), or `default_seconds` when unset.
    pub fn seconds(
        &self,
        name: &'static str,
        default_seconds: u64,
    ) -> Result<Duration, ConfigError> {
        let seconds = self.number(name, default_seconds)?;
        if seconds > MAX_SECONDS {
            return Err(ConfigError::Invalid {
                name,
                value: seconds.to_string(),
                expected: "at most 315360000 seconds (10 years)",
            });
        }
        Ok(Duration::from_secs(seconds))
    }

    /// A count of at least 1, or `default` when unset.
    pub fn positive(&self, name: &'static str, default: u64) -> Result<u64, ConfigError> {
        match self.number(name, default)? {
            0 => Err(ConfigError::Invalid {
                name,
                value: "0".to_owned(),
                expected: "a positive integer",
            }),
            n => Ok(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn a_missing_variable_is_named() {
        let err = env(&[("OTHER", "x")]).required("SCORES_TABLE").unwrap_err();
        assert_eq!(err, ConfigError::Missing("SCORES_TABLE"));
        assert!(err.to_string().contains("SCORES_TABLE"));
        assert_eq!(
            env(&[("SCORES_TABLE", "  ")]).required("SCORES_TABLE"),
            Err(ConfigError::Missing("SCORES_TABLE")),
            "blank is unset"
        );
    }

    #[test]
    fn numbers_default_parse_and_report_bad_values() {
        let e = env(&[("A_SECONDS", " 7 "), ("BAD", "a day")]);
        assert_eq!(e.seconds("A_SECONDS", 1), Ok(Duration::from_secs(7)));
        assert_eq!(e.seconds("UNSET", 30), Ok(Duration::from_secs(30)));
        assert!(matches!(
            e.number::<u32>("BAD", 5),
            Err(ConfigError::Invalid { name: "BAD", .. })
        ));
    }

    #[test]
    fn extreme_durations_and_zero_counts_are_refused_by_name() {
        let e = env(&[("LONG", "18446744073709551615"), ("ZERO", "0")]);
        assert!(matches!(
            e.seconds("LONG", 1),
            Err(ConfigError::Invalid { name: "LONG", .. })
        ));
        assert!(matches!(
            e.positive("ZERO", 1),
            Err(ConfigError::Invalid { name: "ZERO", .. })
        ));
        assert_eq!(e.positive("UNSET", 7), Ok(7));
    }

    #[test]
    fn the_names_read_are_remembered() {
        let e = env(&[("A", "1")]);
        let _ = e.optional("A");
        let _ = e.number::<u32>("B", 2);
        assert_eq!(e.names_read(), BTreeSet::from(["A", "B"]));
    }
}
