//! A trial, not shipped: does a faster JSON parser justify replacing serde_json in compute's
//! line parser (functions/compute/src/features.rs, `parse`)? The same line decoded into the same
//! borrowed `Line` shape by three parsers, each followed by the same checks as compute's
//! ([`contract::transaction`]):
//!
//! - [`with_serde_json`]: today's, `serde_json::from_slice`, the amount a `&RawValue`;
//! - [`with_sonic_rs`]: `sonic_rs::from_slice`, the amount a `sonic_rs::LazyValue` (its raw text);
//! - [`with_simd_json`]: `simd_json::serde::from_slice_with_buffers`, which needs the line as `&mut [u8]`
//!   (it unescapes strings in place): the line is copied into a reused buffer first, as
//!   compute's lines are borrowed. simd-json keeps no number's text: the amount arrives as a
//!   `u64`, `i64` or `f64`, and is written back as the shortest decimal of that value, which is
//!   **not** the contract's exact text (see the tests).
//!
//! Every parser rejects a line that does not start with `{` before decoding, as compute does
//! (serde's derive also reads a struct from an array of its fields in order).
//!
//! The measurement is `benches/decode.rs`; the results and the conclusion are in
//! docs/BENCHMARKS.md ("A faster JSON parser?").

pub mod contract;

use contract::{transaction, Text, Transaction};

/// Today's decoder, as in compute.
pub mod with_serde_json {
    use super::*;
    use ::serde_json::value::RawValue;
    use serde::Deserialize;

    /// compute's `Line`.
    #[derive(Deserialize)]
    pub struct Line<'a> {
        #[serde(borrow)]
        pub ts: Text<'a>,
        #[serde(borrow)]
        pub amount: &'a RawValue,
        #[serde(borrow, default)]
        pub currency: Option<Text<'a>>,
        #[serde(borrow)]
        pub status: Text<'a>,
        #[serde(borrow)]
        pub buyer: Text<'a>,
        #[serde(borrow, default)]
        pub card_country: Option<Text<'a>>,
        #[serde(borrow, default)]
        pub ip_country: Option<Text<'a>>,
    }

    /// The JSON decoding step alone.
    pub fn decode(line: &[u8]) -> Option<Line<'_>> {
        if line.first() != Some(&b'{') {
            return None;
        }
        ::serde_json::from_slice(line).ok()
    }

    /// compute's `parse`: decoding and the contract's checks.
    pub fn parse(line: &[u8]) -> Option<Transaction> {
        let l = decode(line)?;
        transaction(
            &l.ts,
            l.amount.get().as_bytes(),
            l.currency.as_ref(),
            &l.status,
            &l.buyer,
            l.card_country,
            l.ip_country,
        )
    }
}

/// sonic-rs through its serde API.
pub mod with_sonic_rs {
    use super::*;
    use serde::Deserialize;
    use sonic_rs::LazyValue;

    /// The same shape; `LazyValue` keeps the amount's raw text (validated as JSON).
    #[derive(Deserialize)]
    pub struct Line<'a> {
        #[serde(borrow)]
        pub ts: Text<'a>,
        #[serde(borrow)]
        pub amount: LazyValue<'a>,
        #[serde(borrow, default)]
        pub currency: Option<Text<'a>>,
        #[serde(borrow)]
        pub status: Text<'a>,
        #[serde(borrow)]
        pub buyer: Text<'a>,
        #[serde(borrow, default)]
        pub card_country: Option<Text<'a>>,
        #[serde(borrow, default)]
        pub ip_country: Option<Text<'a>>,
    }

    /// The JSON decoding step alone.
    pub fn decode(line: &[u8]) -> Option<Line<'_>> {
        if line.first() != Some(&b'{') {
            return None;
        }
        sonic_rs::from_slice(line).ok()
    }

    /// Decoding and the contract's checks.
    pub fn parse(line: &[u8]) -> Option<Transaction> {
        let l = decode(line)?;
        transaction(
            &l.ts,
            l.amount.as_raw_str().as_bytes(),
            l.currency.as_ref(),
            &l.status,
            &l.buyer,
            l.card_country,
            l.ip_country,
        )
    }
}

/// simd-json through its serde API.
pub mod with_simd_json {
    use std::fmt::{self, Write as _};

    use super::*;
    use serde::{Deserialize, Deserializer};

    /// What simd-json gives of a JSON number: its value, not its text.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub enum Amount {
        U64(u64),
        I64(i64),
        F64(f64),
    }

    impl<'de> Deserialize<'de> for Amount {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Visitor;
            impl serde::de::Visitor<'_> for Visitor {
                type Value = Amount;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a number")
                }
                fn visit_u64<E>(self, v: u64) -> Result<Amount, E> {
                    Ok(Amount::U64(v))
                }
                fn visit_i64<E>(self, v: i64) -> Result<Amount, E> {
                    Ok(Amount::I64(v))
                }
                fn visit_f64<E>(self, v: f64) -> Result<Amount, E> {
                    Ok(Amount::F64(v))
                }
            }
            deserializer.deserialize_any(Visitor)
        }
    }

    impl fmt::Display for Amount {
        /// The shortest decimal that reads back as the same value (Rust's `f64` `Display`).
        fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
            match self {
                Amount::U64(v) => write!(f, "{v}"),
                Amount::I64(v) => write!(f, "{v}"),
                Amount::F64(v) => write!(f, "{v}"),
            }
        }
    }

    /// The same shape, but the amount is a value.
    #[derive(Deserialize)]
    pub struct Line<'a> {
        #[serde(borrow)]
        pub ts: Text<'a>,
        pub amount: Amount,
        #[serde(borrow, default)]
        pub currency: Option<Text<'a>>,
        #[serde(borrow)]
        pub status: Text<'a>,
        #[serde(borrow)]
        pub buyer: Text<'a>,
        #[serde(borrow, default)]
        pub card_country: Option<Text<'a>>,
        #[serde(borrow, default)]
        pub ip_country: Option<Text<'a>>,
    }

    /// simd-json's reusable state: the line's mutable copy, its buffers, the amount's text.
    #[derive(Default)]
    pub struct Parser {
        copy: Vec<u8>,
        buffers: simd_json::Buffers,
        amount: String,
    }

    impl Parser {
        pub fn new() -> Self {
            Self::default()
        }

        /// The JSON decoding step alone, the line's copy included.
        pub fn decode(&mut self, line: &[u8]) -> Option<Line<'_>> {
            if line.first() != Some(&b'{') {
                return None;
            }
            self.copy.clear();
            self.copy.extend_from_slice(line);
            simd_json::serde::from_slice_with_buffers(&mut self.copy, &mut self.buffers).ok()
        }

        /// Decoding and the contract's checks, the amount's text being the shortest decimal
        /// of its value (not the exact text: see the module doc).
        pub fn parse(&mut self, line: &[u8]) -> Option<Transaction> {
            let mut amount = std::mem::take(&mut self.amount);
            let parsed = self.decode(line).and_then(|l| {
                amount.clear();
                write!(amount, "{}", l.amount).ok()?;
                transaction(
                    &l.ts,
                    amount.as_bytes(),
                    l.currency.as_ref(),
                    &l.status,
                    &l.buyer,
                    l.card_country,
                    l.ip_country,
                )
            });
            self.amount = amount;
            parsed
        }
    }
}

#[cfg(test)]
mod tests;
